"""The zero-shot policy: chunk queue mechanics, ground-truth action images, the whole loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actionimages.clips import ClipConfig
from actionimages.codec.decoder import DecodedActions
from actionimages.eval.harness import EvalConfig, evaluate
from actionimages.infer.inputs import action_images, clip_config_of, make_batch
from actionimages.policy import (
    GroundTruthPlanner,
    Plan,
    PolicyConfig,
    WorldActionPolicy,
    chunk_actions,
)
from actionimages.policy.planners import observation_views
from actionimages.sim import make_env

CLIP = clip_config_of("debug")


class LinePlanner:
    """Plans a straight line from the current pose, +1 cm in x per frame, drawn as action images."""

    clip = CLIP

    def __init__(self):
        self.calls = 0

    def reset(self):
        self.calls = 0

    def plan(self, obs, views):
        self.calls += 1
        T = CLIP.num_frames
        pos = obs["ee_position"] + np.outer(np.arange(T), [0.01, 0, 0])  # (T, 3)
        rot = np.repeat(obs["ee_rotation"][None], T, 0)
        _, cams = make_batch(CLIP, *observation_views(obs, views), "")
        import torch

        acts = action_images(
            CLIP, torch.from_numpy(pos), torch.from_numpy(rot), torch.full((T,), 0.7), cams
        )
        return Plan(acts.numpy(), cams)


@pytest.fixture(scope="module")
def env():
    e = make_env(
        "press_button", cameras=("front", "left_shoulder"), image_size=64, split="in_domain"
    )
    yield e
    e.close()


@pytest.mark.parametrize(
    "loop,replan,expected_calls", [("closed", 3, 3), ("closed", 8, 1), ("open", 3, 1)]
)  # the debug clip's plan holds 8 actions: open loop re-plans only after all 8
def test_chunk_queue_replans_as_configured(env, loop, replan, expected_calls):
    planner = LinePlanner()
    policy = WorldActionPolicy(planner, PolicyConfig(loop=loop, replan_every=replan))
    obs = env.reset(seed=100_000)
    policy.reset()
    start = obs["ee_position"].copy()
    actions = [policy.select_action(obs) for _ in range(8)]  # the same obs: only the queue moves
    assert planner.calls == expected_calls
    # decoded from the action images: +1 cm per frame, frame 0 (now) not executed
    want = (
        start[0] + 0.01 * (np.arange(8) % replan + 1)
        if loop == "closed"
        else start[0] + 0.01 * (np.arange(8) + 1)
    )
    assert np.allclose([a.position[0] for a in actions], want, atol=2e-4)
    assert all(abs(a.gripper - 0.7) < 1e-3 for a in actions)


def test_one_trial_open_loop_holds_the_last_action_after_its_chunk(env):
    planner = LinePlanner()
    policy = WorldActionPolicy(planner, PolicyConfig(loop="open", max_plans=1))
    obs = env.reset(seed=100_001)
    policy.reset()
    acts = [policy.select_action(obs) for _ in range(CLIP.num_frames + 3)]
    assert np.allclose(acts[-1].position, acts[CLIP.num_frames - 2].position)
    assert planner.calls == 1


def test_open_loop_replans_at_the_horizon(env):
    planner = LinePlanner()
    policy = WorldActionPolicy(planner, PolicyConfig(loop="open"))
    obs = env.reset(seed=100_001)
    policy.reset()
    start = obs["ee_position"].copy()
    acts = [policy.select_action(obs) for _ in range(2 * (CLIP.num_frames - 1) + 1)]
    assert planner.calls == 3  # 8 actions per plan: plans at steps 0, 8 and 16
    assert np.allclose(acts[8].position[0], start[0] + 0.01, atol=2e-4)  # a fresh plan from obs


def test_smoothing_keeps_a_straight_line_and_damps_noise():
    T = 9
    rng = np.random.default_rng(0)
    line = np.outer(np.arange(T), [0.01, 0.0, 0.0]) + [0.5, 0.0, 0.2]
    still = np.repeat(np.eye(3)[None], T, 0)
    traj = DecodedActions.from_pose(line + rng.normal(0, 0.003, (T, 3)), still, np.ones(T))
    raw = np.array([a.position for a in chunk_actions(traj)])
    smooth = np.array([a.position for a in chunk_actions(traj, smoothing=5)])
    assert np.abs(smooth - line[1:]).mean() < np.abs(raw - line[1:]).mean()
    exact = DecodedActions.from_pose(line, still, np.ones(T))
    assert np.allclose([a.position for a in chunk_actions(exact, smoothing=5)], line[1:], atol=1e-9)


def test_ground_truth_action_images_reproduce_the_expert():
    """Decode-and-execute is not the bottleneck: ground-truth action images solve the task."""
    cfg = EvalConfig(split="in_domain", tasks=("press_button",), episodes=2, cameras=("front", "left_shoulder"),
                     image_size=(64, 64), videos_per_task=0)  # fmt: skip
    gt = evaluate(lambda e: WorldActionPolicy(GroundTruthPlanner(e, CLIP)), cfg, progress=False)
    ex = evaluate("expert", cfg, progress=False)
    assert gt["tasks"]["press_button"]["successes"] == ex["tasks"]["press_button"]["successes"] == 2


@pytest.mark.parametrize("loop", ["closed", "open"])
def test_whole_loop_from_a_debug_checkpoint(debug_checkpoint, tmp_path, loop):
    """generate -> decode -> act in the simulator -> success flag, with a 2-step debug model."""
    policy = WorldActionPolicy.from_pretrained(
        debug_checkpoint, PolicyConfig(loop=loop, replan_every=2)
    )
    cfg = EvalConfig(split="in_domain", tasks=("press_button",), episodes=1, cameras=("front", "left_shoulder"),
                     image_size=(64, 64), videos_per_task=1, max_steps=5)  # fmt: skip
    res = evaluate(policy, cfg, tmp_path, progress=False)
    r = res["tasks"]["press_button"]
    assert r["episodes"] == 1 and isinstance(r["per_episode"][0], bool)
    # closed loop re-plans at steps 0, 2 and 4; open loop only at its 8-step horizon, unless
    # a plan is undecodable (a 2-step model's often are): then it holds 2 steps and re-plans
    decodable = policy.plans[0].trajectory is not None
    assert len(policy.plans) == (1 if loop == "open" and decodable else 3)
    assert policy.plans[0].plan.video.shape == (2, CLIP.num_frames, 64, 64, 3)
    assert (tmp_path / "videos" / "press_button_000.mp4").stat().st_size > 0


def test_missing_view_is_a_clear_error(env):
    policy = WorldActionPolicy(LinePlanner(), PolicyConfig(views=("front", "overhead")))
    obs = env.reset(seed=100_002)
    policy.reset()
    with pytest.raises(ValueError, match="overhead"):
        policy.select_action(obs)
    with pytest.raises(ValueError):
        PolicyConfig(loop="sideways")
    with pytest.raises(ValueError):
        PolicyConfig(smoothing=4)


def test_dreamzero_smoothing_upsamples_filters_and_shrinks_its_window_for_short_chunks():
    from scipy.interpolate import CubicSpline
    from scipy.signal import savgol_filter

    from actionimages.policy.policy import smooth_chunk

    rng = np.random.default_rng(1)
    long = rng.normal(size=(16, 2))  # 31 upsampled samples: the full window of 21 fits
    fine = CubicSpline(np.arange(16), long, axis=0)(np.linspace(0, 15, 31))
    assert np.allclose(smooth_chunk(long, 21), savgol_filter(fine, 21, 3, axis=0)[::2])
    short = rng.normal(size=(9, 2))  # 17 upsampled samples: window 17
    fine = CubicSpline(np.arange(9), short, axis=0)(np.linspace(0, 8, 17))
    assert np.allclose(smooth_chunk(short, 21), savgol_filter(fine, 17, 3, axis=0)[::2])
    cubic = np.arange(9.0)[:, None] ** 3 / 100  # order 3 keeps a cubic exactly
    assert np.allclose(smooth_chunk(cubic, 21), cubic, atol=1e-9)
    assert np.array_equal(smooth_chunk(short[:2], 21), short[:2])  # too short: unchanged


def test_a_low_rate_plan_is_interpolated_to_one_action_per_control_step():
    from scipy.spatial.transform import Rotation

    from actionimages.data.sampler import source_frames_per_clip_frame
    from actionimages.policy.policy import upsample_trajectory

    assert (
        source_frames_per_clip_frame(10.0, 2.5) == 4 and source_frames_per_clip_frame(10, None) == 1
    )
    with pytest.raises(ValueError, match="divide"):
        source_frames_per_clip_frame(10.0, 3.0)
    rot = Rotation.from_euler("z", [[0], [40], [80]], degrees=True).as_matrix()
    pos = np.array([[0.0, 0, 0], [0.4, 0, 0], [0.4, 0.4, 0]])
    traj = dataclasses.replace(
        DecodedActions.from_pose(pos, rot, np.array([1.0, 1.0, 0.0])),
        confidence=np.array([[1.0] * 3, [0.5, 1.0, 1.0], [1.0] * 3]),
        visible=np.array([[[True] * 3, [False, True, True], [True] * 3]]),  # (V=1, T, 3)
    )
    up = upsample_trajectory(traj, 4)
    assert isinstance(up, DecodedActions) and up.position.shape == (9, 3)
    assert up.rotation.shape == up.points.shape == (9, 3, 3) and up.visible.shape == (1, 9, 3)
    assert np.allclose(up.position[::4], traj.position)  # plan frames are kept
    assert np.allclose(up.position[2], [0.2, 0, 0])
    angles = Rotation.from_matrix(up.rotation).as_euler("xyz", degrees=True)[:, 2]
    assert np.allclose(angles, np.arange(9) * 10.0)  # slerp: 10 degrees per control step
    assert np.allclose(up.gripper[4:], [1.0, 0.75, 0.5, 0.25, 0.0])
    assert up.step_confidence.tolist() == [0.5] * 8 + [1.0]
    assert up.visible[0, :, 0].tolist() == [False] * 8 + [True]
    assert upsample_trajectory(traj, 1) is traj and upsample_trajectory(None, 4) is None


def test_episode_clips_step_through_a_higher_rate_episode():
    from actionimages.data.synthetic import synthetic_episode
    from actionimages.eval.generation import episode_clips

    ep = synthetic_episode(num_frames=40, views=("front", "left"))
    clips = episode_clips(ep, ("front", "left"), 9, frame_step=4)
    assert len(clips) == 1 and clips[0]["images"][0].shape[0] == 9
    assert np.array_equal(clips[0]["trajectory"][0], ep.position[0:33:4])


def test_one_factory_makes_every_policy_and_each_declares_the_interface(env, debug_checkpoint):
    from actionimages.policy import Policy, make_policy

    for spec in ["expert", "random", "ground-truth", str(debug_checkpoint)]:
        policy = make_policy(spec, PolicyConfig())(env)
        assert isinstance(policy, Policy), spec


def test_an_observation_built_by_hand_drives_the_policy_like_the_simulator_dict(env):
    from actionimages.policy import Observation

    obs = env.reset(seed=100_003)
    typed = Observation.from_dict(obs)
    a = WorldActionPolicy(LinePlanner(), PolicyConfig())
    b = WorldActionPolicy(LinePlanner(), PolicyConfig())
    a.reset(), b.reset()
    assert np.allclose(a.select_action(obs).position, b.select_action(typed).position)
    with pytest.raises(ValueError, match="gripper"):
        Observation(**{**typed.__dict__, "gripper": 2.0})
    with pytest.raises(ValueError, match="lacks"):
        Observation.from_dict({"images": {}})


def test_an_undecodable_vector_plan_holds_instead_of_crashing(env, debug_checkpoint, monkeypatch):
    from actionimages.policy.planners import ModelPlanner

    policy = WorldActionPolicy.from_pretrained(debug_checkpoint, PolicyConfig())
    pipe = policy.planner.pipeline

    class NoImages:  # what a vector-action model returns: no action images
        def __init__(self, out):
            self.video, self.actions, self.model_calls = out.video, None, out.model_calls

    real_call = type(pipe).__call__
    monkeypatch.setattr(
        type(pipe), "__call__", lambda self, *a, **k: NoImages(real_call(self, *a, **k))
    )

    def degenerate(out, cams):
        raise ValueError("6-D rotation has a zero or collinear column")

    monkeypatch.setattr(pipe, "decode_actions", degenerate)
    assert isinstance(policy.planner, ModelPlanner)
    obs = env.reset(seed=100_004)
    policy.reset()
    action = policy.select_action(obs)
    assert np.allclose(action.position, obs["ee_position"])  # held, and the episode goes on


def test_asynchronous_execution_acts_on_each_plan_latency_steps_late():
    """Latency L: the plan made at step k acts from step k + L; the old chunk runs meanwhile."""
    from actionimages.policy.planners import Plan

    class StepPlanner:  # plan made at step k: frame t at position (k, t, 0)
        clip = ClipConfig.debug().for_inference()

        def reset(self):
            self.made = []

        def plan(self, obs, views):
            k = obs["step"]
            self.made.append(k)
            T = self.clip.num_frames
            pos = np.stack([np.full(T, float(k)), np.arange(T, dtype=float), np.zeros(T)], 1)
            traj = DecodedActions.from_pose(pos, np.repeat(np.eye(3)[None], T, 0), np.ones(T))
            return Plan(None, [], None, traj)

    obs = {"ee_position": np.zeros(3), "ee_rotation": np.eye(3), "gripper": 1.0}
    for lag in (0, 2):
        policy = WorldActionPolicy(StepPlanner(), PolicyConfig(replan_every=4, latency=lag))
        policy.reset()
        acts = [policy.select_action({**obs, "step": k}).position for k in range(12)]
        # step s runs the newest plan that is ready: made at k <= s - lag, frame s - k + 1
        made = policy.planner.made
        assert made == ([0, 4, 8] if lag == 0 else [0, 2, 6, 10])
        for s, a in enumerate(acts):
            k = max(m for m in made if m == 0 or m + lag <= s)
            assert tuple(a[:2]) == (k, s - k + 1), (lag, s, a)
    with pytest.raises(ValueError, match="latency"):
        PolicyConfig(replan_every=4, latency=4)


def test_anchored_plans_move_from_the_measured_pose():
    """anchor="current": decoded frame 0 is moved onto the measured pose, the motion kept."""
    from scipy.spatial.transform import Rotation

    from actionimages.policy.planners import Plan
    from actionimages.policy.policy import anchor_trajectory

    T = 5
    turn = Rotation.from_rotvec([0, 0, 0.1]).as_matrix()  # 0.1 rad about z per frame
    off = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()  # frame 0 decoded wrong by this
    rots = np.stack([np.linalg.matrix_power(turn, t) @ off for t in range(T)])
    pos = np.array([0.3, -0.1, 0.4]) + np.outer(np.arange(T), [0.01, 0.02, 0.0])
    traj = DecodedActions.from_pose(pos, rots, np.linspace(1, 0, T))
    now_p, now_r = np.array([0.5, 0.0, 0.2]), Rotation.from_rotvec([0, 0.4, 0]).as_matrix()
    moved = anchor_trajectory(traj, now_p, now_r)
    assert np.allclose(moved.position[0], now_p) and np.allclose(moved.rotation[0], now_r)
    assert np.allclose(moved.position - moved.position[:1], pos - pos[:1])
    for t in range(T):  # the decoded turn (world frame, on the left) is kept
        assert np.allclose(moved.rotation[t], np.linalg.matrix_power(turn, t) @ now_r, atol=1e-12)
    assert np.array_equal(moved.gripper, traj.gripper)
    assert anchor_trajectory(None, now_p, now_r) is None

    class Fixed:  # always the same (wrongly placed) plan
        clip = ClipConfig.debug().for_inference()

        def reset(self):
            pass

        def plan(self, obs, views):
            return Plan(None, [], None, traj)

    obs = {"ee_position": now_p, "ee_rotation": now_r, "gripper": 1.0}
    for anchor, first in (("absolute", pos[1]), ("current", now_p + pos[1] - pos[0])):
        policy = WorldActionPolicy(Fixed(), PolicyConfig(replan_every=2, anchor=anchor))
        policy.reset()
        assert np.allclose(policy.select_action(obs).position, first)
    with pytest.raises(ValueError, match="anchor"):
        PolicyConfig(anchor="relative")
    with pytest.raises(ValueError, match="anchor"):
        PolicyConfig(loop="autoregressive", anchor="current")
