"""The real RLBench sample -> LeRobot v3 -> back: exact actions, close video, right cameras."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from actionimages.data.lerobot import LeRobotDataset
from actionimages.data.lerobot_format import pose_state
from actionimages.data.rlbench import ALLOWED, import_rlbench, read_rlbench_episode
from actionimages.data.safe_pickle import UnsafePickleError, safe_load

STATIC = ("front", "left_shoulder", "right_shoulder", "overhead")


@pytest.fixture(scope="module")
def imported(rlbench_episode_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("rlbench") / "ds"
    assert import_rlbench(rlbench_episode_dirs[0].parents[3], root, log=lambda s: None) == 2
    sources = [read_rlbench_episode(d) for d in rlbench_episode_dirs]
    return LeRobotDataset(root), sources, rlbench_episode_dirs


def test_actions_read_back_bit_exact(imported):
    ds, sources, dirs = imported
    assert ds.num_episodes == len(sources)
    for k, (src, folder) in enumerate(zip(sources, dirs, strict=True)):
        cols = ds.read_columns(k)
        state = pose_state(src.position, src.rotation, src.gripper)
        assert np.array_equal(cols["observation.state"], state)
        assert np.array_equal(cols["action"], np.concatenate([state[1:], state[-1:]]))
        back = ds.read_episode(k, load_video=False)
        assert np.array_equal(back.position, src.position)
        assert np.array_equal(back.gripper, src.gripper)
        np.testing.assert_allclose(back.rotation, src.rotation, atol=1e-12)
        # ... and against the pickle itself, not only our reader of it
        demo = safe_load(folder / "low_dim_obs.pkl", ALLOWED)
        raw = np.stack([np.asarray(o.gripper_pose, np.float64) for o in demo._observations])
        assert np.array_equal(cols["observation.state"][:, :3], raw[:, :3])
        q = raw[:, 3:] / np.linalg.norm(raw[:, 3:], axis=1, keepdims=True)
        q *= np.sign(q[:, 3:])  # our layout keeps w >= 0
        np.testing.assert_allclose(cols["observation.state"][:, 3:7], q, atol=1e-12)
        assert back.instruction == src.instruction and ds.info["robot_type"] == "panda"


def test_video_within_codec_tolerance(imported):
    ds, sources, _ = imported
    for k, src in enumerate(sources):
        back = ds.read_episode(k)
        for cam, frames in src.images.items():
            err = back.images[cam].astype(np.float64) - frames
            psnr = 10 * np.log10(255.0**2 / np.mean(err**2))
            assert np.abs(err).mean() < 5.0 and psnr > 28.0, (cam, np.abs(err).mean(), psnr)


def _motion_ratio(frames: np.ndarray, uv: np.ndarray, radius: float = 8.0, lag: int = 2) -> float:
    """Median over moving frames of (motion energy within ``radius`` px of ``uv``) / (image mean).

    The arm is what moves in these demos, so a projection that lands on the gripper sits
    in a region of high frame-to-frame change; a wrong camera convention does not.
    """
    H, W = frames.shape[1:3]
    f = frames.astype(np.float32)
    motion = np.abs(f[lag:] - f[:-lag]).sum(-1)  # (T - lag, H, W)
    centre = (uv[lag:] + uv[:-lag]) / 2  # (T - lag, 2)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    near = (xx - centre[:, 0, None, None]) ** 2 + (yy - centre[:, 1, None, None]) ** 2 <= radius**2
    inside = ((centre >= 0) & (centre <= [W, H])).all(1)
    moving = motion.mean((1, 2)) > 1.0
    keep = inside & moving & (near.sum((1, 2)) > 0)
    local = (motion * near).sum((1, 2))[keep] / near.sum((1, 2))[keep]
    return float(np.median(local / motion.mean((1, 2))[keep]))


def test_projected_gripper_lands_on_the_gripper_in_every_static_view(imported):
    ds, sources, dirs = imported
    flipped_fails = 0
    for k in range(len(sources)):
        back = ds.read_episode(k, cameras=list(STATIC))  # decoded video + stored cameras
        demo = safe_load(dirs[k] / "low_dim_obs.pkl", ALLOWED)
        for cam in STATIC:
            c = back.cameras[cam][0]
            uv, depth = c.project(back.position)
            assert (depth > 0.2).all()
            # the stored camera reproduces the dataset's own formula: K @ inv(E) @ p
            misc = demo._observations[0].misc
            E = np.asarray(misc[f"{cam}_camera_extrinsics"], np.float64)
            K = np.asarray(misc[f"{cam}_camera_intrinsics"], np.float64)
            hom = np.c_[back.position, np.ones(len(uv))] @ np.linalg.inv(E).T  # (T, 4)
            pix = hom[:, :3] @ K.T
            # (3e-6 px apart: the stored float32 rotation is re-orthonormalised on import)
            assert np.abs(pix[:, :2] / pix[:, 2:] - uv).max() < 1e-4
            ratio = _motion_ratio(back.images[cam], uv)
            assert ratio > 2.5, (k, cam, ratio)
            # control: the same check with the image upside down must not pass everywhere
            wrong = uv.copy()
            wrong[:, 1] = c.height - wrong[:, 1]
            flipped_fails += _motion_ratio(back.images[cam], wrong) <= 2.5
    assert flipped_fails >= 4


def test_projection_sheet_is_written(imported, tmp_path):
    from actionimages.data.preview import write_preview

    ds, _, _ = imported
    paths = write_preview(ds.root, 0, tmp_path, size=None)
    assert [p.suffix for p in paths] == [".mp4", ".png", ".png"]
    assert all(p.stat().st_size > 1000 for p in paths)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    payload = pickle.dumps(_RunsCode())
    with pytest.raises(UnsafePickleError, match=r"posix\.system|os\.system"):
        safe_load(payload, ALLOWED)
    # a malicious low_dim_obs.pkl inside an episode folder stops the import before anything runs
    episode = tmp_path / "task/all_variations/episodes/episode0"
    episode.mkdir(parents=True)
    marker = tmp_path / "ran"
    evil = pickle.dumps(type("X", (), {"__reduce__": lambda s: (open, (str(marker), "w"))})())
    (episode / "low_dim_obs.pkl").write_bytes(evil)
    with pytest.raises(UnsafePickleError):
        import_rlbench(tmp_path / "task", tmp_path / "out", log=lambda s: None)
    assert not marker.exists()
