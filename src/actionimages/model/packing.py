"""Pack several clips into one latent sequence along the frame axis.

Order (the authors' release): [video_v1, action_v1, video_v2, action_v2, ...] for any
number of views V. Every clip has the same F latent frames, so clip k occupies frames
k*F .. (k+1)*F - 1 of the packed tensor. Without actions the sequence still has the
action slots (filled by the caller, e.g. with noise), so one batch has one shape.

    packed = pack_clips(video, actions)        # (B, V, C, F, h, w) x2 -> (B, C, 2 V F, h, w)
    video, actions = unpack_clips(packed, V)   # and back
"""

from __future__ import annotations

import torch

VIDEO, ACTION = 0, 1


def pack_clips(video: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """(B, V, C, F, h, w) video and action latents -> (B, C, 2 V F, h, w) packed sequence."""
    if video.ndim != 6 or video.shape != actions.shape:
        raise ValueError(
            f"video and actions must both be (B, V, C, F, h, w), got {tuple(video.shape)} and {tuple(actions.shape)}"
        )
    B, V, C, Fr, h, w = video.shape
    x = torch.stack([video, actions], dim=2)  # (B, V, 2, C, F, h, w)
    x = x.permute(0, 3, 1, 2, 4, 5, 6)  # (B, C, V, 2, F, h, w)
    return x.reshape(B, C, V * 2 * Fr, h, w)  # (B, C, [v1 a1 v2 a2 ...] x F, h, w)


def unpack_clips(packed: torch.Tensor, num_views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, 2 V F, h, w) -> video (B, V, C, F, h, w), actions (B, V, C, F, h, w)."""
    B, C, total, h, w = packed.shape
    if total % (2 * num_views):
        raise ValueError(f"{total} packed frames do not split into {2 * num_views} clips")
    x = packed.reshape(B, C, num_views, 2, total // (2 * num_views), h, w)  # (B, C, V, 2, F, h, w)
    x = x.permute(0, 2, 3, 1, 4, 5, 6)  # (B, V, 2, C, F, h, w)
    return x[:, :, VIDEO], x[:, :, ACTION]


def pack_camera(camera: torch.Tensor) -> torch.Tensor:
    """Per-view camera maps (B, V, F, C_cam, h, w) -> (B, 2 V F, C_cam, h, w) in clip order.

    A view's action clip is drawn in that view's image plane, so it gets the view's camera.
    """
    if camera.ndim != 6:
        raise ValueError(f"camera must be (B, V, F, C_cam, h, w), got {tuple(camera.shape)}")
    B, V, Fr, C, h, w = camera.shape
    x = camera.unsqueeze(2).expand(B, V, 2, Fr, C, h, w)  # (B, V, 2, F, C, h, w)
    return x.reshape(B, V * 2 * Fr, C, h, w)


def frame_roles(
    num_views: int, frames_per_clip: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each packed frame: (modality VIDEO/ACTION, view index, frame index within its clip).

    Returns three (2 V F,) long tensors.
    """
    V, Fr = num_views, frames_per_clip
    clip = torch.arange(2 * V).repeat_interleave(Fr)  # (2VF,) clip number of each frame
    return clip % 2, clip // 2, torch.arange(Fr).repeat(2 * V)


def to_frame_deltas(
    packed: torch.Tensor, num_views: int, modalities=(VIDEO, ACTION)
) -> torch.Tensor:
    """(B, C, 2 V F, h, w) -> the same with frames 1.. of each clip minus the clip's frame 0.

    Only clips of the given ``modalities`` (VIDEO, ACTION) change. An invertible linear
    change of latent space (:func:`from_frame_deltas` undoes it). What does not move
    between frames (the scene) becomes exactly zero, so a small model starts from
    "nothing changes" instead of having to learn to copy frame 0 through attention; see
    ``ModelConfig.frame_deltas``.
    """
    return _frame_deltas(packed, num_views, modalities, -1.0)


def from_frame_deltas(
    packed: torch.Tensor, num_views: int, modalities=(VIDEO, ACTION)
) -> torch.Tensor:
    """Inverse of :func:`to_frame_deltas`: (B, C, 2 V F, h, w) deltas -> plain latents."""
    return _frame_deltas(packed, num_views, modalities, 1.0)


def _frame_deltas(packed, num_views: int, modalities, sign: float) -> torch.Tensor:
    B, C, total, h, w = packed.shape
    x = packed.reshape(B, C, 2 * num_views, total // (2 * num_views), h, w)  # (B, C, 2V, F, h, w)
    clips = torch.tensor([c % 2 in modalities for c in range(2 * num_views)], device=x.device)
    first = x[:, :, :, :1] * clips[None, None, :, None, None, None].to(
        x.dtype
    )  # (B, C, 2V, 1, h, w)
    x = torch.cat([x[:, :, :, :1], x[:, :, :, 1:] + sign * first], dim=3)
    return x.reshape(B, C, total, h, w)
