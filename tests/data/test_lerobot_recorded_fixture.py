"""Our LeRobot v3 reader on datasets written by the real ``lerobot`` package (issue 12).

``tests/data/lerobot_recorded/`` was recorded by ``scripts/make_lerobot_fixture.py`` with
LeRobot's own recorder (``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` /
``finalize``; versions in ``RECORDED_WITH.json``). CI cannot install lerobot, so the
recording is committed and these tests only read it. Every value the script wrote is a
closed-form function of episode and frame; the formulas are re-implemented here (keep
them in step with the script) so the values can be checked, not only the structure.

- ``posed/``: this package's pose layout (float32 state/action) and calibration columns
  (float64), added as extra features of a LeRobot recording; two AV1 views.
- ``plain/``: a typical LeRobot arm recording (joint state, no calibration), one video
  view and one ``image`` view (PNG bytes in the data parquet). The documented fallback:
  no poses, raw columns in ``Episode.extra["columns"]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from actionimages.data.lerobot import LeRobotDataset

FIXTURE = Path(__file__).parent / "lerobot_recorded"
POSED, PLAIN = FIXTURE / "posed", FIXTURE / "plain"
FPS = 10
LENGTHS = (10, 8)
TASKS = ["put the red block in the bowl", "open the top drawer"]
VIDEO_HW = (48, 64)
WRIST_HW = (32, 40)
POSE_NAMES = ["x", "y", "z", "qx", "qy", "qz", "qw", "gripper"]
JOINT_NAMES = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos",
               "wrist_roll.pos", "gripper.pos"]  # fmt: skip
CAMERA_EYES = {"front": (1.2, 0.0, 0.8), "left_shoulder": (0.3, 0.9, 0.7)}
CAMERA_TARGET = (0.4, 0.0, 0.2)
CAMERA_COLOURS = {"front": (230, 60, 40), "left_shoulder": (40, 200, 90), "wrist": (50, 80, 230)}
VIDEO_MAE = 4.0  # mean absolute error of a decoded frame, of 255 (recorded: 1.1-2.8)


# --- the script's formulas, re-implemented --------------------------------------------


def pose_state(episode: int, T: int) -> np.ndarray:
    t = np.arange(T, dtype=np.float64)
    pos = np.stack(
        [0.35 + 0.02 * t, -0.10 + 0.05 * episode + 0.01 * np.sin(t), 0.25 - 0.01 * t], axis=1
    )
    angle = 2.5 - 0.1 * t - 0.2 * episode
    axis = np.stack([np.ones(T), 0.3 * np.cos(t + episode), 0.2 * t - 0.5], axis=1)
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    quat = np.concatenate([axis * np.sin(angle / 2)[:, None], np.cos(angle / 2)[:, None]], axis=1)
    gripper = 0.5 + 0.5 * np.cos(np.pi * t / (T - 1))
    return np.concatenate([pos, quat, gripper[:, None]], axis=1).astype(np.float32)


def joint_state(episode: int, T: int) -> np.ndarray:
    t = np.arange(T, dtype=np.float64)[:, None]
    j = np.arange(6, dtype=np.float64)[None, :]
    return (10.0 * (j + 1) * np.sin(0.3 * t + 0.5 * j + episode) + 5.0 * episode).astype(np.float32)


def quat_xyzw_matrix(q: np.ndarray) -> np.ndarray:
    """(T, 4) xyzw -> (T, 3, 3), written out here rather than taken from the package."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def intrinsics(height: int, width: int) -> np.ndarray:
    return np.array([[50.0, 0.0, width / 2], [0.0, 50.0, height / 2], [0.0, 0.0, 1.0]])


def world_to_camera(camera: str) -> np.ndarray:
    eye, target = np.array(CAMERA_EYES[camera]), np.array(CAMERA_TARGET)
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    E = np.eye(4)
    E[:3, :3] = np.stack([x, np.cross(z, x), z])
    E[:3, 3] = -E[:3, :3] @ eye
    return E


def frame_image(camera: str, episode: int, t: int, height: int, width: int) -> np.ndarray:
    rows = np.linspace(0.0, 1.0, height)[:, None]
    cols = np.linspace(0.0, 1.0, width)[None, :]
    img = np.empty((height, width, 3))
    img[..., 0] = 40 + 60 * cols + 20 * episode
    img[..., 1] = 40 + 60 * rows
    img[..., 2] = 90 - 30 * cols
    side = height // 4
    top = (height - side) // 2
    left = 2 + (5 * t) % (width - side - 2)
    img[top : top + side, left : left + side] = CAMERA_COLOURS[camera]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def expected_video(camera: str, episode: int, hw: tuple[int, int] = VIDEO_HW) -> np.ndarray:
    return np.stack([frame_image(camera, episode, t, *hw) for t in range(LENGTHS[episode])])


