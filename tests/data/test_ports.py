"""Reading datasets laid out by LeRobot's writer, and the DROID / Bridge importers.

No DROID or Bridge data can be downloaded here: the fixtures follow the ports'
documented schemas (feature names, dtypes, name lists, conventions) and carry a known
ground truth (a synthetic episode), so every conversion is checked numerically.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from actionimages.data.bridge import WIDOWX_TOOL_ROTATION, import_bridge
from actionimages.data.droid import import_droid
from actionimages.data.lerobot import LeRobotDataset
from actionimages.data.synthetic import synthetic_episode
from actionimages.geometry.rotations import matrix_to_euler_xyz

from .lerobot_fixture import write_lerobot_style_dataset

VIDEO = {"dtype": "video", "names": ["height", "width", "channels"]}


def _numbered_frames(T, H, W, episode):
    """Frames whose brightness encodes (episode, frame), to catch off-by-one seeking."""
    level = (np.arange(T) * 5 + episode * 60) % 250  # (T,)
    frames = np.broadcast_to(level[:, None, None, None], (T, H, W, 3)).astype(np.uint8)
    frames = frames.copy()
    frames[:, : H // 2, :, 1] = 255 - frames[:, : H // 2, :, 1]
    return frames


def test_reads_a_dataset_laid_out_by_lerobots_writer(tmp_path):
    features = {
        "action": {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
        "observation.state": {
            "dtype": "float32",
            "shape": (6,),
            "names": [f"j{i}" for i in range(6)],
        },
        "observation.images.top": {**VIDEO, "shape": (48, 64, 3)},
    }
    rng = np.random.default_rng(0)
    eps = []
    for k, T in enumerate([14, 9, 20]):
        eps.append({
            "task": ["pick the cube", "open the box"][k % 2],
            "columns": {"action": rng.normal(size=(T, 6)).astype(np.float32),
                        "observation.state": rng.normal(size=(T, 6)).astype(np.float32)},
            "videos": {"observation.images.top": _numbered_frames(T, 48, 64, k)},
        })  # fmt: skip
    write_lerobot_style_dataset(tmp_path, 30, features, eps)
    ds = LeRobotDataset(tmp_path)
    assert ds.num_episodes == 3 and ds.camera_names == ["top"] and ds.fps == 30
    assert ds.tasks == ["pick the cube", "open the box"]
    for k, ep in enumerate(eps):
        cols = ds.read_columns(k)
        assert np.array_equal(cols["observation.state"], ep["columns"]["observation.state"])
        video = ds.read_video(k, "top")
        truth = ep["videos"]["observation.images.top"]
        assert video.shape == truth.shape
        # each frame is closest to its own ground-truth frame (no shift between episodes)
        err = np.abs(video[:, None].astype(int) - truth[None]).mean(axis=(2, 3, 4))  # (T, T)
        assert np.array_equal(err.argmin(axis=1), np.arange(len(truth)))
        assert np.diag(err).max() < 3.0
        e = ds.read_episode(k)
        assert e.instruction == ep["task"]
        assert not e.has_actions and not e.has_cameras  # joint-space data: not our pose layout
        assert np.array_equal(e.extra["columns"]["action"], ep["columns"]["action"])


def _droid_fixture(root, n=2, size=(48, 80)):
    """A DROID-port-shaped dataset from synthetic episodes with known cameras."""
    truth = [synthetic_episode(num_frames=12 + 3 * k, size=size, views=("front", "left"), seed=k,
                               fps=15, instruction=f"task {k}") for k in range(n)]  # fmt: skip
    six = {
        "dtype": "float32",
        "shape": (6,),
        "names": {"axes": ["x", "y", "z", "roll", "pitch", "yaw"]},
    }
    features = {
        "observation.state.cartesian_position": six,
        "observation.state.gripper_position": {"dtype": "float32", "shape": (1,),
                                               "names": {"axes": ["gripper"]}},
        "camera_extrinsics.exterior_1_left": six,
        "camera_extrinsics.exterior_2_left": six,
        "observation.images.exterior_1_left": {**VIDEO, "shape": (*size, 3)},
        "observation.images.exterior_2_left": {**VIDEO, "shape": (*size, 3)},
        "building": {"dtype": "string", "shape": (1,), "names": None},
    }  # fmt: skip
    eps = []
    for ep in truth:
        T = ep.num_frames
        cart = np.concatenate([ep.position, matrix_to_euler_xyz(ep.rotation)], axis=1)
        cols = {"observation.state.cartesian_position": cart.astype(np.float32),
                "observation.state.gripper_position": (1 - ep.gripper[:, None]).astype(np.float32),
                "building": np.array(["LAB"] * T)}  # fmt: skip
        for src, dst in (("front", "exterior_1_left"), ("left", "exterior_2_left")):
            c2w = ep.cameras[src][0].camera_to_world
            pose = np.concatenate([c2w[:3, 3], matrix_to_euler_xyz(c2w[:3, :3])])
            cols[f"camera_extrinsics.{dst}"] = np.tile(pose, (T, 1)).astype(np.float32)
        videos = {"observation.images.exterior_1_left": ep.images["front"],
                  "observation.images.exterior_2_left": ep.images["left"]}  # fmt: skip
        eps.append({"task": ep.instruction, "columns": cols, "videos": videos})
    write_lerobot_style_dataset(root, 15, features, eps, robot_type="Franka")
    return truth


def _calibration_file(path, truth, pairs, scale=4):
    """Intrinsics given at ``scale`` x the video size (as for DROID's 1280x720 cameras)."""
    default = {}
    for src, dst in pairs:
        cam = truth[0].cameras[src][0]
        big = cam.resized(cam.height * scale, cam.width * scale)
        default[dst] = {"K": big.K.tolist(), "width": big.width, "height": big.height}
    path.write_text(json.dumps({"default": default}))
    return path


def test_droid_import_converts_poses_gripper_and_cameras(tmp_path):
    truth = _droid_fixture(tmp_path / "droid")
    pairs = [("front", "exterior_1_left"), ("left", "exterior_2_left")]
    calib = _calibration_file(tmp_path / "calib.json", truth, pairs)
    logs = []
    assert (
        import_droid(tmp_path / "droid", tmp_path / "out", calibration=calib, log=logs.append) == 2
    )
    ds = LeRobotDataset(tmp_path / "out")
    for k, t in enumerate(truth):
        e = ds.read_episode(k)
        assert e.instruction == t.instruction and e.extra["building"] == "LAB"
        np.testing.assert_allclose(e.position, t.position, atol=1e-6)  # float32 source
        np.testing.assert_allclose(e.rotation, t.rotation, atol=1e-5)
        np.testing.assert_allclose(e.gripper, t.gripper, atol=1e-6)  # flipped back to 1 = open
        for src, dst in pairs:
            uv, _ = e.cameras[dst][0].project(t.position)
            uv_true, _ = t.cameras[src][0].project(t.position)
            assert np.abs(uv - uv_true).max() < 0.05, (dst, np.abs(uv - uv_true).max())
    # a second run resumes: nothing is imported twice
    assert (
        import_droid(tmp_path / "droid", tmp_path / "out", calibration=calib, log=logs.append) == 0
    )
    assert LeRobotDataset(tmp_path / "out").num_episodes == 2


def test_droid_without_intrinsics_is_video_only_and_says_so(tmp_path):
    _droid_fixture(tmp_path / "droid", n=1)
    logs = []
    import_droid(tmp_path / "droid", tmp_path / "out", log=logs.append)
    assert any("video-only" in line for line in logs)
    e = LeRobotDataset(tmp_path / "out").read_episode(0)
    assert e.has_actions and not e.has_cameras


def test_droid_wrist_camera_moves_with_the_hand(tmp_path):
    truth = _droid_fixture(tmp_path / "droid", n=1)
    t = truth[0]
    cam_to_ee = np.array([0.05, 0.0, -0.08, 0.1, -0.2, 1.5])  # [x, y, z, roll, pitch, yaw]
    K = t.cameras["front"][0].K
    calib = {"default": {"exterior_2_left": {"K": K.tolist(), "width": 80, "height": 48,
                                             "camera_to_ee": cam_to_ee.tolist()}}}  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(calib))
    import_droid(tmp_path / "droid", tmp_path / "out", calibration=tmp_path / "c.json", log=print)
    e = LeRobotDataset(tmp_path / "out").read_episode(0)
    cams = e.cameras["exterior_2_left"]
    # the hand's own position seen from a camera fixed to the hand never moves
    uv = np.stack([c.project(p[None])[0][0] for c, p in zip(cams, t.position, strict=True)])
    assert np.ptp(uv, axis=0).max() < 1e-3
    assert not np.allclose(cams[0].world_to_camera, cams[-1].world_to_camera)


