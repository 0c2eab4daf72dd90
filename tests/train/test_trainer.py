"""Training: exact resume, single-batch overfitting, checkpoints, presets."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import Dataset

from actionimages.train.checkpoint import latest_checkpoint, load_checkpoint
from actionimages.train.config import TrainConfig
from actionimages.train.trainer import Trainer
from tests.model.helpers import debug_wam, synthetic_batch


class TinyClips(Dataset):
    """Items like the data sampler's, drawn from a seeded synthetic batch."""

    def __init__(self, n: int = 8):
        self.items = []
        b = synthetic_batch(n, seed=7)
        for i in range(n):
            self.items.append({k: v[i] for k, v in b.items()})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def trainer(tmp_path, **overrides):
    cfg = TrainConfig.preset("debug", output_dir=str(tmp_path), **overrides)
    return Trainer(cfg, dataset=TinyClips(), wam=debug_wam(seed=0))


def test_train_four_equals_train_two_resume_two(tmp_path):
    straight = trainer(tmp_path / "a", ema_decay=0.9)
    straight.train(4)
    first = trainer(tmp_path / "b", ema_decay=0.9, save_every=2)
    first.train(2)
    assert latest_checkpoint(tmp_path / "b").name == "step-0000002"
    resumed = trainer(
        tmp_path / "b", ema_decay=0.9, save_every=2
    )  # a fresh process, as after a crash
    assert resumed.step == 2
    resumed.train(4)
    a, b = straight.unwrapped.state_dict(), resumed.unwrapped.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(straight.ema[k], resumed.ema[k]) for k in straight.ema)
    assert straight.scheduler.get_last_lr() == resumed.scheduler.get_last_lr()
    # and training did move the weights
    fresh = debug_wam(seed=0).transformer.state_dict()
    assert any(not torch.equal(a[k], fresh[k]) for k in a)


def test_checkpoint_folder_layout_and_atomicity(tmp_path):
    t = trainer(tmp_path, save_every=1)
    t.train(2)
    ckpt = latest_checkpoint(tmp_path)
    names = {p.name for p in ckpt.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "optimizer.pt",
        "scheduler.pt",
        "rng.safetensors",
        "rng.json",
    } <= names
    info = json.loads((ckpt / "config.json").read_text())
    assert (
        info["step"] == 2 and info["model"]["name"] == "debug" and info["train"]["name"] == "debug"
    )
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))  # no half-written folders left
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        load_checkpoint(tmp_path / "checkpoints")


