"""Batched projection, pixel rays and Plücker maps (NumPy or torch, any batch shape)."""

from __future__ import annotations

import torch

from actionimages._arrays import numpy_or_torch

# Points closer than this (metres, along the optical axis) count as behind the camera.
DEFAULT_NEAR = 1e-3


@numpy_or_torch
def project_points(points, K, world_to_camera):
    """Project world points into cameras.

    Args:
        points: (..., N, 3) world coordinates.
        K: (..., 3, 3) intrinsics; world_to_camera: (..., 4, 4). Leading dims broadcast.

    Returns:
        uv: (..., N, 2) pixel coordinates (top-left-corner origin). Points at or behind
            the camera plane get finite but meaningless uv; use ``depth``.
        depth: (..., N) z in the camera frame; a point is in front iff depth > near.
    """
    R = world_to_camera[..., :3, :3]
    t = world_to_camera[..., :3, 3]
    cam = points @ R.transpose(-1, -2) + t[..., None, :]  # (..., N, 3)
    depth = cam[..., 2]
    # Divide by a depth kept away from zero so the output is always finite.
    safe = torch.where(depth.abs() < 1e-12, torch.full_like(depth, 1e-12), depth)
    xy = cam[..., :2] / safe[..., None]  # (..., N, 2) normalised image coordinates
    uv = xy @ K[..., :2, :2].transpose(-1, -2) + K[..., None, :2, 2]
    return uv, depth


def pixel_centers(height: int, width: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """(H, W, 2) pixel-centre coordinates (u, v) = (j + 0.5, i + 0.5)."""
    v = torch.arange(height, dtype=dtype, device=device) + 0.5
    u = torch.arange(width, dtype=dtype, device=device) + 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1)


@numpy_or_torch
def pixel_rays(uv, K, world_to_camera):
    """World-space rays through pixels.

    Args:
        uv: (..., N, 2) pixel coordinates; K (..., 3, 3); world_to_camera (..., 4, 4).

    Returns:
        origins: (..., N, 3) camera centres; directions: (..., N, 3) unit vectors.
    """
    Kinv = torch.linalg.inv(K)
    homog = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)  # (..., N, 3)
    d_cam = homog @ Kinv.transpose(-1, -2)
    R = world_to_camera[..., :3, :3]
    t = world_to_camera[..., :3, 3]
    d_world = d_cam @ R  # R^T d for row vectors
    d_world = d_world / d_world.norm(dim=-1, keepdim=True)
    center = -(R.transpose(-1, -2) @ t[..., None])[..., 0]  # (..., 3)
    return center[..., None, :].expand_as(d_world), d_world


@numpy_or_torch
def plucker_map(K, world_to_camera, height: int, width: int, reference_world_to_camera=None):
    """Per-pixel Plücker coordinates of the rays through pixel centres.

    Args:
        K: (..., 3, 3), world_to_camera: (..., 4, 4) for any batch of cameras.
        height, width: image size.
        reference_world_to_camera: optional (..., 4, 4) (broadcastable): express rays in
            this camera's frame instead of the world frame. The model uses the first
            frame of the main view, so the embedding is invariant to the world origin.

    Returns:
        (..., H, W, 6): unit direction d, then moment o x d.
    """
    if reference_world_to_camera is not None:
        # Camera pose relative to the reference: world_to_cam @ ref_cam_to_world.
        ref = reference_world_to_camera
        R, t = ref[..., :3, :3], ref[..., :3, 3:]
        ref_inv = torch.cat([torch.cat([R.transpose(-1, -2), -R.transpose(-1, -2) @ t], -1),
                             ref[..., 3:, :]], -2)  # fmt: skip
        world_to_camera = world_to_camera @ ref_inv
    uv = pixel_centers(height, width, dtype=K.dtype, device=K.device).reshape(-1, 2)  # (HW, 2)
    batch = torch.broadcast_shapes(K.shape[:-2], world_to_camera.shape[:-2])
    uv = uv.expand(*batch, height * width, 2)
    o, d = pixel_rays(uv, K, world_to_camera)
    m = torch.linalg.cross(o, d, dim=-1)
    return torch.cat([d, m], dim=-1).reshape(
        *batch, height, width, 6
    )  # (..., HW, 6) -> (..., H, W, 6)
