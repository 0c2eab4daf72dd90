"""Small synthetic episodes for tests, benchmarks and demos (no simulator needed).

The end effector follows a smooth 3-D curve in front of a few static cameras (plus an
optional moving wrist-like camera); each frame is a textured background with a bright
disc drawn where the end effector projects, so projection checks have something real
to land on. Everything is vectorised and seeded.
"""

from __future__ import annotations

import numpy as np

from actionimages.data.episode import Episode
from actionimages.geometry.camera import Camera
from actionimages.geometry.rotations import euler_xyz_to_matrix

STATIC_EYES = {
    "front": (1.2, 0.0, 0.6),
    "left": (0.3, 0.9, 0.7),
    "right": (0.3, -0.9, 0.7),
    "top": (0.45, 0.05, 1.4),
}
TARGET = (0.45, 0.0, 0.15)


def synthetic_episode(
    num_frames: int = 30,
    size: int | tuple[int, int] = 64,
    views: tuple[str, ...] = ("front", "left"),
    fps: float = 10.0,
    seed: int = 0,
    instruction: str = "move the gripper along a curve",
    calibrated: bool = True,
) -> Episode:
    """An :class:`Episode` of ``num_frames`` frames with (H, W) = ``size`` images per view."""
    H, W = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, num_frames)
    phase = rng.uniform(0, 2 * np.pi, 3)
    centre = np.array(TARGET) + rng.uniform(-0.05, 0.05, 3)
    position = centre + 0.12 * np.sin(2 * np.pi * t[:, None] * [1.0, 1.5, 0.7] + phase)  # (T, 3)
    # Pointing down (approach e_z = -z world), with a slow yaw and a little tilt.
    euler = np.stack([np.pi + 0.2 * np.sin(2 * np.pi * t), 0.15 * np.cos(2 * np.pi * t),
                      np.pi * t + phase[0]], axis=1)  # fmt: skip
    rotation = euler_xyz_to_matrix(euler)  # (T, 3, 3)
    gripper = (np.cos(2 * np.pi * t * 2) > 0).astype(np.float64)  # opens and closes twice

    cams = {}
    for v in views:
        eye = STATIC_EYES.get(v)
        if eye is None:  # unknown names get a seeded position on a ring
            a = rng.uniform(0, 2 * np.pi)
            eye = (0.45 + 1.0 * np.cos(a), 1.0 * np.sin(a), 0.8)
        cams[v] = [Camera.look_at(eye, TARGET, fov_y_deg=50.0, height=H, width=W)] * num_frames
    images = {v: render_blob_frames(position, cams[v], seed=seed + i) for i, v in enumerate(views)}
    return Episode(
        position=position,
        rotation=rotation,
        gripper=gripper,
        instruction=instruction,
        images=images,
        cameras=cams if calibrated else {},
        fps=fps,
        task="synthetic_curve",
        extra={"seed": seed, "generator": "actionimages.data.synthetic"},
    )


def render_blob_frames(position: np.ndarray, cameras: list[Camera], seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a textured background with a disc at each projected position."""
    H, W = cameras[0].height, cameras[0].width
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5  # pixel centres, (H, W) each
    base = rng.uniform(40, 120, 3)
    background = base + 40 * np.sin(xx[..., None] / W * 6 + rng.uniform(0, 6, 3)) * np.cos(
        yy[..., None] / H * 4
    )  # (H, W, 3)
    K = np.stack([c.K for c in cameras])  # (T, 3, 3)
    E = np.stack([c.world_to_camera for c in cameras])  # (T, 4, 4)
    cam = np.einsum("tij,tj->ti", E[:, :3, :3], position) + E[:, :3, 3]  # (T, 3)
    uv = np.einsum("tij,tj->ti", K, cam / cam[:, 2:3])[:, :2]  # (T, 2)
    radius = 0.06 * min(H, W)
    d2 = (xx[None] - uv[:, 0, None, None]) ** 2 + (
        yy[None] - uv[:, 1, None, None]
    ) ** 2  # (T, H, W)
    disc = (d2 <= radius**2)[..., None]  # (T, H, W, 1)
    frames = np.where(disc, np.array([250.0, 240.0, 60.0]), background[None])  # (T, H, W, 3)
    return np.clip(frames, 0, 255).astype(np.uint8)