@pytest.mark.slow
def test_single_batch_overfits(tmp_path):
    """Fixed batch, noise, timesteps and tasks: the loss must fall at least 10x in 300 steps."""
    wam = debug_wam(seed=0)
    enc = wam.encode_batch(synthetic_batch(2))
    opt = torch.optim.AdamW(wam.transformer.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        loss, _ = wam.loss(enc, torch.Generator().manual_seed(0), (1, 1, 1, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    ratio = losses[0] / min(losses[-10:])
    print(f"overfit: loss {losses[0]:.4f} -> {min(losses[-10:]):.5f} ({ratio:.0f}x)")
    assert ratio >= 10, (losses[0], losses[-10:])


def test_presets_and_bad_config():
    paper = TrainConfig.preset("paper")
    assert (paper.lr, paper.warmup_steps, paper.grad_clip, paper.mixed_precision) == (
        5e-7,
        1000,
        1.0,
        "bf16",
    )
    assert paper.task_ratios == (0.85, 0.05, 0.05, 0.05)
    with pytest.raises(ValueError, match="task_ratios"):
        TrainConfig(task_ratios=(1, 0, 0))
    with pytest.raises(ValueError, match="unknown training preset"):
        TrainConfig.preset("nope")


def test_nan_batch_is_rejected():
    wam = debug_wam()
    b = synthetic_batch(1)
    b["video"][0, 0, 0, 0, 0, 0] = float("nan")  # (B, V, T, H, W, 3)
    with pytest.raises(ValueError, match="NaN"):
        wam.encode_batch(b)


def test_bf16_autocast_step_runs(tmp_path):
    from accelerate.state import AcceleratorState

    # accelerate keeps one process-wide state; other tests in this process built it for "no".
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        t = trainer(tmp_path, mixed_precision="bf16")
        logs = t.train(1)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert len(logs) == 1 and torch.isfinite(torch.tensor(logs[0]["loss"]))
    assert all(p.dtype == torch.float32 for p in t.params)  # master weights stay float32


def test_world_action_model_from_wan_folders(tmp_path):
    """The real-weights path: transformer and VAE from diffusers folders (tiny, saved here)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from actionimages.model.config import ModelConfig
    from actionimages.model.factory import build_world_action_model

    torch.manual_seed(0)
    mc = ModelConfig.preset(
        "debug", latent_codec="wan2.1-vae", temporal_factor=2, spatial_factor=2, camera_channels=12
    )
    WanTransformer3DModel(**mc.wan_kwargs()).save_pretrained(tmp_path / "wan" / "transformer")
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True],
                     latents_mean=[0.0] * 4, latents_std=[1.0] * 4, scale_factor_temporal=2,
                     scale_factor_spatial=2).save_pretrained(tmp_path / "wan" / "vae")  # fmt: skip
    wan = str(tmp_path / "wan")
    wam = build_world_action_model(mc, wan, wan_path=wan)
    assert wam.transformer.camera_state_is_initial()
    enc = wam.encode_batch(synthetic_batch(1))  # 5 frames -> 3 latent frames of 16 x 16 per clip
    assert enc.latents.shape == (1, 4, 12, 16, 16)
    loss, _ = wam.loss(enc, torch.Generator().manual_seed(0), (1, 1, 1, 1))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="does not match model preset"):
        build_world_action_model(mc.replace(num_layers=3), wan, wan_path=wan)
    with pytest.raises(ValueError, match="camera_channels"):
        mc.replace(camera_channels=24)


def test_diverging_run_stops_at_the_first_non_finite_loss_and_saves_nothing(tmp_path):
    from actionimages.train.trainer import NonFiniteLossError

    t = trainer(tmp_path, save_every=1, steps=6)
    real_loss, calls = t.wam.loss, {"n": 0}

    def diverging(*args, **kwargs):  # the loss of step 3 turns NaN, as a diverged run's does
        loss, info = real_loss(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 3 else loss), info

    t.wam.loss = diverging
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at step 3"):
        t.train()
    assert t.step == 2  # steps 1 and 2 ran and were saved; step 3 was not taken
    # every checkpoint written before the failure is finite, and none comes from it
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is None or int(ckpt.name.split("-")[1]) < t.step + 1
    for folder in (tmp_path / "checkpoints").glob("step-*"):
        from safetensors.torch import load_file

        assert all(
            torch.isfinite(v).all() for v in load_file(str(folder / "model.safetensors")).values()
        )


def test_non_finite_weights_are_never_written_or_loaded(tmp_path):
    from safetensors.torch import save_file

    from actionimages.train.checkpoint import save_checkpoint

    bad = {"w": torch.tensor([1.0, float("nan")])}
    with pytest.raises(ValueError, match="non-finite"):
        save_checkpoint(tmp_path, 1, bad, {"model": {}, "train": {}})
    assert latest_checkpoint(tmp_path) is None
    t = trainer(tmp_path / "run", save_every=1)
    t.train(1)
    folder = latest_checkpoint(tmp_path / "run")
    state = {k: v.clone() for k, v in t.unwrapped.state_dict().items()}
    name = next(iter(state))
    state[name].view(-1)[0] = float("inf")
    save_file(state, str(folder / "model.safetensors"))  # as a corrupted file on disk
    with pytest.raises(ValueError, match=f"{name}.*non-finite"):
        trainer(tmp_path / "run", save_every=1)


def test_the_realised_task_mix_is_logged_per_step(tmp_path):
    from actionimages.model.masking import TASKS

    history = trainer(tmp_path).train(4)
    for h in history:
        counts = [h[f"tasks/{t}"] for t in TASKS]
        assert sum(counts) == 2  # batch size of the debug preset


def test_every_preset_family_suggests_the_closest_name():
    from actionimages.data.sampler import ClipConfig
    from actionimages.model.config import ModelConfig

    for family, typo, want in ((TrainConfig.preset, "tiny-stat", "tiny-state"),
                               (ModelConfig.preset, "tinny", "tiny"),
                               (ClipConfig.preset, "lng", "long")):  # fmt: skip
        with pytest.raises(ValueError, match=f"did you mean '{want}'"):
            family(typo)


def test_the_codec_is_on_disk_before_any_checkpoint_and_never_refitted(tmp_path):
    from actionimages.train.trainer import training_latent_codec

    t = trainer(tmp_path / "run")
    assert (tmp_path / "run" / "latent_codec.safetensors").is_file()  # before step 1
    t.cfg  # noqa: B018
    t2 = trainer(tmp_path / "run2", save_every=1)
    t2.train(1)
    (tmp_path / "run2" / "latent_codec.safetensors").unlink()  # as if lost
    cfg = TrainConfig.preset("debug", output_dir=str(tmp_path / "run2"))
    with pytest.raises(FileNotFoundError, match="cannot be refitted"):
        training_latent_codec(cfg, TinyClips())


def test_a_corrupt_latest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, capsys):
    t = trainer(tmp_path, save_every=1)
    t.train(2)
    root = tmp_path / "checkpoints"
    (root / "step-0000002" / "model.safetensors").write_bytes(b"garbage")
    (root / ".tmp-step-0000003-999").mkdir()  # left by a killed run
    resumed = trainer(tmp_path, save_every=1)
    assert resumed.step == 1
    assert "step-0000002" in capsys.readouterr().out
    assert not (root / ".tmp-step-0000003-999").exists()
    (root / "step-0000001" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no readable checkpoint"):
        trainer(tmp_path, save_every=1)
