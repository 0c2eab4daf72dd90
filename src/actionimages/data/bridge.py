"""BridgeV2 in its LeRobot port -> SPEC episodes (video-only unless calibrated).

Source features used (the Open-X style port; 5 fps, WidowX 250):

    observation.state   (8,)  names x, y, z, roll, pitch, yaw, pad, gripper
                              (Euler "xyz"; gripper 1 = open)
    observation.images.image_0 .. image_3   256x256 video (image_0 is the main view)

Bridge has no camera calibration at all: without a calibration file whose entries give
``K`` and a pose (``camera_to_base`` or ``world_to_camera``), episodes are imported
video-only. Positions and rotations are kept so they can be used once a calibration
exists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from actionimages.data.calibration import Calibration, calibrated_cameras
from actionimages.data.episode import Episode
from actionimages.data.lerobot_reader import LeRobotDataset
from actionimages.data.ports import column, feature_names, import_port, instruction_of
from actionimages.geometry.rotations import euler_xyz_to_matrix

STATE = "observation.state"
POSE_FIELDS = ("x", "y", "z", "roll", "pitch", "yaw")
# The WidowX gripper link points its x axis out of the fingers and slides the fingers
# along y; SPEC wants e_z = approach and e_x in the fingers' plane of motion. The columns
# of this matrix are the new axes in the old frame: e_x' = y, e_y' = z, e_z' = x.
# (From the interbotix convention, not checked against real Bridge images.)
WIDOWX_TOOL_ROTATION = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def bridge_episode(
    ds: LeRobotDataset,
    k: int,
    calibration: Calibration | None = None,
    views: tuple[str, ...] | None = None,
    tool_rotation: np.ndarray | None = WIDOWX_TOOL_ROTATION,
    gripper_closed_is_one: bool = False,
) -> Episode:
    """Episode ``k`` of a Bridge port as an :class:`Episode` (see module docstring)."""
    cols = ds.read_columns(k)
    names = feature_names(ds.features.get(STATE, {}))
    state = column(cols, STATE)
    state = state.reshape(len(state), -1)  # (T, n)
    if all(f in names for f in (*POSE_FIELDS, "gripper")):
        pose = state[:, [names.index(f) for f in POSE_FIELDS]]  # (T, 6)
        grip = state[:, names.index("gripper")]
    elif state.shape[1] >= 7:  # unnamed: Bridge's order, gripper last
        pose, grip = state[:, :6], state[:, -1]
    else:
        raise ValueError(f"{STATE} has {state.shape[1]} values; Bridge needs x..yaw and gripper")
    rotation = euler_xyz_to_matrix(pose[:, 3:])  # (T, 3, 3)
    if tool_rotation is not None:
        rotation = rotation @ np.asarray(tool_rotation, dtype=np.float64)
    grip = np.clip(grip, 0.0, 1.0)
    gripper = 1.0 - grip if gripper_closed_is_one else grip

    views = views or tuple(ds.camera_names)
    images = {v: ds.read_video(k, v) for v in views}
    cameras = {}
    for v in views:
        entry = calibration.entry(k, v) if calibration else None
        if entry is not None:
            h, w = images[v].shape[1:3]
            cams = calibrated_cameras(entry, h, w, len(pose))
            if cams is None:
                raise ValueError(
                    f"calibration for Bridge view {v!r} needs a pose ('camera_to_base' or "
                    "'world_to_camera'): Bridge stores no extrinsics"
                )
            cameras[v] = cams
    return Episode(
        position=pose[:, :3].copy(),
        rotation=rotation,
        gripper=gripper,
        instruction=instruction_of(ds, k, cols),
        images=images,
        cameras=cameras,
        fps=ds.fps,
        task="bridge",
        extra={"robot": "widowx"},
    )


def import_bridge(
    src: str | Path,
    dst: str | Path,
    calibration: str | Path | None = None,
    views: tuple[str, ...] | None = None,
    config=None,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Import a BridgeV2 LeRobot port into ``dst``; returns the number of episodes added."""
    calib = Calibration.load(calibration)
    if calib is None:
        log("Bridge has no camera calibration: importing video-only (no action images).")
    return import_port(
        src,
        dst,
        lambda ds, k: bridge_episode(ds, k, calib, views),
        robot_type="widowx",
        calibrated=calib is not None,
        config=config,
        limit=limit,
        log=log,
    )