def _bridge_fixture(root, n=2):
    truth = [synthetic_episode(num_frames=10 + k, size=(64, 64), views=("front", "left"), seed=10 + k,
                               fps=5, instruction="put the spoon in the pot") for k in range(n)]  # fmt: skip
    names = {"motors": ["x", "y", "z", "roll", "pitch", "yaw", "pad", "gripper"]}
    features = {
        "observation.state": {"dtype": "float32", "shape": (8,), "names": names},
        "action": {"dtype": "float32", "shape": (7,), "names": {"motors": names["motors"][:6] + ["gripper"]}},
        "observation.images.image_0": {**VIDEO, "shape": (64, 64, 3)},
        "observation.images.image_1": {**VIDEO, "shape": (64, 64, 3)},
    }  # fmt: skip
    eps = []
    for ep in truth:
        # ground truth is in SPEC axes; Bridge stores the WidowX link: undo the tool rotation
        raw = ep.rotation @ WIDOWX_TOOL_ROTATION.T
        state = np.concatenate([ep.position, matrix_to_euler_xyz(raw), np.zeros((ep.num_frames, 1)),
                                ep.gripper[:, None]], axis=1)  # fmt: skip
        cols = {"observation.state": state.astype(np.float32),
                "action": np.zeros((ep.num_frames, 7), np.float32)}  # fmt: skip
        videos = {"observation.images.image_0": ep.images["front"],
                  "observation.images.image_1": ep.images["left"]}  # fmt: skip
        eps.append({"task": ep.instruction, "columns": cols, "videos": videos})
    write_lerobot_style_dataset(root, 5, features, eps, robot_type="widowx")
    return truth


