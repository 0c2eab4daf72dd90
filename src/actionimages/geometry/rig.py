"""Synthetic camera rigs: views on a ring around a workspace (tests, benchmarks, demos)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from actionimages.geometry.camera import Camera


def camera_ring(
    n_views: int,
    size: int | tuple[int, int],
    *,
    center: Sequence[float] = (0.0, 0.0, 0.3),
    radius: float = 1.0,
    elevation_deg: tuple[float, float] = (23.0, 52.0),
    azimuth_jitter_deg: float = 17.0,
    fov_y_deg: float = 55.0,
    seed: int = 0,
) -> list[Camera]:
    """``n_views`` cameras spread around ``center`` at ``radius`` metres, all looking at it.

    Azimuths are evenly spaced plus a seeded jitter; elevations are drawn from
    ``elevation_deg``. ``size`` is (height, width) or one number for square images.
    """
    if n_views < 1 or radius <= 0:
        raise ValueError(f"need n_views >= 1 and radius > 0, got {n_views}, {radius}")
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    c = np.asarray(center, dtype=np.float64)
    cams = []
    for k in range(n_views):
        az = 2 * np.pi * k / n_views + np.radians(
            rng.uniform(-azimuth_jitter_deg, azimuth_jitter_deg)
        )
        el = np.radians(rng.uniform(*elevation_deg))
        eye = c + radius * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
        cams.append(Camera.look_at(eye, c, fov_y_deg=fov_y_deg, height=h, width=w))
    return cams
