"""Encoding: 7-DoF actions -> multi-view action images (paper Eq. 1-6, SPEC section 2).

Each time step's pose (p, R) and gripper openness g become three 3-D points

    pos    = p
    normal = p + l * R @ (-e_z)      ("paper" layout; "official" uses +e_x)
    up     = p + l * R @ e_x         ("paper" layout; "official" uses -e_z)

which are projected into every view and drawn as unnormalised Gaussians with peak 1,
evaluated at pixel centres. Red = pos, green = normal, blue = up, and the blue channel
is replaced by 0.25 * g wherever the up Gaussian is <= 0.25 (the "official" layout
writes 0.25 * [g > 0.5] there).

Speed: a 2-D Gaussian is the outer product of two 1-D Gaussians, so each image is
``gy[:, None] * gx[None, :]``: O(H + W) exponentials per point and one broadcast
multiply that writes the output once. No per-pixel Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from actionimages._arrays import as_tensor, check_finite, check_shape
from actionimages.geometry.camera import CameraSpec, stack_cameras
from actionimages.geometry.projection import DEFAULT_NEAR, project_points

Layout = Literal["paper", "official"]
LAYOUTS = ("paper", "official")
BLUE_LEVEL = 0.25  # the blue channel's gripper level and the up-Gaussian threshold (Eq. 5)


def layout_intrinsics(K: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(..., 3, 3) intrinsics as this layout draws and reads them.

    The authors' release evaluates its Gaussians at integer pixel coordinates, this
    project at pixel centres (j + 0.5, SPEC 1). Drawing at centres with the principal
    point moved by +0.5 px gives exactly the release's images, so "official" images
    are drawn, and decoded, with that K (no 2.5-3 mm bias when reading the release's).
    """
    if layout != "official":
        return K
    K = K.clone()
    K[..., 0, 2] += 0.5
    K[..., 1, 2] += 0.5
    return K


def semantic_points(position, rotation, axis_length: float = 0.1, layout: Layout = "paper"):
    """The three semantic points of Eq. 1.

    Args:
        position: (T, 3); rotation: (T, 3, 3) with columns e_x, e_y, e_z (torch, float64).

    Returns:
        (T, 3, 3): points [pos, normal, up] along dim 1.
    """
    ex, ez = rotation[..., :, 0], rotation[..., :, 2]
    normal_dir, up_dir = (-ez, ex) if layout == "paper" else (ex, -ez)
    return torch.stack(
        [position, position + axis_length * normal_dir, position + axis_length * up_dir], dim=1
    )


def _validate(position, rotation, gripper, axis_length, sigma, layout):
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not isinstance(axis_length, (int, float)) or not isinstance(sigma, (int, float)):
        raise ValueError(f"axis_length and sigma must be numbers, got {axis_length!r}, {sigma!r}")
    if not (np.isfinite(axis_length) and axis_length > 0):
        raise ValueError(f"axis_length must be a positive number of metres, got {axis_length}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be positive (a fraction of min(H, W)), got {sigma}")
    check_shape("position", position, (None, 3))
    T = position.shape[0]
    check_shape("rotation", rotation, (T, 3, 3))
    check_shape("gripper", gripper, (T,))
    for name, x in (("position", position), ("rotation", rotation), ("gripper", gripper)):
        check_finite(name, x)
    if T == 0:
        raise ValueError("need at least one time step (T >= 1)")


