"""The environment API: observations, actions, control, end-effector frame, determinism."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

from actionimages.geometry import Camera
from actionimages.sim import Action, make_env
from actionimages.sim.robot import FINGER_JOINTS, HAND_LINK, top_down_rotation


@pytest.fixture(scope="module")
def env():
    e = make_env("pick_cup", cameras=("front", "overhead", "wrist"), image_size=(48, 64))
    yield e
    e.close()


def test_observation_layout(env):
    obs = env.reset(seed=0)
    assert set(obs["images"]) == set(obs["cameras"]) == {"front", "overhead", "wrist"}
    for cam, img in obs["images"].items():
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
        assert isinstance(obs["cameras"][cam], Camera)
        assert (obs["cameras"][cam].height, obs["cameras"][cam].width) == (48, 64)
        assert img.std() > 5  # something was rendered
    assert obs["ee_position"].shape == (3,) and obs["ee_rotation"].shape == (3, 3)
    R = obs["ee_rotation"]
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-6)
    assert 0.95 <= obs["gripper"] <= 1.0  # starts open
    assert obs["joint_positions"].shape == (9,)
    assert isinstance(obs["instruction"], str) and "cup" in obs["instruction"]


def test_wrist_camera_moves_static_cameras_do_not(env):
    obs0 = env.reset(seed=1)
    target = obs0["ee_position"] + [0.05, 0.05, -0.05]
    obs1, reward, done, info = env.step(Action(target, obs0["ee_rotation"], 1.0))
    assert not np.allclose(
        obs0["cameras"]["wrist"].world_to_camera, obs1["cameras"]["wrist"].world_to_camera
    )
    assert obs0["cameras"]["front"] is obs1["cameras"]["front"]
    assert reward == 0.0 and not done and info["steps"] == 1


def test_step_tracks_an_absolute_target_with_orientation_change(env):
    obs = env.reset(seed=2)
    target = np.array([0.5, -0.1, 0.2])
    R = top_down_rotation(0.7)
    for _ in range(20):
        obs, *_ = env.step(Action(target, R, 0.0))
    assert np.linalg.norm(obs["ee_position"] - target) < 0.003
    angle = np.arccos(np.clip((np.trace(obs["ee_rotation"].T @ R) - 1) / 2, -1, 1))
    assert np.degrees(angle) < 1.0
    assert obs["gripper"] < 0.05  # closed on nothing


def test_end_effector_frame_is_the_tcp_between_the_fingers(env):
    """e_z points from the hand to the fingertips; e_x along the left finger's opening."""
    env.reset(seed=3)
    pos, R = env.robot.ee_pose()

    def link_pos(link):
        return np.asarray(p.getLinkState(env.robot.body, link, computeForwardKinematics=True,
                                         physicsClientId=env.client)[4])  # fmt: skip

    left, right = link_pos(FINGER_JOINTS[0]), link_pos(FINGER_JOINTS[1])
    hand = link_pos(HAND_LINK)
    np.testing.assert_allclose(pos - hand, 0.105 * R[:, 2], atol=1e-6)  # e_z: approach
    gap = left - right
    assert gap @ R[:, 0] > 0.07  # open gripper: fingers 8 cm apart along +e_x
    np.testing.assert_allclose(np.cross(gap, R[:, 0]), 0, atol=1e-6)
    # TCP lies on the line through the fingers' midpoint along e_z.
    mid = (left + right) / 2
    off = pos - mid
    np.testing.assert_allclose(off - (off @ R[:, 2]) * R[:, 2], 0, atol=1e-6)


def test_same_seed_same_episode_other_seed_differs():
    with make_env("push_block", cameras=("front",), image_size=48, split="train") as env:
        a = env.reset(seed=5)
        a_info = env.episode_info()
        b = env.reset(seed=5)
        c = env.reset(seed=6)
    assert np.array_equal(a["images"]["front"], b["images"]["front"])
    assert np.array_equal(a["cameras"]["front"].K, b["cameras"]["front"].K)
    assert a["instruction"] == b["instruction"]
    assert not np.array_equal(a["images"]["front"], c["images"]["front"])
    assert a_info["seed"] == 5 and a_info["split"] == "train"


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"position": [0, 0], "rotation": np.eye(3), "gripper": 1.0}, "position"),
        ({"position": [0.5, 0, 0.2], "rotation": np.eye(2), "gripper": 1.0}, "rotation"),
        ({"position": [np.nan, 0, 0.2], "rotation": np.eye(3), "gripper": 1.0}, "NaN"),
        ({"position": [0.5, 0, 0.2], "rotation": 2 * np.eye(3), "gripper": 1.0}, "rotation matrix"),
        ({"position": [0.5, 0, 0.2], "rotation": np.eye(3), "gripper": 1.5}, r"\[0, 1\]"),
        ({"position": [0.5, 0, 0.2], "rotation": np.eye(3)}, "missing"),
        ([0.5, 0, 0.2], "Action or a dict"),
    ],
)
def test_bad_actions_raise_value_error(env, bad, match):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(bad)


def test_workspace_clipping_is_reported(env):
    obs = env.reset(seed=0)
    _, _, _, info = env.step(Action([3.0, 0.0, 0.3], obs["ee_rotation"], 1.0))
    assert info["workspace_clipped"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "fold_laundry"}, "valid tasks: reach_target"),
        ({"task": "pick_cup", "cameras": ("front", "ceiling")}, "valid cameras"),
        ({"task": "pick_cup", "image_size": 4}, "image_size"),
        ({"task": "pick_cup", "split": "everything"}, "valid splits"),
        ({"task": "pick_cup", "camera_range": "wide"}, "unknown camera range preset"),
        ({"task": "pick_cup", "variation": "psychedelic"}, "unknown variation preset"),
    ],
)
def test_bad_config_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_env(**kwargs)


def test_bad_seed_raises_value_error(env):
    with pytest.raises(ValueError, match="non-negative"):
        env.reset(seed=-1)


def test_step_before_reset_is_an_error():
    with make_env("reach_target", cameras=()) as env, pytest.raises(RuntimeError, match="reset"):
        env.step({"position": [0.5, 0, 0.2], "rotation": np.eye(3), "gripper": 1.0})
