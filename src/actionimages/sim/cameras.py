"""Simulator cameras: view presets, randomised pose ranges and OpenGL <-> OpenCV conversion.

Every camera the simulator renders is an :class:`actionimages.geometry.Camera` in the
SPEC convention (OpenCV: x right, y down, z forward; pixel (i, j) centred at
(j + 0.5, i + 0.5)). PyBullet speaks OpenGL instead: its view matrix looks down -z with
y up, and both matrices come as 16 floats in column-major order. Two exact conversions
bridge the two: :func:`camera_to_gl` (what we hand PyBullet to render a ``Camera``) and
:func:`camera_from_gl` (its inverse, for any view/projection pair PyBullet produced).

PyBullet's CPU renderer (``ER_TINY_RENDERER``) samples pixel (i, j) at OpenGL window
coordinates (j, H - 1 - i) rather than at pixel centres, which puts every rendered point
half a pixel off an ideal OpenGL rasteriser: +0.5 px in u and -0.5 px in v. We measured
this with 8 mm markers at 96x64 to 640x480 (mask centroids against projections) and
fold it into the projection matrix, so a ``Camera`` with its principal point at the
image centre renders exactly where ``Camera.project`` says. ``tests/sim`` proves it.

Static views are placed on a sphere around a look-at point on the table (azimuth,
elevation, distance, field of view). :class:`CameraRange` says how far each is
jittered: ``"fixed"`` (none), ``"train"`` (a small box around the nominal pose) and
``"heldout"`` (an annulus outside the training box, for zero-shot camera tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from actionimages._presets import lookup
from actionimages.geometry import Camera

# Half-pixel offset of PyBullet's TinyRenderer relative to pixel centres (see module doc).
TINY_RENDERER_OFFSET = (0.5, -0.5)
NEAR, FAR = 0.02, 6.0  # clip planes of every simulator camera, metres

STATIC_VIEWS = ("front", "left_shoulder", "right_shoulder", "overhead")
WRIST_VIEW = "wrist"
ALL_VIEWS = (*STATIC_VIEWS, WRIST_VIEW)


@dataclass(frozen=True)
class ViewPreset:
    """Nominal pose of a static camera, on a sphere around ``target``.

    Azimuth is measured in the table plane from +x (the robot looks along +x; 0 deg is
    opposite the robot, 90 deg on its left); elevation from the table plane upwards.
    """

    target: tuple[float, float, float]
    azimuth_deg: float
    elevation_deg: float
    distance: float
    fov_y_deg: float


# Robot base at the origin facing +x; the workspace centre is about (0.5, 0, 0.05).
VIEW_PRESETS: dict[str, ViewPreset] = {
    "front": ViewPreset((0.50, 0.0, 0.10), 0.0, 30.0, 0.95, 45.0),
    "left_shoulder": ViewPreset((0.52, 0.0, 0.05), 140.0, 42.0, 0.85, 50.0),
    "right_shoulder": ViewPreset((0.52, 0.0, 0.05), -140.0, 42.0, 0.85, 50.0),
    "overhead": ViewPreset((0.50, 0.0, 0.0), 0.0, 70.0, 1.15, 45.0),
}


@dataclass(frozen=True)
class CameraRange:
    """How static camera poses are randomised around their :data:`VIEW_PRESETS`.

    Offsets are drawn uniformly with magnitude in ``[min, max]`` and a random sign, so
    ``min > 0`` gives an annulus that excludes the nominal pose. The ``"heldout"``
    preset's azimuth annulus starts beyond the ``"train"`` box's edge: no held-out
    camera can be a training camera.
    """

    name: str
    azimuth_deg: tuple[float, float] = (0.0, 0.0)
    elevation_deg: tuple[float, float] = (0.0, 0.0)
    distance_scale: tuple[float, float] = (0.0, 0.0)  # relative change of distance
    target_m: float = 0.0  # look-at point jitter (uniform box, metres)
    fov_deg: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def preset(cls, name: str) -> CameraRange:
        return lookup(CAMERA_RANGES, name, "camera range")


CAMERA_RANGES: dict[str, CameraRange] = {
    "fixed": CameraRange("fixed"),
    "train": CameraRange(
        "train",
        azimuth_deg=(0.0, 8.0),
        elevation_deg=(0.0, 5.0),
        distance_scale=(0.0, 0.06),
        target_m=0.03,
        fov_deg=(0.0, 3.0),
    ),
    "heldout": CameraRange(
        "heldout",
        azimuth_deg=(14.0, 28.0),
        elevation_deg=(5.0, 12.0),
        distance_scale=(0.06, 0.15),
        target_m=0.05,
        fov_deg=(3.0, 6.0),
    ),
}


def _signed(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return float(rng.uniform(lo, hi) * rng.choice((-1.0, 1.0)))


@dataclass(frozen=True)
class ViewSample:
    """One drawn static camera pose: offsets from its preset and the resulting pose."""

    azimuth_deg: float
    elevation_deg: float
    distance: float
    fov_y_deg: float
    target: tuple[float, float, float]
    offsets: tuple[float, float, float, float]  # (d_azimuth, d_elevation, d_scale, d_fov)


def sample_view(
    preset: ViewPreset,
    rng: np.random.Generator | None = None,
    camera_range: CameraRange | None = None,
) -> ViewSample:
    """Draw a pose around ``preset`` (the preset itself without ``rng``/``camera_range``)."""
    offsets = (0.0, 0.0, 0.0, 0.0)
    target = np.asarray(preset.target, dtype=np.float64)
    if rng is not None and camera_range is not None:
        r = camera_range
        offsets = (
            _signed(rng, r.azimuth_deg),
            _signed(rng, r.elevation_deg),
            _signed(rng, r.distance_scale),
            _signed(rng, r.fov_deg),
        )
        target = target + rng.uniform(-r.target_m, r.target_m, 3)
    # Stay clear of the straight-down singularity of a z-up look-at.
    el = float(np.clip(preset.elevation_deg + offsets[1], 5.0, 85.0))
    return ViewSample(
        azimuth_deg=preset.azimuth_deg + offsets[0],
        elevation_deg=el,
        distance=preset.distance * (1.0 + offsets[2]),
        fov_y_deg=preset.fov_y_deg + offsets[3],
        target=tuple(float(x) for x in target),
        offsets=offsets,
    )


def view_camera(view: ViewSample, height: int, width: int) -> Camera:
    """The ``Camera`` of a drawn pose (z-up look-at, square pixels, centred principal point)."""
    a, e = np.deg2rad(view.azimuth_deg), np.deg2rad(view.elevation_deg)
    target = np.asarray(view.target)
    eye = target + view.distance * np.array(
        [np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)]
    )
    return Camera.look_at(
        eye, target, (0.0, 0.0, 1.0), fov_y_deg=view.fov_y_deg, height=height, width=width
    )


def static_camera(
    preset: ViewPreset,
    height: int,
    width: int,
    *,
    rng: np.random.Generator | None = None,
    camera_range: CameraRange | None = None,
) -> Camera:
    """One static camera, optionally jittered by ``camera_range`` with ``rng``."""
    return view_camera(sample_view(preset, rng, camera_range), height, width)


def sample_static_cameras(
    names: tuple[str, ...],
    height: int,
    width: int,
    rng: np.random.Generator,
    camera_range: CameraRange,
) -> dict[str, Camera]:
    """``{name: Camera}`` for the static views in ``names`` (the wrist view is skipped)."""
    out = {}
    for name in names:
        if name == WRIST_VIEW:
            continue
        if name not in VIEW_PRESETS:
            raise ValueError(f"unknown camera {name!r}; valid: {list(ALL_VIEWS)}")
        out[name] = static_camera(
            VIEW_PRESETS[name], height, width, rng=rng, camera_range=camera_range
        )
    return out


# --- the wrist camera ----------------------------------------------------------------
# Mounted on the hand (panda_hand frame), 6 cm off the flange's centre along the hand's
# x axis (perpendicular to the fingers' motion, so the fingers do not hide each other),
# looking along the approach axis at a point just beyond the fingertips.
WRIST_EYE_IN_HAND = np.array([0.065, 0.0, 0.03])
WRIST_TARGET_IN_HAND = np.array([0.0, 0.0, 0.20])
WRIST_FOV_DEG = 75.0


def wrist_camera(hand_to_world: np.ndarray, height: int, width: int) -> Camera:
    """The wrist camera for a (4, 4) ``panda_hand`` pose; image up = the hand's +x."""
    R, t = hand_to_world[:3, :3], hand_to_world[:3, 3]
    eye = R @ WRIST_EYE_IN_HAND + t
    target = R @ WRIST_TARGET_IN_HAND + t
    return Camera.look_at(eye, target, R[:, 0], fov_y_deg=WRIST_FOV_DEG, height=height, width=width)


