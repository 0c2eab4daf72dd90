"""Actions as low-dimensional vectors in latent frames: the design the paper argues against.

The baseline world model of issue 7 keeps the backbone, the packing, the masking tasks and
the sampler of the action-image model and changes one thing: an action clip is not a
rendered, camera-grounded heatmap video but the raw 10-D action vectors
(position, 6-D rotation, gripper) of its frames written into latent frames, the way
Cosmos-Policy injects actions as latent frames. The vectors live in the robot's base frame,
so the model has to learn the map from pixels to robot coordinates itself, for every
camera pose, which is what the paper says does not transfer to new views.

Layout of one action clip, T = 1 + 4k frames -> F = 1 + k latent frames (C, h, w):

    latent frame 0       frame 0, repeated in 4 slots        (like the codec's causal first frame)
    latent frame j >= 1  frames 4j - 3 .. 4j, one per slot
    each frame's (4 slots x 10 values) is tiled ``C h w // 40`` times over the flattened
    latent frame, the remainder is 0; decoding averages the copies

Every view gets the same action clip (the actions do not depend on the camera).
"""

from __future__ import annotations

import torch

from actionimages.geometry import matrix_to_rot6d, nearest_rotation, rot6d_to_matrix

ACTION_DIM = 10  # position (3), 6-D rotation (6), gripper (1)
# Normalisation to about unit scale, like the codec's unit-std latents. The centre is the
# middle of the simulator's workspace; other robots' data is fine too (only the scale matters).
POSITION_CENTER = (0.5, 0.0, 0.2)
POSITION_SCALE = 0.2
ROT6D_SCALE = 1.5


def pose_to_vector(
    position: torch.Tensor, rotation: torch.Tensor, gripper: torch.Tensor
) -> torch.Tensor:
    """(..., 3), (..., 3, 3), (...) -> (..., 10) normalised action vectors."""
    center = torch.tensor(POSITION_CENTER, dtype=position.dtype, device=position.device)
    return torch.cat(
        [
            (position - center) / POSITION_SCALE,
            matrix_to_rot6d(rotation.to(position.dtype)) * ROT6D_SCALE,
            (2 * gripper.to(position.dtype) - 1)[..., None],
        ],
        dim=-1,
    )


def vector_to_pose(vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., 10) -> position (..., 3), rotation (..., 3, 3) (nearest rotation), gripper (...) in [0, 1]."""
    center = torch.tensor(POSITION_CENTER, dtype=vec.dtype, device=vec.device)
    position = vec[..., :3] * POSITION_SCALE + center
    rotation = nearest_rotation(rot6d_to_matrix(vec[..., 3:9] / ROT6D_SCALE))
    gripper = ((vec[..., 9] + 1) / 2).clamp(0, 1)
    return position, rotation, gripper


def _slots(frames: int, temporal_factor: int) -> torch.Tensor:
    """(F, tf) source frame of each slot of each latent frame."""
    if (frames - 1) % temporal_factor:
        raise ValueError(f"T={frames} frames must be 1 + {temporal_factor}k")
    rest = torch.arange(1, frames).reshape(-1, temporal_factor)  # (F - 1, tf)
    return torch.cat([torch.zeros(1, temporal_factor, dtype=torch.long), rest])  # (F, tf)


def vectors_to_latents(
    vec: torch.Tensor, temporal_factor: int, latent_shape: tuple[int, int, int]
) -> torch.Tensor:
    """(B, T, 10) action vectors -> (B, C, F, h, w) latent frames (see the module docstring)."""
    if vec.ndim != 3 or vec.shape[-1] != ACTION_DIM:
        raise ValueError(f"action vectors must be (B, T, {ACTION_DIM}), got {tuple(vec.shape)}")
    B, T, _ = vec.shape
    C, h, w = latent_shape
    per_frame = temporal_factor * ACTION_DIM
    copies = (C * h * w) // per_frame
    if copies < 1:
        raise ValueError(f"a latent frame of {C * h * w} values cannot hold {per_frame}")
    slots = _slots(T, temporal_factor)  # (F, tf)
    groups = vec[:, slots].flatten(2)  # (B, F, tf, 10) -> (B, F, tf*10)
    flat = groups.repeat(1, 1, copies)  # (B, F, copies*tf*10)
    flat = torch.cat([flat, flat.new_zeros(B, flat.shape[1], C * h * w - flat.shape[2])], dim=2)
    return (
        flat.reshape(B, -1, C, h, w).transpose(1, 2).contiguous()
    )  # (B, F, C, h, w) -> (B, C, F, h, w)


def latents_to_vectors(lat: torch.Tensor, temporal_factor: int) -> torch.Tensor:
    """(B, C, F, h, w) -> (B, T, 10) with T = 1 + tf (F - 1), averaging the tiled copies."""
    B, C, Fr, h, w = lat.shape
    per_frame = temporal_factor * ACTION_DIM
    copies = (C * h * w) // per_frame
    flat = lat.transpose(1, 2).reshape(B, Fr, C * h * w)[..., : copies * per_frame]  # (B, F, n)
    groups = flat.reshape(B, Fr, copies, temporal_factor, ACTION_DIM).mean(2)  # (B, F, tf, 10)
    first = groups[:, :1].mean(2)  # (B, 1, 10): frame 0 sits in every slot of latent frame 0
    return torch.cat([first, groups[:, 1:].flatten(1, 2)], dim=1)  # (B, 1 + tf (F-1), 10)
