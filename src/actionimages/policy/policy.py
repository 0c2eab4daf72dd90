"""The zero-shot world-action-model policy: ``reset()`` / ``select_action(obs)`` over a chunk queue.

    policy = WorldActionPolicy.from_pretrained("models/tiny", PolicyConfig(loop="closed"))
    policy.reset()
    action = policy.select_action(obs)      # obs: the simulator's observation dict

``obs`` is exactly what :meth:`actionimages.sim.env.SimEnv.observe` returns: per-camera
RGB (``images``), per-camera :class:`~actionimages.geometry.Camera` (``cameras``), the
end-effector state and the instruction. Any cameras work: the action images are drawn
and decoded in whatever cameras the observation carries.

Each plan (a generated clip of T frames; frame 0 is the current pose) is decoded to a
7-DoF trajectory and its frames 1..T-1 go into the queue. Three loops:

    open     execute each plan whole, re-planning only at its horizon (a 3.2 s clip of
             the default model = 32 control steps); ``max_plans=1`` is the paper's
             one-generation-per-episode setting, after which the last action is held
    closed   keep the first ``replan_every`` actions of each plan, then re-plan from fresh
             observations (DreamZero), with optional chunk smoothing
    autoregressive   for a chunked model (``ModelConfig.chunk_frames``): plan one chunk
             at a time against a KV cache into which the executed chunk's real views
             and poses are written (:mod:`actionimages.policy.autoregressive`)

Both follow LeRobot's queue-first rule: ``select_action`` refills the queue from
:meth:`WorldActionPolicy.predict_action_chunk` when it is empty, then pops.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from actionimages.codec.decoder import DecodedActions
from actionimages.infer.pipeline import SamplingConfig
from actionimages.policy.planners import ModelPlanner, Plan
from actionimages.sim.action import Action

LOOPS = ("closed", "open", "autoregressive")
ANCHORS = ("absolute", "current")


@dataclass(frozen=True)
class PolicyConfig:
    """How the policy acts (see the module docstring).

    views: cameras of ``obs`` to use, in order (the model was trained on 2 views).
    loop: "closed", "open" or "autoregressive" (see the module docstring).
    replan_every: closed loop: steps executed per plan (the autoregressive loop executes
        each chunk whole: 4 K steps).
    max_plans: at most this many plans per episode (None: no limit); then the last action
        is held. ``loop="open", max_plans=1`` is the paper's one-trial setting.
    smoothing: DreamZero's chunk smoothing (SPEC 6): the decoded chunk is upsampled 2x with
        cubic splines, filtered by Savitzky-Golay of this window (odd, >= 5; DreamZero: 21)
        and order 3, then downsampled back; 0 = off. See :func:`smooth_chunk` for chunks
        shorter than the window.
    decoder: "triangulate" or "paper" (the geometric decoders of :mod:`actionimages.codec`).
    min_confidence: frames whose decoded points are less confident than this are dropped
        from the chunk (a blurry generated blob); the previous frame's action is repeated.
    sampling: how plans are sampled; None: the model folder's defaults (``config.json``).
    control_fps: the robot's control rate (the simulator's 10 Hz). A model whose clips run
        at a lower rate (``ClipConfig.long``: 2.5 fps) has its decoded plan interpolated to
        one action per control step (:func:`upsample_trajectory`).
    latency: asynchronous execution (DreamZero Sec. 3.2), in control steps. The next plan
        is made from the observation at step k, when ``latency`` actions of the current
        chunk are left; those keep running, and the new plan acts from step k + latency
        (its first ``latency`` actions, meant for steps the robot has already passed, are
        dropped). 0: synchronous, the robot waits for each plan. The first plan of an
        episode is always synchronous. Closed loop: below ``replan_every``; autoregressive
        loop: up to one chunk (4 K steps), and within a window nothing is dropped.
    anchor: "absolute" executes the decoded poses as they are (the paper). "current"
        executes the plan's motion from the robot's measured pose: the decoded frame 0,
        which should be the current pose, is moved onto it and every later frame moves
        with it (:func:`anchor_trajectory`). Frame 0 is known from proprioception, so its
        decoding error (the model's grounding error) is removed from every action, and
        only the predicted motion is kept. Closed and open loops.
    write_poses: autoregressive loop: also write the executed chunk's observed poses into
        the cache as its action frames, and give the prefill the current pose (the clean
        copy teacher forcing trains on). False (default): the views only, the model's own
        action frames kept (DreamZero writes video only). Chosen on validation seeds
        (in-domain episodes 100-109): 14% (7/50) with views only against 2% (1/50) with
        poses; given its pose, the tiny model holds it.
    """

    views: tuple[str, ...] = ("front", "left_shoulder")
    loop: str = "closed"
    replan_every: int = 4
    max_plans: int | None = None
    smoothing: int = 0
    decoder: str = "triangulate"
    min_confidence: float = 0.0
    control_fps: float = 10.0
    sampling: SamplingConfig | None = None
    latency: int = 0
    anchor: str = "absolute"
    write_poses: bool = False

    def __post_init__(self) -> None:
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {LOOPS}, got {self.loop!r}")
        if self.replan_every < 1:
            raise ValueError(f"replan_every must be >= 1, got {self.replan_every}")
        if self.max_plans is not None and self.max_plans < 1:
            raise ValueError(f"max_plans must be None or >= 1, got {self.max_plans}")
        if self.smoothing and (self.smoothing < 5 or self.smoothing % 2 == 0):
            raise ValueError(f"smoothing must be 0 or an odd window >= 5, got {self.smoothing}")
        if not self.views:
            raise ValueError("views must name at least one camera")
        if self.anchor not in ANCHORS or (
            self.anchor != "absolute" and self.loop == "autoregressive"
        ):
            raise ValueError(f"anchor must be one of {ANCHORS} ('current' with the closed or open "
                             f"loop), got {self.anchor!r} with loop {self.loop!r}")  # fmt: skip
        if self.latency < 0 or (
            self.latency
            and (
                self.loop == "open" or (self.loop == "closed" and self.latency >= self.replan_every)
            )
        ):
            raise ValueError(
                f"latency must be 0, or in closed loop 1..replan_every-1 ({self.replan_every - 1}) "
                f"(autoregressive: up to one chunk); "
                f"got {self.latency} with loop {self.loop!r}"
            )


class WorldActionPolicy:
    """A planner (model or ground truth) + geometric decoding + an action-chunk queue."""

    def __init__(self, planner, config: PolicyConfig | None = None) -> None:
        if not all(hasattr(planner, a) for a in ("clip", "reset", "plan")):
            raise TypeError(
                f"{type(planner).__name__} is not a Planner: it needs .clip (the ClipConfig of its "
                "plans), .reset() and .plan(obs, views) (see actionimages.policy.Planner)"
            )
        self.planner, self.config = planner, config or PolicyConfig()
        if self.config.loop == "autoregressive":
            _check_autoregressive(planner, self.config)
        self.queue: deque[Action] = deque()
        self.plans: list[PlanRecord] = []
        self.steps = 0
        self._last: Action | None = None

    @classmethod
    def from_pretrained(
        cls, path, config: PolicyConfig | None = None, device: str = "cpu"
    ) -> WorldActionPolicy:
        from actionimages.infer.pipeline import WorldActionPipeline

        config = config or PolicyConfig()
        pipe = WorldActionPipeline.from_pretrained(path, device)
        if config.loop == "autoregressive":
            from actionimages.policy.autoregressive import AutoregressivePlanner

            return cls(AutoregressivePlanner(pipe, config.sampling, config.write_poses), config)
        return cls(ModelPlanner(pipe, config.sampling), config)

    def reset(self) -> None:
        self.queue.clear()
        self.plans, self.steps, self._last = [], 0, None
        self.planner.reset()

    def select_action(self, obs: dict) -> Action:
        """The next action: refill the queue from a new plan when it is empty, then pop."""
        limit, lag = self.config.max_plans, self.config.latency
        chunked = self.config.loop == "autoregressive"
        if chunked:  # every real observation goes to the planner's cache
            self.planner.observe(obs, self.config.views)
        may_plan = limit is None or len(self.plans) < limit
        planned = False
        if not self.queue and may_plan:  # synchronous: the robot waits for this plan
            self.queue.extend(self.predict_action_chunk(obs))
            planned = True
        if lag and len(self.queue) == lag and may_plan and (chunked or not planned):
            # asynchronous: plan while acting (a chunk of exactly ``lag`` steps is planned
            # for at once, when the autoregressive loop's latency is a whole chunk)
            self.queue.extend(self.predict_action_chunk(obs, skip=lag))
        if self.queue:
            self._last = self.queue.popleft()
        elif self._last is None:  # nothing planned at all: hold the current pose
            self._last = Action(obs["ee_position"], obs["ee_rotation"], float(obs["gripper"]))
        self.steps += 1
        return self._last

    def predict_action_chunk(self, obs: dict, skip: int = 0) -> list[Action]:
        """Plan from ``obs`` and return the actions this loop executes before the next plan.

        ``skip``: drop the first actions (asynchronous execution: they fall in the
        ``latency`` steps the previous chunk still covers). The autoregressive planner
        aligns its chunk itself, from the number of actions still queued.
        """
        cfg = self.config
        if cfg.loop == "autoregressive":
            chunk = self._plan(obs, pending=len(self.queue))
            hold_steps = len(self.plans[-1].plan.cams[0]) - 1  # the steps this plan covers
        else:
            chunk = self._plan(obs)[skip:]
            hold_steps = cfg.replan_every
        if not chunk:  # nothing decodable in this plan: hold the current pose, then re-plan
            hold = Action(obs["ee_position"], obs["ee_rotation"], float(obs["gripper"]))
            chunk = [self._last or hold] * hold_steps
        return chunk[: cfg.replan_every] if cfg.loop == "closed" else chunk

    def panel(self, obs: dict) -> np.ndarray:
        """A rollout video frame: real vs generated, action images overlaid (:func:`actionimages.viz.policy_panel`)."""
        from actionimages.viz import policy_panel

        return policy_panel(self, obs)

    # --- one plan -> a chunk of actions --------------------------------------------------
    def _plan(self, obs: dict, pending: int | None = None) -> list[Action]:
        if pending is None:
            plan = self.planner.plan(obs, self.config.views)
        else:
            plan = self.planner.plan(obs, self.config.views, pending=pending)
        traj = (
            plan.trajectory
            if plan.trajectory is not None
            else self.decode(plan, obs["ee_rotation"])
        )
        self.plans.append(PlanRecord(self.steps, plan, traj))
        if self.config.anchor == "current":
            traj = anchor_trajectory(traj, obs["ee_position"], obs["ee_rotation"])
        clip = self.planner.clip
        from actionimages.clips import source_frames_per_clip_frame

        traj = upsample_trajectory(
            traj, source_frames_per_clip_frame(self.config.control_fps, clip.fps)
        )
        return chunk_actions(traj, self.config.smoothing, self.config.min_confidence)

    def decode(self, plan: Plan, current_rotation=None) -> DecodedActions | None:
        """Decoded trajectory of a plan, or None (the reason in ``plan.info["error"]``).

        Where the rotation points are out of every view, the current rotation is kept (the
        position still comes from the images)."""
        from actionimages.codec.decoder import decode_action_images

        clip = self.planner.clip
        try:
            dec = decode_action_images(plan.actions, plan.cams, method=self.config.decoder,
                                       layout=clip.layout, sigma=clip.sigma,
                                       fallback_rotation=current_rotation)  # fmt: skip
        except ValueError as err:  # no point found in two views anywhere: an unusable plan
            plan.info["error"] = str(err)
            return None
        return dec


def _check_autoregressive(planner, config: PolicyConfig) -> None:
    from actionimages.clips import source_frames_per_clip_frame

    steps = getattr(planner, "chunk_steps", None)
    if steps is None or not hasattr(planner, "observe"):
        raise TypeError(
            f"loop 'autoregressive' needs an AutoregressivePlanner, got {type(planner).__name__}"
        )
    if source_frames_per_clip_frame(config.control_fps, planner.clip.fps) != 1:
        raise ValueError(
            f"loop 'autoregressive' needs clips at the control rate ({config.control_fps} fps); "
            f"this model's clips run at {planner.clip.fps} fps"
        )
    if config.latency > steps:
        raise ValueError(f"latency {config.latency} exceeds one chunk ({steps} control steps)")


def chunk_actions(
    traj: DecodedActions | None, smoothing: int = 0, min_confidence: float = 0.0
) -> list[Action]:
    """Decoded trajectory (T frames, frame 0 = now) -> Actions for frames 1..T-1 (none if None).

    Smoothing (:func:`smooth_chunk`, window ``smoothing``) runs over position and the 6-D
    rotation, which are then projected back to a rotation; the gripper is left as decoded
    (its steps are real).
    """
    from actionimages.geometry import matrix_to_rot6d, nearest_rotation, rot6d_to_matrix

    if traj is None:
        return []
    pos = np.asarray(traj.position, dtype=np.float64)  # (T, 3)
    rot6 = np.asarray(matrix_to_rot6d(np.asarray(traj.rotation, dtype=np.float64)))  # (T, 6)
    grip = np.clip(np.asarray(traj.gripper, dtype=np.float64), 0.0, 1.0)  # (T,)
    if not (np.isfinite(pos).all() and np.isfinite(rot6).all() and np.isfinite(grip).all()):
        return []
    if smoothing:
        pos, rot6 = smooth_chunk(pos, smoothing), smooth_chunk(rot6, smoothing)
    rot = np.asarray(nearest_rotation(rot6d_to_matrix(rot6)))  # (T, 3, 3)
    conf = np.asarray(traj.step_confidence)  # (T,)
    out, last = [], None
    for t in range(1, len(pos)):
        if conf[t] >= min_confidence or last is None:
            last = Action(pos[t], rot[t], float(grip[t]))
        out.append(last)
    return out


def anchor_trajectory(traj: DecodedActions | None, position, rotation) -> DecodedActions | None:
    """Move a decoded plan so that its frame 0 is the measured pose (``position`` (3,),
    ``rotation`` (3, 3)); later frames keep their motion relative to frame 0.

        p'_t = p + (p_t - p_0)          R'_t = R_t R_0^T R

    i.e. the displacement is applied in the world frame and the rotation change is applied
    on the left, as the decoded frames move. The gripper is kept as decoded (its level is
    read from the image, not from a position). ``points`` and the per-step evidence stay
    as decoded: they describe what the model drew. None stays None.
    """
    if traj is None:
        return None
    pos = np.asarray(traj.position, dtype=np.float64)  # (T, 3)
    rot = np.asarray(traj.rotation, dtype=np.float64)  # (T, 3, 3)
    p_now = np.asarray(position, dtype=np.float64).reshape(3)
    r_now = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    if not (np.isfinite(pos).all() and np.isfinite(rot).all()):
        return traj  # chunk_actions drops a non-finite plan
    moved = p_now + (pos - pos[:1])  # (T, 3)
    turned = rot @ rot[0].T @ r_now  # (T, 3, 3)
    return dataclasses.replace(traj, position=moved, rotation=turned)


def upsample_trajectory(traj: DecodedActions | None, k: int) -> DecodedActions | None:
    """A decoded plan of T frames -> (T - 1) k + 1 frames, one per control step.

    Positions, points and gripper are interpolated linearly, rotations by spherical
    linear interpolation (SciPy's Slerp) between successive decoded frames; per-step
    evidence (confidence, views used, visibility, reprojection error) takes the weaker of
    its segment's two frames. ``k = 1`` or an undecodable plan (None) returns ``traj``.
    """
    if k == 1 or traj is None:
        return traj
    from scipy.spatial.transform import Rotation, Slerp

    T = len(traj.position)
    t_new = np.arange((T - 1) * k + 1) / k  # (T',) in units of clip frames

    def lerp(x):  # (T, ...) -> (T', ...)
        x = np.asarray(x, dtype=np.float64)
        flat = x.reshape(T, -1)
        cols = [np.interp(t_new, np.arange(T), flat[:, j]) for j in range(flat.shape[1])]
        return np.stack(cols, 1).reshape(len(t_new), *x.shape[1:])

    def weaker(x, pick, axis=0):  # the weaker end of each segment, repeated k times, then the last
        x = np.moveaxis(np.asarray(x), axis, 0)
        lo = pick(x[:-1], x[1:])
        out = np.concatenate([np.repeat(lo, k, axis=0), x[-1:]])
        return np.moveaxis(out, 0, axis)

    rot = Rotation.from_matrix(np.asarray(traj.rotation, dtype=np.float64))
    return dataclasses.replace(
        traj, position=lerp(traj.position), rotation=Slerp(np.arange(T), rot)(t_new).as_matrix(),
        gripper=lerp(traj.gripper), points=lerp(traj.points),
        confidence=weaker(traj.confidence, np.minimum), views_used=weaker(traj.views_used, np.minimum),
        reprojection_error=weaker(traj.reprojection_error, np.maximum),
        visible=weaker(traj.visible, np.logical_and, axis=1),
    )  # fmt: skip


@dataclass(frozen=True)
class PlanRecord:
    """One plan the policy made: the control step it was made at, the plan, its decoding."""

    step: int
    plan: Plan
    trajectory: DecodedActions | None


SMOOTHING_ORDER = 3


def smooth_chunk(x: np.ndarray, window: int = 21) -> np.ndarray:
    """DreamZero's chunk smoothing of (T, D) samples -> (T, D).

    2x cubic-spline upsampling (2T - 1 samples), Savitzky-Golay of order 3 over ``window``
    upsampled samples, then every second sample. A chunk whose upsampled length is shorter
    than ``window`` (a 9-frame chunk gives 17 samples) is filtered with the longest odd
    window that fits; below order + 2 = 5 samples it is returned unchanged, since such a
    filter would reproduce its input anyway.
    """
    from scipy.interpolate import CubicSpline
    from scipy.signal import savgol_filter

    T = len(x)
    if 2 * T - 1 < SMOOTHING_ORDER + 2:
        return x
    fine = CubicSpline(np.arange(T), x, axis=0)(np.linspace(0, T - 1, 2 * T - 1))  # (2T-1, D)
    w = min(window, len(fine) if len(fine) % 2 else len(fine) - 1)
    if w < SMOOTHING_ORDER + 2:
        return x
    return savgol_filter(fine, w, SMOOTHING_ORDER, axis=0)[::2]
