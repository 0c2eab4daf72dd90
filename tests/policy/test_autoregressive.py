"""The autoregressive closed loop (issue 11 items 3, 5, 6): chunks, real observations, latency."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionimages.policy import PolicyConfig, WorldActionPolicy
from actionimages.sim import make_env


@pytest.fixture(scope="module")
def env():
    e = make_env(
        "press_button", cameras=("front", "left_shoulder"), image_size=64, split="in_domain"
    )
    yield e
    e.close()


def _run(policy, env, steps: int):
    policy.reset()
    obs = env.reset(seed=0)
    for _ in range(steps):
        obs, _, done, _ = env.step(policy.select_action(obs))
        if done:
            break
    return [
        (p.step, p.plan.info["window"], p.plan.info["chunk"], len(p.plan.cams[0]))
        for p in policy.plans
    ]


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        # (step planned at, window, chunk, frames in the plan): 2 chunks of 4 steps a window
        (0, [(0, 1, 1, 5), (4, 1, 2, 5), (8, 2, 1, 5), (12, 2, 2, 5)]),
        # planned 2 steps ahead; a new window starts 2 steps early and skips 2 frames
        (2, [(0, 1, 1, 5), (2, 1, 2, 5), (6, 2, 1, 3), (8, 2, 2, 5), (12, 3, 1, 3)]),
        # a whole chunk ahead: the window's first chunk would act too late, so its second does
        (4, [(0, 1, 1, 5), (0, 1, 2, 5), (4, 2, 2, 5), (8, 3, 2, 5), (12, 4, 2, 5)]),
    ],
)  # fmt: skip
def test_chunks_are_planned_when_the_queue_needs_them(env, debug_ar_checkpoint, latency, expected):
    policy = WorldActionPolicy.from_pretrained(
        debug_ar_checkpoint, PolicyConfig(loop="autoregressive", latency=latency)
    )
    made = _run(policy, env, 14)
    assert made[: len(expected)] == expected
    # every step acted on a plan meant for it: as many actions as steps, none held
    assert policy.steps == 14


@pytest.mark.parametrize("write_poses", [True, False])
def test_the_executed_chunk_is_written_from_what_was_observed(
    env, debug_ar_checkpoint, write_poses
):
    """Before chunk 2 is planned, chunk 1's cache entries are the real views and poses
    (``write_poses=False``: the real views, and the model's own action frames)."""
    from actionimages.model.packing import ACTION, frame_roles

    policy = WorldActionPolicy.from_pretrained(
        debug_ar_checkpoint, PolicyConfig(loop="autoregressive", write_poses=write_poses)
    )
    planner = policy.planner
    policy.reset()
    obs = env.reset(seed=0)
    seen = []
    for _ in range(5):  # plans at steps 0 and 4
        seen.append(obs)
        predicted = None if planner.session is None else planner.session.x.clone()
        obs, _, _, _ = env.step(policy.select_action(obs))
    s = planner.session
    frames = s.frames(1)
    views = policy.config.views
    clip_frames = [np.stack([o["images"][v] for o in seen] * 2)[:9] for v in views]
    pos = np.stack([o["ee_position"] for o in seen] * 2)[:9]
    rot = np.stack([o["ee_rotation"] for o in seen] * 2)[:9]
    grip = np.array([o["gripper"] for o in seen] * 2)[:9]
    batch, _ = planner.pipeline.make_batch(clip_frames, [seen[0]["cameras"][v] for v in views],
                                           seen[0]["instruction"], trajectory=(pos, rot, grip))  # fmt: skip
    real = planner.pipeline.wam.encode_batch(batch).latents
    action = frame_roles(2, 3)[0] == ACTION  # (2VF,) with V = 2 views, F = 3 latent frames
    video_f, action_f = frames[~action[frames]], frames[action[frames]]
    assert torch.allclose(s.x[:, :, video_f], real[:, :, video_f], atol=1e-5)
    assert not torch.allclose(predicted[:, :, video_f], real[:, :, video_f], atol=1e-3)
    want = real if write_poses else predicted  # the observed poses, or the model's own
    assert torch.allclose(s.x[:, :, action_f], want[:, :, action_f], atol=1e-5)


def test_a_bidirectional_model_or_a_too_long_latency_is_refused(
    debug_checkpoint, debug_ar_checkpoint
):
    with pytest.raises(ValueError, match="autoregressive mode"):
        WorldActionPolicy.from_pretrained(debug_checkpoint, PolicyConfig(loop="autoregressive"))
    with pytest.raises(ValueError, match="exceeds one chunk"):
        WorldActionPolicy.from_pretrained(
            debug_ar_checkpoint, PolicyConfig(loop="autoregressive", latency=5)
        )


def test_eval_and_demo_run_the_autoregressive_loop(debug_ar_checkpoint, tmp_path):
    import json

    from actionimages.cli.main import main

    args = ["eval", "--checkpoint", str(debug_ar_checkpoint), "--split", "in_domain", "--tasks", "press_button",
            "--episodes", "1", "--max-steps", "6", "--metrics-episodes", "0", "--videos", "0",
            "--loop", "autoregressive", "--latency", "2", "--steps", "1", "--out", str(tmp_path / "eval")]  # fmt: skip
    assert main(args) == 0
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["rollouts"]["in_domain"]["tasks"]["press_button"]["episodes"] == 1
    model = tmp_path / "model"
    assert main(["export", "--run", str(debug_ar_checkpoint), "--out", str(model)]) == 0
    from actionimages.eval.demo import DemoConfig, run_demo

    run_demo(DemoConfig(model=str(model), out=str(tmp_path / "demo"), episodes=1, camera_episodes=1,
                        metrics_episodes=0, workers=1, steps=1, tasks=("press_button",), max_steps=6,
                        loop="autoregressive"))  # fmt: skip
    assert "autoregressive loop" in (tmp_path / "demo" / "report.md").read_text()


def test_the_flash_and_breakdown_benchmark_runs(debug_ar_checkpoint):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "autoregressive.py"
    out = subprocess.run([sys.executable, str(script), "--models", str(debug_ar_checkpoint), "--quick",
                          "--steps", "1", "2"], capture_output=True, text=True, check=True, timeout=600)  # fmt: skip
    assert out.stdout.count(f"`{debug_ar_checkpoint}` |") == 2 and "| transformer |" in out.stdout
