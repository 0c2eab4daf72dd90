"""The simulator's action: an absolute end-effector target (SPEC conventions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Action:
    """Absolute end-effector target, world frame.

    Attributes:
        position: (3,) TCP position, metres.
        rotation: (3, 3) rotation whose columns are e_x, e_y, e_z (e_z = approach).
        gripper: openness in [0, 1], 1 = open.

    Raises ``ValueError`` for wrong shapes, NaN/inf, a matrix that is not a rotation
    (tolerance 1e-3; project it first with ``actionimages.geometry.nearest_rotation``)
    or a gripper value outside [0, 1].
    """

    position: np.ndarray
    rotation: np.ndarray
    gripper: float

    def __post_init__(self) -> None:
        pos = np.array(self.position, dtype=np.float64)
        rot = np.array(self.rotation, dtype=np.float64)
        if pos.shape != (3,):
            raise ValueError(f"Action.position must have shape (3,), got {pos.shape}")
        if rot.shape != (3, 3):
            raise ValueError(f"Action.rotation must have shape (3, 3), got {rot.shape}")
        g = np.asarray(self.gripper, dtype=np.float64)
        if g.size != 1:
            raise ValueError(f"Action.gripper must be a scalar, got shape {g.shape}")
        g = float(g.reshape(()))
        if not (np.isfinite(pos).all() and np.isfinite(rot).all() and np.isfinite(g)):
            raise ValueError("Action contains NaN or inf")
        if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-3) or np.linalg.det(rot) < 0:
            raise ValueError(
                "Action.rotation is not a rotation matrix (orthonormal, det +1); "
                "project it with actionimages.geometry.nearest_rotation first"
            )
        if not -1e-6 <= g <= 1 + 1e-6:
            raise ValueError(f"Action.gripper must lie in [0, 1] (1 = open), got {g}")
        pos.setflags(write=False)
        rot.setflags(write=False)
        object.__setattr__(self, "position", pos)
        object.__setattr__(self, "rotation", rot)
        object.__setattr__(self, "gripper", min(max(g, 0.0), 1.0))

    @classmethod
    def from_any(cls, action: Any) -> Action:
        """An ``Action``, or a mapping with keys ``position``, ``rotation``, ``gripper``."""
        if isinstance(action, Action):
            return action
        if isinstance(action, Mapping):
            missing = {"position", "rotation", "gripper"} - set(action)
            if missing:
                raise ValueError(f"action dict is missing {sorted(missing)}")
            return cls(action["position"], action["rotation"], action["gripper"])
        raise ValueError(
            f"action must be an Action or a dict with position/rotation/gripper, "
            f"got {type(action).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position.tolist(),
            "rotation": self.rotation.tolist(),
            "gripper": self.gripper,
        }
