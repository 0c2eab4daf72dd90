"""Policy evaluation on the built-in benchmark (``actionimages sim eval``).

Any object with ``reset()`` and ``select_action(obs) -> Action`` is a policy. Policies
that need the simulator itself (the scripted expert) are given as a factory,
``callable(env) -> policy``; the names ``"expert"`` and ``"random"`` are built in.

For each task, episode ``k`` uses seed ``split.episode_seed(k)``, so every policy meets
exactly the same scenes. Outputs under ``out``:

- ``results.json``: ``{"tasks": {name: {"success_rate", "episodes", "successes",
  "wilson95": [lo, hi], "mean_steps", "seeds", "per_episode"}}, "mean_success_rate",
  "policy", "split", "config", "date", "seconds"}``;
- ``results.md``: the same as a markdown table;
- ``videos/<task>_<k>.mp4``: the first few rollouts per task, all views tiled (PyAV).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Policy(Protocol):
    def reset(self) -> None: ...

    def select_action(self, obs: dict) -> Any: ...


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate. ``tasks=None`` means every task of the split."""

    split: str = "in_domain"
    tasks: tuple[str, ...] | None = None
    episodes: int = 20
    cameras: tuple[str, ...] = ("front", "left_shoulder", "right_shoulder", "overhead", "wrist")
    image_size: tuple[int, int] = (128, 128)
    videos_per_task: int = 2
    overlay_actions: bool = False  # draw the commanded action's action images on videos
    max_steps: int | None = None  # default: each task's own limit
    # Episode k uses seed index first_episode + k. The reported evaluations start at 0;
    # tuning (e.g. re-planning settings) uses a disjoint range, such as 1000, so that no
    # reported number is chosen on the seeds it is reported on.
    first_episode: int = 0

    def resolved_tasks(self) -> tuple[str, ...]:
        from actionimages.sim.splits import get_split
        from actionimages.sim.tasks import get_task

        split = get_split(self.split)
        tasks = split.tasks if self.tasks is None else tuple(self.tasks)
        for t in tasks:
            get_task(t)  # unknown names: ValueError listing the valid ones
        outside = [t for t in tasks if t not in split.tasks]
        if outside:
            raise ValueError(
                f"task(s) {outside} are not part of split {self.split!r} "
                f"(its tasks: {', '.join(split.tasks)})"
            )
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        return tasks


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    if n == 0:
        return (0.0, 1.0)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _as_factory(policy) -> tuple[Callable, str]:
    if isinstance(policy, str | Path):
        from actionimages.policy.factory import make_policy

        return make_policy(policy), str(policy)
    if hasattr(policy, "select_action") and hasattr(policy, "reset"):
        return (lambda env: policy), type(policy).__name__
    if callable(policy):
        return policy, getattr(policy, "__name__", "policy")
    raise ValueError("policy must be 'expert', 'random', a checkpoint path, a policy or a factory")


def _frame(obs: dict, action, cameras: Sequence[str], overlay: bool) -> np.ndarray:
    """All views of one observation tiled side by side: (H, V*W, 3) uint8."""
    from actionimages.viz import overlay_action_images, tile_views

    views = np.stack([obs["images"][c] for c in cameras])  # (V, H, W, 3)
    if overlay and action is not None:
        from actionimages.codec import encode_action_images

        cams = [obs["cameras"][c] for c in cameras]
        act = encode_action_images(
            np.asarray(action.position)[None], np.asarray(action.rotation)[None],
            np.array([action.gripper]), cams,
        )[:, 0]  # fmt: skip
        views = overlay_action_images(views, np.asarray(act, dtype=np.float32))
    return tile_views(views, columns=min(len(cameras), 5))


def evaluate(
    policy,
    config: EvalConfig | None = None,
    out: str | Path | None = None,
    *,
    name: str | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate ``policy`` (see the module doc) and write results under ``out``.

    ``name`` labels the policy in the results (default: the spec or the class name).
    """
    from tqdm import tqdm

    from actionimages.sim.action import Action
    from actionimages.sim.env import make_env
    from actionimages.sim.splits import get_split

    config = config or EvalConfig()
    tasks = config.resolved_tasks()
    split = get_split(config.split)
    factory, default_name = _as_factory(policy)
    name = name or default_name
    out = Path(out) if out is not None else None
    t0 = time.time()
    results: dict[str, dict] = {}
    bar = tqdm(
        total=len(tasks) * config.episodes, desc=f"eval {name}", unit="ep", disable=not progress
    )
    won = 0  # running success count over all tasks, shown on the bar
    for task in tasks:
        env = make_env(task, config.cameras, config.image_size, split=config.split,
                       max_steps=config.max_steps)  # fmt: skip
        try:
            pol = factory(env)
            outcomes, steps, seeds = [], [], []
            for k in range(config.episodes):
                seed = split.episode_seed(config.first_episode + k)
                obs = env.reset(seed=seed)
                pol.reset()
                video = k < config.videos_per_task and out is not None and config.cameras
                # A policy may draw its own panel (the world-action policy: generated vs real).
                panel = getattr(pol, "panel", None) if video else None
                frames = [] if panel or not video else [_frame(obs, None, config.cameras, False)]
                done = False
                while not done:
                    action = Action.from_any(pol.select_action(obs))
                    if panel:
                        frames.append(panel(obs))
                    obs, _, done, _ = env.step(action)
                    if video and not panel:
                        frames.append(_frame(obs, action, config.cameras, config.overlay_actions))
                outcomes.append(env.success())
                steps.append(env.steps)
                seeds.append(seed)
                if video:
                    from actionimages.viz import write_mp4

                    write_mp4(out / "videos" / f"{task}_{k:03d}.mp4", np.stack(frames),
                              fps=env.config.control_hz)  # fmt: skip
                won += bool(outcomes[-1])
                bar.set_postfix_str(f"{task}: {won}/{bar.n + 1} succeeded", refresh=False)
                bar.update(1)
        finally:
            env.close()
        n, s = len(outcomes), int(sum(outcomes))
        results[task] = {
            "success_rate": s / n,
            "episodes": n,
            "successes": s,
            "wilson95": list(wilson_interval(s, n)),
            "mean_steps": float(np.mean(steps)),
            "seeds": seeds,
            "per_episode": [bool(o) for o in outcomes],
        }
    bar.close()
    summary = {
        "policy": name,
        "split": config.split,
        "tasks": results,
        "mean_success_rate": float(np.mean([r["success_rate"] for r in results.values()])),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - t0, 1),
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / "results.md").write_text(markdown_table(summary))
    return summary


def markdown_table(summary: dict) -> str:
    """Results as a markdown table (one row per task, then the mean)."""
    lines = [
        f"Policy `{summary['policy']}` on split `{summary['split']}` ({summary['date']})",
        "",
        "| task | success rate | episodes | Wilson 95% | mean steps |",
        "|---|---:|---:|---|---:|",
    ]
    for task, r in summary["tasks"].items():
        lo, hi = r["wilson95"]
        lines.append(
            f"| {task} | {100 * r['success_rate']:.0f}% | {r['episodes']} | "
            f"{100 * lo:.0f}-{100 * hi:.0f}% | {r['mean_steps']:.1f} |"
        )
    lines.append(f"| **mean** | **{100 * summary['mean_success_rate']:.1f}%** | | | |")
    return "\n".join(lines) + "\n"
