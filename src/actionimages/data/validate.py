"""Value checks on what a LeRobot dataset gives back: finite, plausible, proper rotations.

A flipped byte in a parquet file changes a value without breaking the file, so the
reader checks the values themselves (issue 12): a z of 6.7e307 or a quaternion of norm
3 is refused with the file, episode, frame and feature named, instead of reaching the
sampler and a training run. Rows that are NaN throughout mean "absent" (a video-only
episode's state, an uncalibrated view) and pass.
"""

from __future__ import annotations

import numpy as np

from actionimages.data import lerobot_format as fmt

MAX_POSITION_M = 100.0  # a robot's workspace, with a wide margin: |x|, |y|, |z| in metres
QUAT_NORM_TOL = 1e-3  # stored as float64 unit quaternions; float32 round trips stay < 1e-6
GRIPPER_RANGE = (-0.01, 1.01)
ROTATION_TOL = 1e-4  # |R^T R - I| and |det R - 1| of a stored world_to_camera


class CorruptValueError(ValueError):
    """A stored value is not a plausible one (see the module docstring)."""


def _fail(where: str, frame: int, feature: str, what: str) -> None:
    raise CorruptValueError(f"{where}, frame {frame}, {feature}: {what}")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _partly_missing(x: np.ndarray) -> np.ndarray:
    """(T, D) -> (T,) rows with some but not all entries non-finite (or any inf)."""
    finite = np.isfinite(x)
    return (~finite.all(1) & finite.any(1)) | np.isinf(x).any(1)


def check_pose_columns(cols: dict[str, np.ndarray], where: str, frames: np.ndarray) -> None:
    """Raise :class:`CorruptValueError` for an implausible state/action row of ``cols``.

    ``where`` names the file and episode; ``frames`` (N,) are the episode frame numbers of
    the rows (for the message).
    """
    for feature in (fmt.STATE, fmt.ACTION):
        if feature not in cols:
            continue
        x = np.asarray(cols[feature], dtype=np.float64)  # (N, 8)
        if (bad := _partly_missing(x)).any():
            _fail(where, frames[_first(bad)], feature, "NaN/inf in a row that is not all NaN")
        rows = np.isfinite(x).all(1)
        pos, quat, grip = x[rows, :3], x[rows, 3:7], x[rows, 7]
        f = frames[rows]
        if (bad := (np.abs(pos) > MAX_POSITION_M).any(1)).any():
            _fail(where, f[_first(bad)], feature, f"position {pos[_first(bad)].tolist()} m is "
                  f"outside +-{MAX_POSITION_M:g} m")  # fmt: skip
        norm = np.linalg.norm(quat, axis=1)
        if (bad := np.abs(norm - 1) > QUAT_NORM_TOL).any():
            _fail(where, f[_first(bad)], feature, f"quaternion norm {norm[_first(bad)]:.6g}, not 1")
        lo, hi = GRIPPER_RANGE
        if (bad := (grip < lo) | (grip > hi)).any():
            _fail(where, f[_first(bad)], feature, f"gripper {grip[_first(bad)]:.6g} outside [0, 1]")


def check_camera_columns(cols: dict[str, np.ndarray], where: str, frames: np.ndarray) -> None:
    """Raise :class:`CorruptValueError` for implausible intrinsics or extrinsics in ``cols``."""
    for feature, x in cols.items():
        if not feature.startswith(fmt.CAMERA_PREFIX):
            continue
        x = np.asarray(x, dtype=np.float64)
        if (bad := _partly_missing(x)).any():
            _fail(where, frames[_first(bad)], feature, "NaN/inf in a row that is not all NaN")
        rows = np.isfinite(x).all(1)
        if rows.any() and not rows.all():  # a view is calibrated for a whole episode or not at all
            _fail(where, frames[_first(~rows)], feature,
                  "calibration missing in this frame but present in others of the episode")  # fmt: skip
        f = frames[rows]
        if feature.endswith(".intrinsics"):
            K = x[rows].reshape(-1, 3, 3)
            ok = (K[:, 0, 0] > 0) & (K[:, 1, 1] > 0) & np.isclose(K[:, 2, 2], 1.0)
            ok &= (np.abs(K) < 1e7).all((1, 2))
            if (bad := ~ok).any():
                _fail(where, f[_first(bad)], feature, "not an OpenCV K (fx, fy > 0, K[2,2] = 1)")
        elif feature.endswith(".world_to_camera"):
            E = x[rows].reshape(-1, 4, 4)
            R = E[:, :3, :3]
            ortho = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)).max((1, 2))
            ok = (ortho < ROTATION_TOL) & (np.abs(np.linalg.det(R) - 1) < ROTATION_TOL)
            ok &= np.allclose(E[:, 3], [0, 0, 0, 1]) & (np.abs(E[:, :3, 3]) < MAX_POSITION_M).all(1)
            if (bad := ~ok).any():
                _fail(where, f[_first(bad)], feature,
                      "not a rigid transform (proper rotation, bottom row 0 0 0 1)")  # fmt: skip