def check_video(got: np.ndarray, expected: np.ndarray) -> None:
    """Close to the frames written, and each decoded frame nearest to its own (no shift)."""
    assert got.dtype == np.uint8 and got.shape == expected.shape
    diff = np.abs(got[:, None].astype(np.float64) - expected[None])  # (T, T, H, W, 3)
    mae = diff.mean(axis=(2, 3, 4))  # (T decoded, T written)
    assert np.diag(mae).max() < VIDEO_MAE, np.diag(mae)
    assert np.array_equal(mae.argmin(axis=1), np.arange(len(got))), mae.argmin(axis=1)


# --- provenance and structure -----------------------------------------------------------


def test_fixture_was_written_by_lerobot_and_is_small():
    recorded = json.loads((FIXTURE / "RECORDED_WITH.json").read_text())
    assert recorded["lerobot"] == "0.4.4"
    for root in (POSED, PLAIN):
        info = json.loads((root / "meta/info.json").read_text())
        assert info["codebase_version"] == "v3.0" and info["robot_type"] == "fixture_arm"
        # ``datasets`` (LeRobot's parquet writer) leaves its schema; our writer does not.
        meta = pq.read_schema(root / "data/chunk-000/file-000.parquet").metadata
        assert b"huggingface" in meta
    size = sum(f.stat().st_size for f in FIXTURE.rglob("*") if f.is_file())
    assert size < 500_000, size


def test_posed_dataset_structure():
    ds = LeRobotDataset(POSED)
    assert ds.num_episodes == 2 and ds.num_frames == sum(LENGTHS) and ds.fps == FPS
    assert [ds.episode_length(k) for k in range(2)] == list(LENGTHS)
    assert ds.tasks == TASKS
    assert ds.camera_names == ["front", "left_shoulder"] and ds.video_keys == [
        "observation.images.front",
        "observation.images.left_shoulder",
    ]
    assert ds.calibrated_cameras == ["front", "left_shoulder"] and ds.has_pose_layout
    f = ds.features
    for key in ("observation.state", "action"):
        assert f[key]["dtype"] == "float32" and f[key]["shape"] == [8]
        assert f[key]["names"] == POSE_NAMES
    for cam in ds.camera_names:
        video = f[f"observation.images.{cam}"]
        assert video["dtype"] == "video" and video["shape"] == [*VIDEO_HW, 3]
        assert video["info"]["video.codec"] == "av1" and video["info"]["video.pix_fmt"] == "yuv420p"
        assert f[f"observation.cameras.{cam}.intrinsics"]["shape"] == [9]
        assert f[f"observation.cameras.{cam}.world_to_camera"]["shape"] == [16]
    # LeRobot packs both episodes into one data file and one MP4 per view, back to back.
    rows = ds.episodes
    assert [r["data/file_index"] for r in rows] == [0, 0]
    assert [r["dataset_from_index"] for r in rows] == [0, LENGTHS[0]]
    assert rows[1]["videos/observation.images.front/from_timestamp"] == pytest.approx(
        LENGTHS[0] / FPS
    )


def test_posed_columns_equal_what_was_recorded():
    ds = LeRobotDataset(POSED)
    start = 0
    for k, T in enumerate(LENGTHS):
        cols = ds.read_columns(k)
        state = pose_state(k, T)
        assert cols["observation.state"].shape == (T, 8)
        np.testing.assert_allclose(cols["observation.state"], state, rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            cols["action"], np.concatenate([state[1:], state[-1:]]), rtol=0, atol=1e-6
        )
        assert np.array_equal(cols["frame_index"], np.arange(T))
        assert np.array_equal(cols["episode_index"], np.full(T, k))
        assert np.array_equal(cols["index"], np.arange(start, start + T))
        assert np.array_equal(cols["task_index"], np.full(T, k))
        np.testing.assert_allclose(cols["timestamp"], np.arange(T) / FPS, atol=1e-6)
        for cam in ("front", "left_shoulder"):
            K = cols[f"observation.cameras.{cam}.intrinsics"]
            E = cols[f"observation.cameras.{cam}.world_to_camera"]
            assert np.array_equal(K, np.tile(intrinsics(*VIDEO_HW).reshape(9), (T, 1)))
            assert np.array_equal(E, np.tile(world_to_camera(cam).reshape(16), (T, 1)))
        start += T


