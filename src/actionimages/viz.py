"""Small visual helpers shared by the demo, the simulator and the data tools.

- :func:`overlay_action_images`: blend action images over RGB frames.
- :func:`tile_views`: put V views side by side.
- :func:`write_mp4`: H.264 MP4 through PyAV (even sizes are padded for the encoder).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (any shape ending in 3) -> uint8."""
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def overlay_action_images(rgb: np.ndarray, action: np.ndarray, strength: float = 0.8) -> np.ndarray:
    """Blend action images over RGB frames.

    Args:
        rgb: (..., H, W, 3) uint8 frames.
        action: (..., H, W, 3) float action images in [0, 1] (same shape).
        strength: opacity of the heatmaps at their peak.

    Returns:
        (..., H, W, 3) uint8. Where a heatmap is strong the frame takes its colour;
        the blue background level (the gripper) is left out so the scene stays visible.
    """
    if rgb.shape != action.shape:
        raise ValueError(
            f"rgb {rgb.shape} and action images {action.shape} must have the same shape"
        )
    a = np.asarray(action, dtype=np.float32).copy()
    a[..., 2] = np.where(a[..., 2] > 0.25 + 1e-3, a[..., 2], 0.0)  # drop the gripper background
    alpha = strength * a.max(axis=-1, keepdims=True)  # (..., H, W, 1)
    colour = a / np.maximum(a.max(axis=-1, keepdims=True), 1e-6)
    out = (1 - alpha) * (rgb.astype(np.float32) / 255.0) + alpha * colour
    return to_uint8(out)


def tile_views(frames: np.ndarray, columns: int | None = None) -> np.ndarray:
    """(V, ..., H, W, 3) -> (..., rows*H, columns*W, 3), views in row-major order."""
    V = frames.shape[0]
    columns = columns or V
    rows = -(-V // columns)
    if rows * columns > V:  # pad with black views
        pad = np.zeros((rows * columns - V, *frames.shape[1:]), dtype=frames.dtype)
        frames = np.concatenate([frames, pad])
    H, W, C = frames.shape[-3:]
    lead = frames.shape[1:-3]
    grid = frames.reshape(rows, columns, *lead, H, W, C)  # (R, C, ..., H, W, 3)
    grid = np.moveaxis(grid, (0, 1), (-5, -3))  # (..., R, H, C, W, 3)
    return grid.reshape(*lead, rows * H, columns * W, C)


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = 10.0, crf: int = 23) -> Path:
    """Write (T, H, W, 3) uint8 frames as an H.264 MP4, atomically (temp file + rename)."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    # H.264 with yuv420p needs even sizes: pad by one black row/column if needed.
    _T, H, W, _ = frames.shape
    if H % 2 or W % 2:
        frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


# --- policy rollouts (frames of the evaluation's rollout videos) -----------------------
def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    from actionimages.clips import resize_frames

    if img.shape[:2] == (h, w):
        return img
    return resize_frames(np.ascontiguousarray(img[None]), h, w)[0].numpy()


def draw_points(img: np.ndarray, uv: np.ndarray, color=(255, 255, 0)) -> np.ndarray:
    """Mark (N, 2) pixel positions on an (H, W, 3) uint8 image with 2x2 dots (NaN / outside skipped)."""
    out = img.copy()
    H, W = img.shape[:2]
    ok = np.isfinite(uv).all(1)
    ij = np.floor(uv[ok][:, ::-1]).astype(int)  # (n, 2) row, column
    for di in (0, 1):
        for dj in (0, 1):
            r, c = ij[:, 0] + di, ij[:, 1] + dj
            keep = (r >= 0) & (r < H) & (c >= 0) & (c < W)
            out[r[keep], c[keep]] = color
    return out


def policy_panel(policy, obs: dict) -> np.ndarray:
    """One video frame: per view, the real image with the current plan's action image and its
    decoded future path (yellow dots), next to the generated frame with its action image.

    Returns (2 H, V W, 3) uint8: real views on top, generated views below.
    """
    views = policy.config.views
    real = [obs["images"][v] for v in views]
    H, W = real[0].shape[:2]
    top, bottom = [], []
    step_plan = policy.plans[-1] if policy.plans else None
    for i, v in enumerate(views):
        img = _resize(real[i], H, W)
        gen = np.zeros_like(img)
        if step_plan is not None:
            at, plan, traj = step_plan.step, step_plan.plan, step_plan.trajectory
            # obs is the frame before this step's action ran: plan frame (steps - 1 - at)
            frames = (plan.video if plan.video is not None else plan.actions).shape[1]
            t = min(max(policy.steps - 1 - at, 0), frames - 1)
            if plan.actions is not None:
                act = (
                    _resize((plan.actions[i, t] * 255).astype(np.uint8), H, W).astype(np.float32)
                    / 255
                )
                img = overlay_action_images(img[None], act[None])[0]
            if traj is not None:
                uv, depth = obs["cameras"][v].project(np.asarray(traj.position)[t:])
                img = draw_points(img, np.where(depth[:, None] > 0, uv, np.nan))
            if plan.video is not None:
                gen = _resize((plan.video[i, t] * 255).round().astype(np.uint8), H, W)
                if plan.actions is not None:
                    gen = overlay_action_images(gen[None], act[None])[0]
        top.append(img)
        bottom.append(gen)
    return np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
