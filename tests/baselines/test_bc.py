"""The behaviour-cloning baseline: loss, overfitting, checkpoints, resume, policy, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from actionimages.baselines.bc import BCConfig, BCNet, BCPolicy, InstructionEmbedder, load_bc
from actionimages.baselines.bc_train import batch_loss, make_optimizer, save_bc, train_bc
from actionimages.data.sampler import ClipConfig, ClipSampler
from actionimages.sim import Action, make_env
from actionimages.sim.record import RecordConfig, record

VIEWS = ("front", "left_shoulder")


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Two expert episodes of press_button, two 32 x 32 views (about 4 s to record)."""
    out = tmp_path_factory.mktemp("bc") / "demos"
    cfg = RecordConfig(tasks=("press_button",), episodes=2, cameras=VIEWS, image_size=(32, 32),
                       video_codec="h264")  # fmt: skip
    record(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(demos, tmp_path_factory):
    """A debug run of 3 steps (batch 2)."""
    out = tmp_path_factory.mktemp("bc") / "run"
    train_bc(BCConfig.debug(), [demos], out, steps=3, batch_size=2, progress=False)
    return out


def one_batch(demos, n: int = 4) -> dict:
    cfg = BCConfig.debug()
    clips = ClipConfig(num_frames=cfg.chunk + 1, num_views=2, height=32, width=32,
                       plucker_stride=32, render_actions=False)  # fmt: skip
    sampler = ClipSampler([demos], clips)
    return torch.utils.data.default_collate([sampler[i] for i in range(n)])


def test_overfitting_one_batch_lowers_the_loss(demos):
    torch.manual_seed(0)
    cfg = BCConfig.preset("debug", lr=3e-3)
    model, embed = BCNet(cfg), InstructionEmbedder(cfg)
    model.set_stats([0.5, 0.0, 0.3], [0.1, 0.1, 0.1])
    batch = one_batch(demos, 2)
    opt = make_optimizer(model, cfg)
    losses = []
    for _ in range(30):
        loss, _ = batch_loss(model, batch, embed)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.01  # the demos move: "stay still" is not already perfect
    assert losses[-1] < 0.3 * losses[0], losses


def test_invalid_frames_are_left_out_of_the_loss(demos):
    cfg = BCConfig.debug()
    model, embed = BCNet(cfg), InstructionEmbedder(cfg)
    batch = one_batch(demos, 2)
    batch["frame_valid"][:, 5:] = False
    base, _ = batch_loss(model, batch, embed)
    batch["position"][:, 5:] += 10.0  # garbage where frames are invalid: no effect
    same, _ = batch_loss(model, batch, embed)
    batch["position"][:, 2] += 10.0  # ... but a valid frame counts
    worse, _ = batch_loss(model, batch, embed)
    assert torch.equal(base, same) and worse > base + 0.5


def test_training_writes_its_folder_and_resumes(demos, trained, tmp_path):
    info = json.loads((trained / "train_info.json").read_text())
    assert info["step"] == 3 and info["samples_seen"] == 6 and info["wall_seconds"] > 0
    for name in ("config.json", "model.safetensors", "optimizer.pt", "stats.json"):
        assert (trained / name).is_file(), name
    assert len((trained / "log.jsonl").read_text().splitlines()) == 3  # debug logs every step
    stats = json.loads((trained / "stats.json").read_text())["position"]
    assert stats["frames"] > 20 and min(stats["std"]) > 0

    # 3 steps, then resumed to 5, equals 5 steps straight (same clips, same optimizer state).
    resumed = tmp_path / "resumed"
    train_bc(BCConfig.debug(), [demos], resumed, steps=3, batch_size=2, progress=False)
    info = train_bc(BCConfig.debug(), [demos], resumed, steps=5, batch_size=2, progress=False)
    assert info["step"] == 5 and info["samples_seen"] == 10
    straight = tmp_path / "straight"
    train_bc(BCConfig.debug(), [demos], straight, steps=5, batch_size=2, progress=False)
    a, b = load_bc(resumed)[0].state_dict(), load_bc(straight)[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not torch.equal(a["head.2.weight"], load_bc(trained)[0].state_dict()["head.2.weight"])

    with pytest.raises(ValueError, match="different config"):
        train_bc(BCConfig.preset("debug", width=48), [demos], resumed, steps=6, batch_size=2,
                 progress=False)  # fmt: skip


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    cfg = BCConfig.debug()
    model = BCNet(cfg)
    model.set_stats([0.4, -0.1, 0.2], [0.2, 0.3, 0.1])
    torch.nn.init.normal_(model.head[-1].weight, std=0.1)  # not the zero start
    save_bc(tmp_path, model, make_optimizer(model, cfg), 7, {"mean": [0.0] * 3, "std": [1.0] * 3},
            {"step": 7})  # fmt: skip
    loaded, info = load_bc(tmp_path)
    assert info == {"step": 7} and loaded.config == cfg
    args = (torch.rand(2, 3, 32, 32, 3) * 2 - 1, torch.randn(2, 3, 16), torch.randn(2, 10),
            torch.randn(2, 16))  # fmt: skip
    with torch.no_grad():
        assert torch.equal(model.eval()(*args), loaded(*args))
    assert torch.equal(loaded.position_std, torch.tensor([0.2, 0.3, 0.1]))


def test_policy_runs_in_the_simulator(trained):
    policy = BCPolicy.load(trained, views=VIEWS, execute=4)
    calls = []
    predict = policy.predict
    policy.predict = lambda obs: calls.append(obs["step"]) or predict(obs)
    env = make_env("press_button", cameras=VIEWS, image_size=40, split="in_domain")  # resized
    try:
        obs = env.reset(seed=0)
        policy.reset()
        for _ in range(5):
            action = policy.select_action(obs)
            assert isinstance(action, Action) and 0.0 <= action.gripper <= 1.0
            assert np.allclose(action.rotation.T @ action.rotation, np.eye(3), atol=1e-6)
            assert np.linalg.norm(action.position - obs["ee_position"]) < 0.5
            obs, _, _, _ = env.step(action)
    finally:
        env.close()
    assert calls == [0, 4]  # one chunk per 4 steps


def test_policy_reports_missing_views_and_bad_arguments(trained):
    policy = BCPolicy.load(trained)
    env = make_env("press_button", cameras=("front",), image_size=32, split="in_domain")
    try:
        obs = env.reset(seed=0)
    finally:
        env.close()
    with pytest.raises(ValueError, match="left_shoulder"):
        policy.select_action(obs)
    with pytest.raises(ValueError, match="execute"):
        BCPolicy.load(trained, execute=9)
    with pytest.raises(ValueError, match="groups"):
        BCConfig(channels=(30, 64, 128, 128))
    with pytest.raises(ValueError, match="unknown BC preset"):
        BCConfig.preset("huge")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_bc(trained / "nothing")


def test_cli_train_and_eval(demos, tmp_path):
    from actionimages.cli.baselines import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    run = tmp_path / "cli-run"
    args = parser.parse_args(["baseline", "train-bc", "--data", str(demos), "--out", str(run),
                              "--steps", "2", "--batch-size", "2", "--preset", "debug",
                              "--set", "width=24", "--quiet"])  # fmt: skip
    assert args.func(args) == 0 and load_bc(run)[0].config.width == 24
    out = tmp_path / "eval"
    args = parser.parse_args(["baseline", "eval-bc", "--checkpoint", str(run), "--episodes", "1",
                              "--tasks", "press_button", "--out", str(out), "--max-steps", "3",
                              "--videos", "0", "--quiet"])  # fmt: skip
    assert args.func(args) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["tasks"]["press_button"]["mean_steps"] == 3
    with pytest.raises(ValueError, match="BCConfig field"):
        args = parser.parse_args(["baseline", "train-bc", "--data", str(demos), "--out",
                                  str(run), "--steps", "1", "--set", "nope=1"])  # fmt: skip
        args.func(args)