# --- OpenGL <-> OpenCV -----------------------------------------------------------------


def camera_to_gl(
    camera: Camera, near: float = NEAR, far: float = FAR, *, tiny_renderer: bool = True
) -> tuple[list[float], list[float]]:
    """PyBullet ``(viewMatrix, projectionMatrix)``, each 16 floats column-major.

    With ``tiny_renderer`` the principal point is shifted by :data:`TINY_RENDERER_OFFSET`
    so the CPU renderer's pixels land where ``camera.project`` puts them.
    """
    if tiny_renderer:
        K = camera.K.copy()
        K[:2, 2] -= TINY_RENDERER_OFFSET
        camera = Camera(K, camera.world_to_camera, camera.height, camera.width)
    view, proj = camera.to_gl_matrices(near, far)
    return view.T.reshape(-1).tolist(), proj.T.reshape(-1).tolist()


def camera_from_gl(
    view_matrix, projection_matrix, height: int, width: int, *, tiny_renderer: bool = True
) -> Camera:
    """The SPEC ``Camera`` that PyBullet renders with these column-major matrices.

    :meth:`Camera.from_gl_matrices` (the derivation is there), plus the tiny renderer's
    half-pixel offset.
    """
    V = np.asarray(view_matrix, dtype=np.float64).reshape(4, 4).T
    P = np.asarray(projection_matrix, dtype=np.float64).reshape(4, 4).T
    cam = Camera.from_gl_matrices(V, P, height, width)
    if not tiny_renderer:
        return cam
    K = cam.K.copy()
    K[:2, 2] += TINY_RENDERER_OFFSET
    return Camera(K, cam.world_to_camera, height, width)


def pybullet_camera(
    eye, target, up, fov_y_deg: float, height: int, width: int, near: float = NEAR, far: float = FAR
) -> Camera:
    """The ``Camera`` of PyBullet's own ``computeViewMatrix``/``computeProjectionMatrixFOV``.

    Kept as a cross-check of :func:`camera_from_gl` against PyBullet's matrix builders.
    """
    import pybullet as p

    view = p.computeViewMatrix(list(eye), list(target), list(up))
    proj = p.computeProjectionMatrixFOV(fov_y_deg, width / height, near, far)
    return camera_from_gl(view, proj, height, width)


def as_camera_dict(cameras: Mapping[str, Camera]) -> dict[str, dict]:
    """JSON-friendly ``{name: camera.to_dict()}``."""
    return {k: v.to_dict() for k, v in cameras.items()}
