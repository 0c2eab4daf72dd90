"""Scenes for codec tests: cameras around a workspace and random poses in it."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from actionimages.geometry import camera_ring

WORKSPACE_CENTER = np.array([0.0, 0.0, 0.3])


def ring_cameras(n_views: int, size, radius: float = 1.0, seed: int = 0):
    """``n_views`` cameras on a ring around the test workspace."""
    return camera_ring(n_views, size, center=WORKSPACE_CENTER, radius=radius, seed=seed)


def random_trajectory(T: int, seed: int, spread: float = 0.08):
    rng = np.random.default_rng(seed)
    position = WORKSPACE_CENTER + rng.uniform(-spread, spread, (T, 3))
    rotation = Rotation.random(T, random_state=seed).as_matrix()
    gripper = rng.uniform(0, 1, T)
    return position, rotation, gripper


def brute_force_images(
    position, rotation, gripper, cameras, axis_length=0.1, sigma=0.05, layout="paper"
):
    """Reference renderer written straight from Eq. 1-5 with full 2-D Gaussians (slow).

    "paper" evaluates at pixel centres (SPEC 1); "official" at integer pixel coordinates,
    as the authors' release does.
    """
    out = []
    for cam in cameras:
        H, W = cam.height, cam.width
        s = sigma * min(H, W)
        c = 0.5 if layout == "paper" else 0.0
        jj, ii = np.meshgrid(np.arange(W) + c, np.arange(H) + c)
        frames = []
        for p, R, g in zip(position, rotation, gripper):
            ex, ez = R[:, 0], R[:, 2]
            normal = p + axis_length * (-ez if layout == "paper" else ex)
            up = p + axis_length * (ex if layout == "paper" else -ez)
            chans = []
            for q in (p, normal, up):
                uv, depth = cam.project(q[None])
                if depth[0] <= 1e-3:
                    chans.append(np.zeros((H, W)))
                else:
                    chans.append(
                        np.exp(-((jj - uv[0, 0]) ** 2 + (ii - uv[0, 1]) ** 2) / (2 * s * s))
                    )
            gg = float(np.clip(g, 0, 1)) if layout == "paper" else float(g > 0.5)
            chans[2] = np.where(chans[2] > 0.25, chans[2], 0.25 * gg)
            frames.append(np.stack(chans, -1))
        out.append(np.stack(frames))
    return np.stack(out)
