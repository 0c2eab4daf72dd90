"""Record scripted-expert demonstrations as a LeRobot v3 dataset (``actionimages sim record``).

Episode ``i`` of a recording is fully determined by its index: task ``tasks[i % k]``
and seed ``split.episode_seed(i)``. That makes recording resumable: reopening the
dataset, the writer reports how many complete episodes are on disk and recording goes
on from there (``LeRobotWriter.add_episode`` is atomic, so an interrupted episode is
simply absent). If the expert fails an episode, it is retried with
``split.episode_seed(i, attempt)``; only successful demonstrations are written.

Each written :class:`~actionimages.data.episode.Episode` holds the measured
end-effector pose and gripper per frame, the images and cameras of every view (static
views repeat one ``Camera``; the wrist camera moves), and in ``extra`` the seed, split,
success, the variation drawn and the expert's commanded targets per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionimages.data.episode import Episode
from actionimages.geometry import matrix_to_quat_xyzw
from actionimages.sim.cameras import ALL_VIEWS
from actionimages.sim.env import SimEnv, make_env
from actionimages.sim.expert import ExpertPolicy
from actionimages.sim.splits import Split, get_split


@dataclass(frozen=True)
class RecordConfig:
    """What ``record`` writes. ``tasks`` may be ``("all",)``: every task of the split."""

    tasks: tuple[str, ...]
    episodes: int
    split: str = "train"
    cameras: tuple[str, ...] = ALL_VIEWS
    image_size: tuple[int, int] = (128, 128)
    fps: float = 10.0
    max_attempts: int = 5
    allow_heldout: bool = False  # record tasks that are not in the split (e.g. for tests)
    video_codec: str | None = None  # None: the writer's default (AV1, as LeRobot), or "h264"

    def __post_init__(self) -> None:
        # Checked before anything is rolled out or written (a bad size used to surface only
        # when the first episode's video was encoded, leaving an empty dataset folder).
        h, w = self.image_size
        if h < 16 or w < 16 or h % 2 or w % 2:
            raise ValueError(
                f"image size must be even and at least 16 px (the video encoder's yuv420p "
                f"needs even sizes), got {h}x{w}"
            )
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        unknown = [c for c in self.cameras if c not in ALL_VIEWS]
        if unknown or not self.cameras:
            raise ValueError(f"unknown camera(s) {unknown}; choose from {', '.join(ALL_VIEWS)}")
        if not self.fps > 0 or self.max_attempts < 1:
            raise ValueError(
                f"fps must be > 0 and max_attempts >= 1, got {self.fps}, {self.max_attempts}"
            )
        if self.video_codec is not None:
            from actionimages.data.video import VideoConfig

            VideoConfig().with_codec(self.video_codec)  # raises for an unknown codec

    def resolved_tasks(self) -> tuple[str, ...]:
        split = get_split(self.split)
        tasks = split.tasks if tuple(self.tasks) == ("all",) else tuple(self.tasks)
        if not tasks:
            raise ValueError("no tasks to record")
        from actionimages.sim.tasks import get_task

        for t in tasks:
            get_task(t)  # an unknown name: "unknown task ...; valid tasks: ..."
        outside = [t for t in tasks if t not in split.tasks]
        if outside and not self.allow_heldout:
            raise ValueError(
                f"task(s) {outside} are not in split {split.name!r} (tasks: {', '.join(split.tasks)}); "
                "recording them would leak held-out tasks into training. Choose another "
                "--split or pass --allow-heldout"
            )
        return tasks


def rollout(env: SimEnv, policy, seed: int) -> tuple[list[dict], list, bool]:
    """Run ``policy`` for one episode: (observations, commanded actions, success).

    Runs until the policy reports ``done`` (the expert, once its plan is through: the
    demonstration keeps its retreat) or the env's step limit. Observation t is what the
    policy saw before action t; len(observations) = len(actions) + 1.
    """
    obs = env.reset(seed=seed)
    policy.reset()
    observations, actions = [obs], []
    while env.steps < env.max_steps:
        action = policy.select_action(obs)
        if getattr(policy, "done", False):
            break
        obs, _, _, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
    return observations, actions, env.success()


def to_episode(env: SimEnv, observations: list[dict], actions: list, success: bool) -> Episode:
    """Convert a rollout into an :class:`Episode` (one frame per observation)."""
    cams = list(observations[0]["images"])
    commanded = [[*a.position, *matrix_to_quat_xyzw(a.rotation), a.gripper] for a in actions] + [
        None
    ]  # no command after the final frame
    extra = {**env.episode_info(), "success": bool(success), "commanded": commanded}
    return Episode(
        position=np.stack([o["ee_position"] for o in observations]),
        rotation=np.stack([o["ee_rotation"] for o in observations]),
        gripper=np.array([o["gripper"] for o in observations], dtype=np.float64),
        instruction=observations[0]["instruction"],
        images={c: np.stack([o["images"][c] for o in observations]) for c in cams},
        cameras={c: [o["cameras"][c] for o in observations] for c in cams},
        fps=env.config.control_hz,
        task=env.config.task,
        extra=extra,
    )


def record(
    config: RecordConfig,
    out: str | Path,
    *,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Record until the dataset at ``out`` holds ``config.episodes`` episodes.

    ``stop_after`` stops after writing that many new episodes (to test resuming).
    Returns a summary: episodes on disk, written now, attempts, failed expert rollouts.
    """
    from tqdm import tqdm

    from actionimages.data.lerobot import LeRobotWriter, VideoConfig, WriterConfig

    tasks = config.resolved_tasks()
    split: Split = get_split(config.split)
    if config.episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {config.episodes}")
    envs: dict[str, SimEnv] = {}
    written, attempts, failures = 0, 0, []
    try:
        writer_config = None
        if config.video_codec is not None:
            writer_config = WriterConfig(video=VideoConfig().with_codec(config.video_codec))
        with LeRobotWriter(out, fps=config.fps, robot_type="panda", config=writer_config) as writer:
            start = writer.num_episodes
            bar = tqdm(
                total=config.episodes, initial=min(start, config.episodes),
                desc=f"record {','.join(tasks)}", unit="ep", disable=not progress,
            )  # fmt: skip
            for index in range(start, config.episodes):
                task = tasks[index % len(tasks)]
                if task not in envs:
                    envs[task] = make_env(
                        task, config.cameras, config.image_size, split=config.split,
                        control_hz=config.fps,
                    )  # fmt: skip
                env = envs[task]
                for attempt in range(config.max_attempts):
                    seed = split.episode_seed(index, attempt)
                    attempts += 1
                    observations, actions, ok = rollout(env, ExpertPolicy(env), seed)
                    if ok:
                        writer.add_episode(to_episode(env, observations, actions, ok))
                        written += 1
                        break
                    failures.append({"episode": index, "task": task, "seed": seed})
                else:
                    raise RuntimeError(
                        f"the {task} expert failed {config.max_attempts} times for episode "
                        f"{index} (seeds {[f['seed'] for f in failures[-config.max_attempts :]]})"
                    )
                bar.update(1)
                bar.set_postfix(failed=len(failures))
                if stop_after is not None and written >= stop_after:
                    break
            bar.close()
            total = writer.num_episodes
    finally:
        for env in envs.values():
            env.close()
    return {"episodes": total, "written": written, "attempts": attempts, "failed": failures}


def parse_list(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` -> ``("a", "b")``."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(s.strip() for s in items if s.strip())
