"""Where a policy's action images come from: the world action model, or the ground truth.

A planner turns the current observation into a :class:`Plan`: action images of the
policy's views at the model's resolution, the cameras they are drawn in, and (for the
model) the generated video. The policy decodes every plan the same way, so swapping the
model for :class:`GroundTruthPlanner` measures the decode-and-execute path alone (issue 6:
with ground-truth action images the policy must match the expert).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from actionimages.clips import ClipConfig
from actionimages.codec.decoder import DecodedActions
from actionimages.geometry.camera import Camera
from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline
from actionimages.sim.expert import ExpertPolicy


@dataclass
class Plan:
    """One chunk's worth of planning output.

    actions: (V, T, H, W, 3) action images in [0, 1] (None for a vector-action model).
    cams: per view the T cameras of the model frame (what the decoder needs).
    video: (V, T, H, W, 3) generated video in [0, 1], or None (ground truth).
    trajectory: decoded directly by the planner (vector-action model), else None.
    info: planner details ("model_calls"; "error" when the plan could not be decoded).
    """

    actions: np.ndarray | None
    cams: list[list[Camera]]
    video: np.ndarray | None = None
    trajectory: DecodedActions | None = None
    info: dict = field(default_factory=dict)


@runtime_checkable
class Planner(Protocol):
    """What :class:`~actionimages.policy.WorldActionPolicy` asks of a planner.

    clip: the :class:`~actionimages.clips.ClipConfig` its plans are framed in (frames per
        plan, frame rate, action-image layout and sigma, which the decoder needs).
    reset(): start a new episode.
    plan(obs, views) -> Plan: one chunk from an observation (see
        :class:`~actionimages.policy.Observation` for the keys read: ``images`` and
        ``cameras`` of ``views``, ``instruction``, and ``ee_position``, ``ee_rotation``,
        ``gripper`` for a model given the current pose).
    """

    clip: ClipConfig

    def reset(self) -> None: ...

    def plan(self, obs: dict, views) -> Plan: ...


def observation_views(obs: dict, views) -> tuple[list[np.ndarray], list[Camera]]:
    """The images and cameras of ``views`` in ``obs``, with a clear error for a missing one."""
    missing = [
        v for v in views if v not in obs.get("images", {}) or v not in obs.get("cameras", {})
    ]
    if missing:
        raise ValueError(
            f"observation lacks view(s) {missing}; it has {sorted(obs.get('images', {}))}. "
            "Pass the policy the views your robot has (PolicyConfig(views=...))"
        )
    return [obs["images"][v] for v in views], [obs["cameras"][v] for v in views]


class ModelPlanner:
    """Jointly generates video and action images from the current views (the zero-shot policy)."""

    def __init__(
        self, pipeline: WorldActionPipeline, sampling: SamplingConfig | None = None
    ) -> None:
        # None: the model folder's own default sampling settings
        self.pipeline, self.sampling = pipeline, sampling or pipeline.default_sampling
        self.calls = 0

    @property
    def clip(self) -> ClipConfig:
        return self.pipeline.clip

    @property
    def horizon(self) -> int:
        return self.pipeline.clip.num_frames

    def reset(self) -> None:
        self.calls = 0

    def plan(self, obs: dict, views) -> Plan:
        images, cameras = observation_views(obs, views)
        state = None
        if self.pipeline.takes_state:  # the current pose, from proprioception
            state = (obs["ee_position"], obs["ee_rotation"], obs["gripper"])
        batch, cams = self.pipeline.make_batch(images, cameras, obs["instruction"], state=state)
        # a new seed per call, reproducible from the episode's call count
        out = self.pipeline(
            batch, "generate", self.sampling.replace(seed=self.sampling.seed + self.calls)
        )
        self.calls += 1
        video = out.video[0].numpy()
        if out.actions is None:  # vector-action baseline: no images to decode
            info = {"model_calls": out.model_calls}
            try:
                traj = self.pipeline.decode_actions(out, cams)
            except ValueError as err:  # e.g. a degenerate 6-D rotation: an unusable plan
                traj, info["error"] = None, str(err)
            return Plan(None, cams, video, traj, info)
        return Plan(out.actions[0].numpy(), cams, video, None, {"model_calls": out.model_calls})


class GroundTruthPlanner:
    """Action images drawn from the expert's own future commands (an upper bound for the policy).

    At ``reset`` it replays the current episode's seed in a shadow environment without
    cameras, records the expert's commanded targets, and from then on draws the next
    ``horizon`` of them (frame 0 = the previous command, as frame 0 of a generated clip
    is the current pose) into the policy's views, in the model's image frame.
    """

    def __init__(self, env, clip: ClipConfig) -> None:
        self.env, self.clip = env, clip
        self.shadow = None
        self.targets: list = []
        self.step = 0
        self._recorded = False

    @classmethod
    def from_trajectory(cls, position, rotation, gripper, clip: ClipConfig) -> GroundTruthPlanner:
        """Replay an expert trajectory recorded elsewhere (another simulator, a real robot).

        position (N, 3), rotation (N, 3, 3), gripper (N,): the commanded end-effector
        targets at the control rate, index 0 = the pose at the episode's start; the plan at
        step k draws targets k .. k + horizon - 1 (the last one held).
        """
        pos, rot = np.asarray(position, np.float64), np.asarray(rotation, np.float64)
        grip = np.asarray(gripper, np.float64)
        N = len(pos)
        if pos.shape != (N, 3) or rot.shape != (N, 3, 3) or grip.shape != (N,) or N == 0:
            raise ValueError(
                f"trajectory must be position (N, 3), rotation (N, 3, 3), gripper (N,), got "
                f"{pos.shape}, {rot.shape}, {grip.shape}"
            )
        planner = cls(None, clip)
        planner.targets = [(pos[i], rot[i], float(grip[i])) for i in range(N)]
        planner._recorded = True
        return planner

    @property
    def horizon(self) -> int:
        return self.clip.num_frames

    def reset(self) -> None:
        self.step = 0
        if self._recorded:  # a given trajectory: nothing to replay
            return
        if self.shadow is None:
            self.shadow = self.env.with_config(cameras=())
        self.shadow.reset(seed=self.env.seed)
        expert = ExpertPolicy(self.shadow)
        expert.reset()
        pos, rot = self.shadow.robot.ee_pose()
        self.targets = [
            (np.asarray(pos), np.asarray(rot), float(self.shadow.robot.commanded_gripper))
        ]
        done = False
        while not done:
            a = expert.select_action(None)
            self.targets.append((a.position, a.rotation, a.gripper))
            _, _, done, _ = self.shadow.step(a)
        self.step = 0

    def plan(self, obs: dict, views) -> Plan:
        from actionimages.infer.inputs import action_images, make_batch

        images, cameras = observation_views(obs, views)
        k = int(obs.get("step", self.step))
        idx = np.minimum(
            np.arange(k, k + self.horizon), len(self.targets) - 1
        )  # hold the last target
        pos = np.stack([self.targets[i][0] for i in idx])  # (T, 3)
        rot = np.stack([self.targets[i][1] for i in idx])  # (T, 3, 3)
        grip = np.array([self.targets[i][2] for i in idx])  # (T,)
        _, cams = make_batch(self.clip, images, cameras, obs["instruction"])
        acts = action_images(
            self.clip, torch.from_numpy(pos), torch.from_numpy(rot), torch.from_numpy(grip), cams
        )
        return Plan(acts.numpy(), cams)

    def close(self) -> None:
        if self.shadow is not None:
            self.shadow.close()
