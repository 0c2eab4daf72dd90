"""User-supplied camera calibration (JSON) for datasets that do not ship intrinsics.

DROID's LeRobot port stores camera extrinsics but no intrinsics; BridgeV2 stores
neither. A calibration file fills the gap::

    {
      "default": {                                   # applies to every episode
        "exterior_1_left": {
          "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],  # OpenCV, pixels
          "width": 1280, "height": 720                 # the image size K refers to
        },
        "wrist_left": {"K": ..., "width": ..., "height": ...,
                       "camera_to_ee": [x, y, z, roll, pitch, yaw]}
      },
      "episodes": {                                  # overrides, by source episode index
        "12": {"exterior_1_left": {"K": ..., "width": ..., "height": ...,
                                   "camera_to_base": [x, y, z, roll, pitch, yaw]}}
      }
    }

Poses are 6-vectors (metres, SciPy extrinsic "xyz" Euler angles in radians, the
camera's OpenCV frame expressed in the robot base frame) or a 4x4
``"world_to_camera"``. ``K`` is rescaled to the stored video size with
:meth:`Camera.resized`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from actionimages.geometry.camera import Camera
from actionimages.geometry.rotations import euler_xyz_to_matrix


def pose6_to_matrix(pose: np.ndarray) -> np.ndarray:
    """(..., 6) [x, y, z, roll, pitch, yaw] (Euler "xyz") -> (..., 4, 4) rigid transform."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] != 6 or not np.isfinite(pose).all():
        raise ValueError(f"a 6-vector pose [x, y, z, roll, pitch, yaw] is needed, got {pose.shape}")
    out = np.zeros((*pose.shape[:-1], 4, 4))
    out[..., :3, :3] = euler_xyz_to_matrix(pose[..., 3:])
    out[..., :3, 3] = pose[..., :3]
    out[..., 3, 3] = 1.0
    return out


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """(..., 4, 4) rigid transform -> its inverse (R^T, -R^T t)."""
    R, t = T[..., :3, :3], T[..., :3, 3]
    out = np.zeros_like(T)
    out[..., :3, :3] = np.swapaxes(R, -1, -2)
    out[..., :3, 3] = -np.einsum("...ji,...j->...i", R, t)
    out[..., 3, 3] = 1.0
    return out


class Calibration:
    """A parsed calibration file; :meth:`entry` finds a camera's entry for an episode."""

    def __init__(self, data: dict[str, Any], source: str = "calibration"):
        if not isinstance(data, dict) or not ({"default", "episodes"} & set(data)):
            raise ValueError(f"{source}: expected a JSON object with 'default' and/or 'episodes'")
        self.default = data.get("default", {})
        self.episodes = {str(k): v for k, v in data.get("episodes", {}).items()}
        self.source = source
        for scope in [self.default, *self.episodes.values()]:
            for cam, entry in scope.items():
                self._validate(cam, entry)

    @classmethod
    def load(cls, path: str | Path | None) -> Calibration | None:
        if path is None:
            return None
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"calibration file {path} not found")
        try:
            return cls(json.loads(path.read_text()), source=str(path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err})") from err

    def _validate(self, cam: str, entry: dict) -> None:
        where = f"{self.source}: camera {cam!r}"
        if "K" not in entry or "width" not in entry or "height" not in entry:
            raise ValueError(f"{where} needs 'K', 'width' and 'height'")
        K = np.asarray(entry["K"], dtype=np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"{where}: K must be a 3x3 OpenCV matrix with positive focal lengths")
        for key, shape in (("camera_to_base", (6,)), ("camera_to_ee", (6,)),
                           ("world_to_camera", (4, 4))):  # fmt: skip
            if key in entry and np.shape(entry[key]) != shape:
                raise ValueError(f"{where}: {key} must have shape {shape}")

    def entry(self, episode: int, camera: str) -> dict | None:
        return self.episodes.get(str(episode), {}).get(camera) or self.default.get(camera)


def calibrated_cameras(
    entry: dict,
    height: int,
    width: int,
    num_frames: int,
    camera_to_base: np.ndarray | None = None,
    ee_to_base: np.ndarray | None = None,
) -> list[Camera] | None:
    """The T cameras of one view from a calibration entry (None if the pose is unknown).

    The pose comes from, in order: the entry's ``world_to_camera`` or ``camera_to_base``;
    its ``camera_to_ee`` chained with the per-frame end-effector poses ``ee_to_base``
    (T, 4, 4) (a wrist camera); the dataset's own ``camera_to_base`` (4, 4).
    """
    K = np.asarray(entry["K"], dtype=np.float64)
    base = Camera(K, np.eye(4), int(entry["height"]), int(entry["width"])).resized(height, width)
    if "world_to_camera" in entry:
        w2c = np.asarray(entry["world_to_camera"], dtype=np.float64)
    elif "camera_to_base" in entry:
        w2c = invert_rigid(pose6_to_matrix(entry["camera_to_base"]))
    elif "camera_to_ee" in entry and ee_to_base is not None:
        c2w = ee_to_base @ pose6_to_matrix(entry["camera_to_ee"])  # (T, 4, 4)
        return [Camera(base.K, m, height, width) for m in invert_rigid(c2w)]
    elif camera_to_base is not None:
        w2c = invert_rigid(np.asarray(camera_to_base, dtype=np.float64))
    else:
        return None
    return [Camera(base.K, w2c, height, width)] * num_frames
