"""The in-memory episode every importer returns and every writer accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actionimages.geometry.camera import Camera


@dataclass
class Episode:
    """One demonstration, in the SPEC conventions (metres, OpenCV cameras, g=1 open).

    Attributes:
        position: (T, 3) end-effector (TCP) position per frame, world frame.
        rotation: (T, 3, 3) end-effector rotation per frame (columns e_x, e_y, e_z).
        gripper: (T,) openness in [0, 1], 1 = open.
        instruction: natural-language task description.
        images: camera name -> (T, H, W, 3) uint8 RGB.
        cameras: camera name -> list of T ``Camera`` (static views repeat one camera;
            a wrist camera moves). Empty for video-only data without calibration.
        fps: frames per second of ``images``.
        task: short task name (e.g. "open_drawer").
        extra: anything else worth keeping (seed, variation, joint positions...).
    """

    position: np.ndarray
    rotation: np.ndarray
    gripper: np.ndarray
    instruction: str
    images: dict[str, np.ndarray]
    cameras: dict[str, list[Camera]] = field(default_factory=dict)
    fps: float = 10.0
    task: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        T = len(self.position)
        if np.shape(self.position) != (T, 3):
            raise ValueError(f"Episode.position must be (T, 3), got {np.shape(self.position)}")
        if np.shape(self.rotation) != (T, 3, 3):
            raise ValueError(f"Episode.rotation must be ({T}, 3, 3), got {np.shape(self.rotation)}")
        if np.shape(self.gripper) != (T,):
            raise ValueError(f"Episode.gripper must be ({T},), got {np.shape(self.gripper)}")
        for name, frames in self.images.items():
            if frames.ndim != 4 or frames.shape[0] != T or frames.shape[-1] != 3:
                raise ValueError(
                    f"Episode.images[{name!r}] must be ({T}, H, W, 3), got {frames.shape}"
                )
            if frames.dtype != np.uint8:
                raise ValueError(f"Episode.images[{name!r}] must be uint8, got {frames.dtype}")
        for name, cams in self.cameras.items():
            if len(cams) != T:
                raise ValueError(
                    f"Episode.cameras[{name!r}] must hold {T} cameras, got {len(cams)}"
                )

    @property
    def num_frames(self) -> int:
        return len(self.position)

    @property
    def camera_names(self) -> list[str]:
        return list(self.images)

    @property
    def has_actions(self) -> bool:
        """True when poses are usable as actions (finite, non-empty)."""
        return self.num_frames > 0 and bool(np.isfinite(self.position).all())

    @property
    def has_cameras(self) -> bool:
        """True when at least one view is calibrated (action images can be rendered)."""
        return len(self.cameras) > 0