def test_posed_episodes_give_poses_cameras_and_instruction():
    ds = LeRobotDataset(POSED)
    for k, T in enumerate(LENGTHS):
        ep = ds.read_episode(k, load_video=False)
        state = pose_state(k, T)
        assert ep.num_frames == T and ep.has_actions and ep.fps == FPS
        assert ep.instruction == TASKS[k]
        np.testing.assert_allclose(ep.position, state[:, :3], rtol=0, atol=1e-6)
        np.testing.assert_allclose(ep.gripper, state[:, 7], rtol=0, atol=1e-6)
        np.testing.assert_allclose(ep.rotation, quat_xyzw_matrix(state[:, 3:7]), atol=1e-6)
        assert sorted(ep.cameras) == ["front", "left_shoulder"]
        for cam, cams in ep.cameras.items():
            assert len(cams) == T
            assert (cams[0].height, cams[0].width) == VIDEO_HW
            assert np.array_equal(cams[0].K, intrinsics(*VIDEO_HW))
            assert np.array_equal(cams[-1].world_to_camera, world_to_camera(cam))


def test_posed_videos_decode_to_the_recorded_frames():
    ds = LeRobotDataset(POSED)
    for k in range(2):
        ep = ds.read_episode(k)
        for cam in ("front", "left_shoulder"):
            check_video(ep.images[cam], expected_video(cam, k))
    # Seeking inside the second episode of the shared MP4, frames in any order.
    frames = np.array([7, 2, 5])
    part = ds.read_episode(1, cameras=["left_shoulder"], frames=frames)
    assert list(part.images) == ["left_shoulder"] and list(part.cameras) == ["left_shoulder"]
    assert np.array_equal(part.images["left_shoulder"], ds.read_video(1, "left_shoulder")[frames])
    np.testing.assert_allclose(part.position, pose_state(1, 8)[frames, :3], atol=1e-6)


def test_posed_statistics_match_the_recorded_values():
    ds = LeRobotDataset(POSED)
    both = np.concatenate([pose_state(k, T) for k, T in enumerate(LENGTHS)])
    stats = ds.stats["observation.state"]
    assert {"min", "max", "mean", "std", "count", "q01", "q50", "q99"} <= set(stats)
    np.testing.assert_allclose(stats["min"], both.min(0), atol=1e-6)
    np.testing.assert_allclose(stats["max"], both.max(0), atol=1e-6)
    np.testing.assert_allclose(stats["mean"], both.mean(0), atol=1e-5)
    assert int(np.ravel(stats["count"])[0]) == sum(LENGTHS)
    for k, T in enumerate(LENGTHS):
        ep_stats = ds.episode_stats(k)["observation.state"]
        np.testing.assert_allclose(ep_stats["max"], pose_state(k, T).max(0), atol=1e-6)
        assert int(np.ravel(ep_stats["count"])[0]) == T


# --- a plain LeRobot recording: the documented fallback -------------------------------


def test_plain_recording_reads_without_poses_with_raw_columns():
    ds = LeRobotDataset(PLAIN)
    assert ds.num_episodes == 2 and ds.num_frames == sum(LENGTHS) and ds.fps == FPS
    assert ds.camera_names == ["front", "wrist"] and ds.image_keys == ["observation.images.wrist"]
    assert not ds.has_pose_layout and ds.calibrated_cameras == []
    assert ds.features["observation.state"]["names"] == JOINT_NAMES
    assert ds.features["observation.images.wrist"]["shape"] == [*WRIST_HW, 3]
    for k, T in enumerate(LENGTHS):
        ep = ds.read_episode(k)
        assert ep.num_frames == T and ep.instruction == TASKS[k]
        assert not ep.has_actions and not ep.has_cameras  # video-only, as documented
        assert np.isnan(ep.position).all() and np.isnan(ep.gripper).all()
        cols = ep.extra["columns"]
        np.testing.assert_allclose(cols["observation.state"], joint_state(k, T), atol=1e-6)
        np.testing.assert_allclose(cols["action"], joint_state(k, T) + 0.5, atol=1e-5)
        check_video(ep.images["front"], expected_video("front", k))
        # ``image`` features are PNG (lossless): exact.
        assert np.array_equal(ep.images["wrist"], expected_video("wrist", k, WRIST_HW))


def test_clip_sampler_draws_from_lerobot_recordings():
    from actionimages.data.sampler import ClipConfig, ClipSampler

    cfg = ClipConfig.debug()
    posed = ClipSampler([POSED], cfg)[0]
    assert posed["tasks"].tolist() == [True] * 4  # calibrated with poses: every task
    assert posed["video"].shape[:2] == (cfg.num_views, cfg.num_frames)
    plain = ClipSampler([PLAIN], cfg)[0]
    assert plain["tasks"].tolist() == [False, False, False, True]  # video generation only