def test_bridge_import_is_video_only_without_calibration(tmp_path):
    truth = _bridge_fixture(tmp_path / "bridge")
    logs = []
    assert import_bridge(tmp_path / "bridge", tmp_path / "out", log=logs.append) == 2
    assert any("video-only" in line for line in logs)
    ds = LeRobotDataset(tmp_path / "out")
    assert ds.calibrated_cameras == [] and ds.camera_names == ["image_0", "image_1"]
    for k, t in enumerate(truth):
        e = ds.read_episode(k)
        assert not e.has_cameras
        np.testing.assert_allclose(e.position, t.position, atol=1e-6)
        np.testing.assert_allclose(e.rotation, t.rotation, atol=1e-5)
        np.testing.assert_allclose(e.gripper, t.gripper)
        assert np.abs(e.images["image_1"].astype(int) - t.images["left"]).mean() < 4


def test_bridge_with_a_camera_file_gets_cameras(tmp_path):
    truth = _bridge_fixture(tmp_path / "bridge", n=1)
    cam = truth[0].cameras["front"][0]
    calib = {"default": {"image_0": {"K": cam.K.tolist(), "width": 64, "height": 64,
                                     "world_to_camera": cam.world_to_camera.tolist()}}}  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(calib))
    import_bridge(tmp_path / "bridge", tmp_path / "out", calibration=tmp_path / "c.json", log=print)
    e = LeRobotDataset(tmp_path / "out").read_episode(0)
    assert list(e.cameras) == ["image_0"]
    assert np.array_equal(e.cameras["image_0"][0].world_to_camera, cam.world_to_camera)
    bad = {"default": {"image_1": {"K": cam.K.tolist(), "width": 64, "height": 64}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="needs a pose"):
        import_bridge(
            tmp_path / "bridge", tmp_path / "o2", calibration=tmp_path / "bad.json", log=print
        )


def test_image_features_in_the_parquet_are_read_as_views(tmp_path):
    """LeRobot's dtype "image": PNG bytes in a {bytes, path} struct column of the data file."""
    import io
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    features = {
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
        "observation.images.top": {**VIDEO, "shape": (32, 48, 3)},
    }
    eps = [{"task": "t", "columns": {"observation.state": np.zeros((T, 2), np.float32)},
            "videos": {"observation.images.top": _numbered_frames(T, 32, 48, k)}}
           for k, T in enumerate([6, 4])]  # fmt: skip
    write_lerobot_style_dataset(tmp_path, 10, features, eps)
    rng = np.random.default_rng(0)
    wrist = [rng.integers(0, 255, (T, 32, 48, 3), dtype=np.uint8) for T in (6, 4)]

    def png(img):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        return buf.getvalue()

    data = tmp_path / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data)
    cells = [{"bytes": png(f), "path": None} for ep in wrist for f in ep]
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pq.write_table(table.append_column("observation.images.wrist", pa.array(cells, struct)), data)
    info = json.loads((tmp_path / "meta/info.json").read_text())
    info["features"]["observation.images.wrist"] = {"dtype": "image", "shape": [32, 48, 3],
                                                    "names": ["height", "width", "channels"]}  # fmt: skip
    (tmp_path / "meta/info.json").write_text(json.dumps(info))

    ds = LeRobotDataset(tmp_path)
    assert ds.camera_names == ["top", "wrist"]
    for k in range(2):
        assert np.array_equal(ds.read_video(k, "wrist"), wrist[k])  # PNG is lossless
        assert np.array_equal(ds.read_video(k, "wrist", frames=[2, 0]), wrist[k][[2, 0]])
        ep = ds.read_episode(k)
        assert set(ep.images) == {"top", "wrist"} and ep.images["wrist"].shape == (
            len(wrist[k]),
            32,
            48,
            3,
        )