def encode_action_images(
    position,
    rotation,
    gripper,
    cameras: Sequence[CameraSpec],
    axis_length: float = 0.1,
    sigma: float = 0.05,
    layout: Layout = "paper",
    *,
    near: float = DEFAULT_NEAR,
    return_valid: bool = False,
    dtype=None,
    out=None,
):
    """Render action images for V views and T time steps.

    Args:
        position: (T, 3) end-effector positions in metres (world frame).
        rotation: (T, 3, 3) rotation matrices (columns e_x, e_y, e_z; approach = e_z).
        gripper: (T,) openness in [0, 1], 1 = open (values outside are clipped, with
            the "official" layout binarised at 0.5).
        cameras: V entries, each a ``Camera`` or a sequence of T cameras (moving
            view); all share one image size (H, W).
        axis_length: l in metres, the offset of the normal and up points.
        sigma: Gaussian standard deviation as a fraction of min(H, W).
        layout: "paper" (default) or "official" (the authors' release: its semantic
            points, binarised gripper and integer-coordinate pixel grid,
            :func:`layout_intrinsics`). The release renders in bf16, whose projections
            are off by up to 1.7 px at 256 x 256; these images are float32.
        near: points with camera depth <= near (metres) are behind the camera: they
            draw nothing in that view and are flagged in the validity mask.
        return_valid: also return the validity mask.
        dtype: output torch float dtype (default torch.float32).
        out: optional preallocated (V, T, H, W, 3) float tensor/array to write into.
            Reusing one buffer avoids first-touch page faults, which cost more than
            the rendering itself at 256 px and above (see BENCHMARKS.md).

    Returns:
        images: (V, T, H, W, 3) in [0, 1]; a NumPy array for NumPy inputs, a tensor
            on the inputs' device for torch inputs.
        valid (only if ``return_valid``): (V, T, 3) bool, True where the point
            [pos, normal, up] is in front of the camera (it may still be off-image).
    """
    torch_mode = any(isinstance(x, torch.Tensor) for x in (position, rotation, gripper))
    device = next(
        (x.device for x in (position, rotation, gripper) if isinstance(x, torch.Tensor)), None
    )
    # Geometry in float64 (projection of points metres away must not lose sub-pixel
    # precision); the image itself in float32.
    pos, rot, grip = (
        as_tensor(x, dtype=torch.float64, device=device) for x in (position, rotation, gripper)
    )
    _validate(pos, rot, grip, axis_length, sigma, layout)
    T = pos.shape[0]
    K, E, H, W = stack_cameras(cameras, T)
    K = layout_intrinsics(torch.as_tensor(K, device=device), layout)
    E = torch.as_tensor(E, device=device)
    out_dtype = dtype or torch.float32
    if not isinstance(out_dtype, torch.dtype) or not out_dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype!r}")

    # 1. Semantic points (T, 3 points, 3) and their projections (V, T, 3 points, 2).
    pts = semantic_points(pos, rot, axis_length, layout)
    uv, depth = project_points(pts[None], K, E)
    valid = depth > near  # (V, T, 3)

    # 2. Separable 1-D Gaussians per point: gx (V, T, 3, W), gy (V, T, 3, H).
    V = K.shape[0]
    s = sigma * min(H, W)
    xs = torch.arange(W, device=device, dtype=torch.float64) + 0.5
    ys = torch.arange(H, device=device, dtype=torch.float64) + 0.5
    gx = torch.exp(-((xs - uv[..., 0:1]) ** 2) / (2 * s * s))
    gy = torch.exp(-((ys - uv[..., 1:2]) ** 2) / (2 * s * s))
    gx = gx * valid[..., None]  # a point behind the camera draws nothing
    # Flush far tails to exactly 0: below 1e-18 a factor would make float32 products
    # subnormal, and subnormal arithmetic is ~5x slower on x86 CPUs. Changes no pixel by
    # more than 1e-18.
    gx = torch.where(gx < 1e-18, 0.0, gx)
    gy = torch.where(gy < 1e-18, 0.0, gy)

    # 3. Gripper level of the blue background, (T,).
    g = grip.clamp(0.0, 1.0)
    if layout == "official":
        g = (g > 0.5).to(g.dtype)
    level = BLUE_LEVEL * g

    # 4. Output buffer (V, T, H, W, 3).
    if out is None:
        images = torch.empty(V, T, H, W, 3, dtype=out_dtype, device=device)
    else:
        images = torch.from_numpy(out) if isinstance(out, np.ndarray) else out
        if tuple(images.shape) != (V, T, H, W, 3) or not images.is_contiguous():
            raise ValueError(
                f"out must be a contiguous array of shape {(V, T, H, W, 3)}, got {tuple(images.shape)}"
            )
        if images.dtype != out_dtype:
            out_dtype = images.dtype
    gx, gy = gx.to(out_dtype), gy.to(out_dtype)
    lvl = level.to(out_dtype)  # (T,)

    # 5. All three channels as one rank-3 matrix product per frame, written straight
    #    into the channel-last output (a broadcast multiply into a stride-3 layout is
    #    ~4x slower on CPU): image (H, W*3) = A (H, 3) @ B (3, W*3), where
    #    A = [gy_pos, gy_normal, 1] and B's rows hold gx_pos in the red slots, gx_normal
    #    in the green slots and the gripper level in the blue slots.
    A = torch.stack(
        [gy[:, :, 0], gy[:, :, 1], torch.ones_like(gy[:, :, 0])], dim=-1
    )  # (V, T, H, 3)
    B = torch.zeros(V, T, 3, W, 3, dtype=out_dtype, device=device)
    B[:, :, 0, :, 0] = gx[:, :, 0]
    B[:, :, 1, :, 1] = gx[:, :, 1]
    B[:, :, 2, :, 2] = lvl[None, :, None]
    A = A.reshape(V * T, H, 3)  # (V, T, H, 3) -> (VT, H, 3)
    B = B.reshape(V * T, 3, W * 3)  # (V, T, 3, W, 3) -> (VT, 3, W*3)

    # 6. The up Gaussian replaces the background only where it exceeds 0.25 (Eq. 5).
    #    That happens within 1.67 sigma of its centre, so only a fixed-size window per
    #    frame is patched instead of thresholding the whole image.
    half = int(np.ceil(s * np.sqrt(2 * np.log(1 / BLUE_LEVEL)))) + 1
    wh, ww = min(2 * half + 1, H), min(2 * half + 1, W)
    top = (uv[:, :, 2, 1].floor() - half).clamp(0, H - wh).long()  # (V, T)
    left = (uv[:, :, 2, 0].floor() - half).clamp(0, W - ww).long()
    rows = top[..., None] + torch.arange(wh, device=device)  # (V, T, wh)
    cols = left[..., None] + torch.arange(ww, device=device)  # (V, T, ww)
    g_up = (
        torch.gather(gy[:, :, 2], 2, rows)[..., :, None]
        * torch.gather(gx[:, :, 2], 2, cols)[..., None, :]
    )
    patch = torch.where(g_up > BLUE_LEVEL, g_up, lvl[None, :, None, None])  # (V, T, wh, ww)
    # Flat index of each window sample's blue value within its own frame, (VT, wh*ww).
    index = (rows[..., :, None] * (W * 3) + cols[..., None, :] * 3 + 2).reshape(V * T, wh * ww)
    patch = patch.reshape(V * T, wh * ww)

    # 7. Product, then the blue patch.
    flat = images.view(V * T, H * W * 3)
    # torch.bmm, not NumPy's matmul: OpenBLAS's own thread pool (which ignores
    # torch.set_num_threads) was measured 300x slower on a loaded 2-core machine.
    torch.bmm(A, B, out=flat.view(V * T, H, W * 3))  # (VT, H, 3) @ (VT, 3, W*3)
    flat.scatter_(1, index, patch)

    if not torch_mode:
        images = out if isinstance(out, np.ndarray) else images.numpy()
        valid = valid.numpy()
    return (images, valid) if return_valid else images
