"""What a policy consumes: the documented observation type.

The simulator's ``observe()`` dict has these keys, so it works unchanged; someone with
their own robot builds an :class:`Observation` from their cameras and proprioception:

    obs = Observation(images={"front": rgb0, "left": rgb1},          # (H, W, 3) uint8 each
                      cameras={"front": cam0, "left": cam1},          # calibrated Camera each
                      ee_position=p, ee_rotation=R, gripper=0.8,      # world frame, SPEC 1
                      instruction="open the drawer")
    action = policy.select_action(obs)

Policies read it by key (``obs["images"]``), as they read the simulator's dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from actionimages.geometry.camera import Camera


@dataclass(frozen=True)
class Observation:
    """One control step's observation.

    Attributes:
        images: view name -> (H, W, 3) uint8 RGB.
        cameras: view name -> :class:`Camera` (OpenCV convention) of that image.
        ee_position: (3,) end-effector (TCP) position, metres, world frame.
        ee_rotation: (3, 3) its rotation (columns e_x, e_y, e_z; e_z = approach).
        gripper: openness in [0, 1], 1 = open.
        instruction: the task in words.
        step: the control step within the episode (optional; a planner replaying a
            recorded trajectory reads it).
    """

    images: Mapping[str, np.ndarray]
    cameras: Mapping[str, Camera]
    ee_position: np.ndarray
    ee_rotation: np.ndarray
    gripper: float
    instruction: str
    step: int | None = None

    def __post_init__(self) -> None:
        for view, img in self.images.items():
            img = np.asarray(img)
            if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
                raise ValueError(
                    f"view {view!r}: image must be (H, W, 3) uint8, got {img.shape} {img.dtype}"
                )
            cam = self.cameras.get(view)
            if cam is not None and (cam.height, cam.width) != img.shape[:2]:
                raise ValueError(
                    f"view {view!r}: camera is {cam.height}x{cam.width}, image {img.shape[:2]}"
                )
        pos, rot = np.asarray(self.ee_position), np.asarray(self.ee_rotation)
        if pos.shape != (3,) or rot.shape != (3, 3) or not np.isfinite([*pos, *rot.ravel()]).all():
            raise ValueError(
                f"ee_position (3,) and ee_rotation (3, 3) must be finite, got {pos.shape}, {rot.shape}"
            )
        if not 0.0 <= float(self.gripper) <= 1.0:
            raise ValueError(f"gripper openness must lie in [0, 1], got {self.gripper}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Observation:
        """From the simulator's dict (extra keys such as ``joint_positions`` are ignored)."""
        optional = {"step"}
        missing = [f.name for f in fields(cls) if f.name not in d and f.name not in optional]
        if missing:
            raise ValueError(f"observation lacks {missing}; see actionimages.policy.Observation")
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in {f.name for f in fields(self)} else None
        return default if value is None else value
