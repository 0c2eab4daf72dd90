"""DROID in its LeRobot port -> SPEC episodes.

Source features used (the port's schema; 15 fps, Franka + Robotiq):

    observation.state.cartesian_position  (6,)  x, y, z, roll, pitch, yaw (Euler "xyz")
    observation.state.gripper_position    (1,)  0 = open ... 1 = closed  -> flipped here
    camera_extrinsics.<cam>               (6,)  camera-to-base pose, same layout
    observation.images.{exterior_1_left, exterior_2_left, wrist_left}   180x320 video

The port carries no intrinsics, so cameras need a calibration file
(:mod:`actionimages.data.calibration`); without one every episode is video-only, and
the importer says so. The wrist camera's pose needs ``camera_to_ee`` in that file
(the port's single wrist extrinsic cannot describe a moving camera).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from actionimages.data.calibration import Calibration, calibrated_cameras, pose6_to_matrix
from actionimages.data.episode import Episode
from actionimages.data.lerobot_reader import LeRobotDataset
from actionimages.data.ports import column, episode_strings, import_port, instruction_of
from actionimages.geometry.rotations import euler_xyz_to_matrix

DROID_VIEWS = ("exterior_1_left", "exterior_2_left", "wrist_left")
CARTESIAN = "observation.state.cartesian_position"
GRIPPER = "observation.state.gripper_position"
EXTRINSICS = "camera_extrinsics.{}"
EPISODE_KEYS = ("building", "collector_id", "date", "task_category", "is_episode_successful")


def droid_episode(
    ds: LeRobotDataset,
    k: int,
    calibration: Calibration | None = None,
    views: tuple[str, ...] | None = None,
    tool_rotation: np.ndarray | None = None,
) -> Episode:
    """Episode ``k`` of a DROID port as an :class:`Episode`.

    Args:
        calibration: intrinsics (and optional pose overrides); None -> video-only.
        views: cameras to keep (default: every DROID view present).
        tool_rotation: (3, 3) applied on the right of the end-effector rotation if its
            axes differ from SPEC's (e_z = approach). Default identity: the Franka
            flange's z axis already points along the approach direction.
    """
    cols = ds.read_columns(k)
    pose = column(cols, CARTESIAN, 6)  # (T, 6)
    T = len(pose)
    rotation = euler_xyz_to_matrix(pose[:, 3:])  # (T, 3, 3)
    if tool_rotation is not None:
        rotation = rotation @ np.asarray(tool_rotation, dtype=np.float64)
    closed = column(cols, GRIPPER, 1)[:, 0]
    gripper = 1.0 - np.clip(closed, 0.0, 1.0)  # DROID: 1 = closed; SPEC: 1 = open

    views = views or tuple(v for v in DROID_VIEWS if v in ds.camera_names)
    images = {v: ds.read_video(k, v) for v in views}
    ee_to_base = np.zeros((T, 4, 4))
    ee_to_base[:, :3, :3], ee_to_base[:, :3, 3], ee_to_base[:, 3, 3] = rotation, pose[:, :3], 1.0
    cameras = {}
    for v in views:
        entry = calibration.entry(k, v) if calibration else None
        if entry is None:
            continue
        c2b = None
        if "wrist" not in v and EXTRINSICS.format(v) in cols:
            ext = column(cols, EXTRINSICS.format(v), 6)  # (T, 6), constant per episode
            c2b = pose6_to_matrix(ext[0])
        h, w = images[v].shape[1:3]
        cams = calibrated_cameras(entry, h, w, T, camera_to_base=c2b, ee_to_base=ee_to_base)
        if cams is not None:
            cameras[v] = cams
    return Episode(
        position=pose[:, :3].copy(),
        rotation=rotation,
        gripper=gripper,
        instruction=instruction_of(ds, k, cols),
        images=images,
        cameras=cameras,
        fps=ds.fps,
        task="droid",
        extra={"robot": "droid", **episode_strings(cols, EPISODE_KEYS)},
    )


def import_droid(
    src: str | Path,
    dst: str | Path,
    calibration: str | Path | None = None,
    views: tuple[str, ...] | None = None,
    config=None,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Import a DROID LeRobot port into ``dst``; returns the number of episodes added."""
    calib = Calibration.load(calibration)
    if calib is None:
        log("no calibration file given: DROID's port has no intrinsics, so every episode "
            "is imported video-only (no action images). Pass --calibration to fix that.")  # fmt: skip
    return import_port(
        src,
        dst,
        lambda ds, k: droid_episode(ds, k, calib, views),
        robot_type="franka",
        calibrated=calib is not None,
        config=config,
        limit=limit,
        log=log,
    )
