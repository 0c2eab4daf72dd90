"""The four training tasks as frame masks over the packed sequence (paper Sec. 3.3).

Each packed latent frame gets a state:

    VISIBLE    clean latents, timestep 0, no loss        (the condition)
    PREDICTED  noised at the sampled t, loss on it       (what the task generates)
    UNKNOWN    pure noise, timestep 1 (1000), no loss    (no data: actions of video-only clips)

The first frame of every video clip is always VISIBLE (the current observation).

    task               video clips          action clips
    joint              predicted            predicted
    action_to_video    predicted            visible
    video_to_action    visible              predicted
    video_only         predicted            unknown

Beyond the paper (SPEC 4): at planning time the current end-effector pose is known from
proprioception and calibration, so frame 0 of every action clip can be given as a
VISIBLE condition in the tasks that predict actions (joint, video_to_action), just as
frame 0 of the video is. ``first_action_visible`` switches this per sample.

Why UNKNOWN rather than dropping the action slots: the batch keeps one shape, and at
t = 1 the slots look exactly like the start of joint generation, so video-only data
teaches the same sampler path without inventing actions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from actionimages.clips import TASKS
from actionimages.model.packing import ACTION, VIDEO, frame_roles

PAPER_TASK_RATIOS = (0.85, 0.05, 0.05, 0.05)
VISIBLE, PREDICTED, UNKNOWN = 0, 1, 2


def task_frame_states(
    task: int | str, num_views: int, frames_per_clip: int, first_action_visible: bool = False
) -> torch.Tensor:
    """(2 V F,) long frame states (VISIBLE / PREDICTED / UNKNOWN) of one task.

    ``first_action_visible``: frame 0 of each action clip is given (the current pose) when
    the task predicts actions; a no-op for action_to_video and video_only.
    """
    t = TASKS.index(task) if isinstance(task, str) else int(task)
    if not 0 <= t < len(TASKS):
        raise ValueError(f"task must be one of {TASKS} or its index, got {task!r}")
    modality, _, index = frame_roles(num_views, frames_per_clip)
    video, action = modality == VIDEO, modality == ACTION
    states = torch.full(modality.shape, PREDICTED, dtype=torch.long)
    name = TASKS[t]
    if name == "action_to_video":
        states[action] = VISIBLE
    elif name == "video_to_action":
        states[video] = VISIBLE
    elif name == "video_only":
        states[action] = UNKNOWN
    states[video & (index == 0)] = VISIBLE  # the current observation is always given
    if first_action_visible and name in ("joint", "video_to_action"):
        states[action & (index == 0)] = VISIBLE
    return states


def sample_tasks(
    allowed: torch.Tensor,
    ratios: Sequence[float],
    generator: torch.Generator,
) -> torch.Tensor:
    """One task per sample, drawn with ``ratios`` renormalised over the allowed tasks.

    Args:
        allowed: (B, 4) bool, which tasks each sample supports (the sampler's ``tasks``).
        ratios: 4 non-negative weights in :data:`TASKS` order. Clips that allow only
            video_only shift the realised mix towards it; :func:`exact_mix_ratios` gives
            the ratios that realise a target mix exactly (the trainer's ``task_mix="exact"``).

    Returns:
        (B,) long task indices.
    """
    w = torch.as_tensor(ratios, dtype=torch.float64)
    if w.shape != (len(TASKS),) or (w < 0).any() or not torch.isfinite(w).all():
        raise ValueError(f"ratios must be {len(TASKS)} non-negative numbers, got {list(ratios)}")
    if allowed.ndim != 2 or allowed.shape[1] != len(TASKS):
        raise ValueError(f"allowed must be (B, {len(TASKS)}) bool, got {tuple(allowed.shape)}")
    p = w[None] * allowed.to(torch.float64)  # (B, 4)
    if (p.sum(1) <= 0).any():
        raise ValueError("a sample allows no task with a positive ratio")
    return torch.multinomial(p / p.sum(1, keepdim=True), 1, generator=generator)[:, 0]


def exact_mix_ratios(
    ratios: Sequence[float], restricted_fraction: float
) -> tuple[tuple[float, ...], float]:
    """How to realise ``ratios`` exactly when a fraction f of clips can only be video_only.

    Returns (ratios for fully labelled clips, probability of keeping a video-only clip).
    With targets r (normalised): if f <= r_vo, labelled clips draw r'_vo = (r_vo - f) /
    (1 - f) and r'_k = r_k / (1 - f), and every clip is kept, so f + (1 - f) r'_vo = r_vo.
    If f > r_vo, labelled clips never draw video_only and a video-only clip is kept (its
    loss counted) with probability p = r_vo (1 - f) / (f (1 - r_vo)), which makes
    f p / (1 - f + f p) = r_vo among the clips that train.
    """
    r = np.asarray(ratios, dtype=np.float64)
    r = r / r.sum()
    f = float(restricted_fraction)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"restricted_fraction must lie in [0, 1), got {f}")
    vo = TASKS.index("video_only")
    out = r.copy()
    if f <= r[vo]:
        out[vo] = r[vo] - f
        return tuple((out / out.sum()).tolist()), 1.0
    out[vo] = 0.0
    return tuple((out / out.sum()).tolist()), float(r[vo] * (1 - f) / (f * (1 - r[vo])))


def frame_states(
    tasks: torch.Tensor,
    num_views: int,
    frames_per_clip: int,
    first_action_visible: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) task indices (and optional (B,) bool known first action) -> (B, 2 V F) frame states."""
    table = torch.stack(
        [
            torch.stack(
                [task_frame_states(t, num_views, frames_per_clip, k) for k in (False, True)]
            )
            for t in range(len(TASKS))
        ]
    )  # (4, 2, 2VF)
    known = (
        torch.zeros_like(tasks.cpu())
        if first_action_visible is None
        else first_action_visible.cpu().long()
    )
    return table[tasks.cpu(), known].to(tasks.device)  # (B, 2VF)


def frame_timesteps(states: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-frame noise level in [0, 1]: 0 visible, ``t`` predicted, 1 unknown -> (B, 2 V F).

    ``t``: (B,) one level per sample, or (B, 2 V F) per frame (the autoregressive mode's
    per-chunk levels).
    """
    t = t[:, None] if t.ndim == 1 else t
    sigma = torch.where(
        states == PREDICTED, t.to(torch.float32), torch.zeros((), dtype=torch.float32)
    )
    return torch.where(states == UNKNOWN, torch.ones((), dtype=torch.float32), sigma)


def to_tokens(per_frame: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """(B, F) per-frame values -> (B, F * tokens_per_frame) per-token values (token order f, h, w)."""
    return per_frame.repeat_interleave(tokens_per_frame, dim=1)
