"""Converting the authors' release (DiffSynth key layout + per-block camera encoder/projector)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from actionimages.model.config import PRESETS
from actionimages.model.convert import (
    convert_release_state_dict,
    infer_config,
    load_release_checkpoint,
    rename_key,
)
from actionimages.model.transformer import ActionImagesWanTransformer


def release_state_dict(
    dim=32, layers=2, ffn=64, c_in=4, c_out=4, text=16, freq=32, pool=12288, device="cpu"
):
    """Keys and shapes as the release's DiffSynth WanModel (+ cam_encoder Sequential, projector) has them."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def t(*shape):
        if device == "meta":
            return torch.empty(*shape, device="meta")
        return torch.randn(*shape, generator=g) * 0.05

    sd = {
        "patch_embedding.weight": t(dim, c_in, 1, 2, 2), "patch_embedding.bias": t(dim),
        "text_embedding.0.weight": t(dim, text), "text_embedding.0.bias": t(dim),
        "text_embedding.2.weight": t(dim, dim), "text_embedding.2.bias": t(dim),
        "time_embedding.0.weight": t(dim, freq), "time_embedding.0.bias": t(dim),
        "time_embedding.2.weight": t(dim, dim), "time_embedding.2.bias": t(dim),
        "time_projection.1.weight": t(6 * dim, dim), "time_projection.1.bias": t(6 * dim),
        "head.head.weight": t(c_out * 4, dim), "head.head.bias": t(c_out * 4), "head.modulation": t(1, 2, dim),
    }  # fmt: skip
    for i in range(layers):
        b = f"blocks.{i}."
        for attn in ("self_attn", "cross_attn"):
            for p in "qkvo":
                sd[f"{b}{attn}.{p}.weight"], sd[f"{b}{attn}.{p}.bias"] = t(dim, dim), t(dim)
            sd[f"{b}{attn}.norm_q.weight"], sd[f"{b}{attn}.norm_k.weight"] = t(dim), t(dim)
        sd[f"{b}norm3.weight"], sd[f"{b}norm3.bias"] = t(dim), t(dim)
        sd[f"{b}ffn.0.weight"], sd[f"{b}ffn.0.bias"] = t(ffn, dim), t(ffn)
        sd[f"{b}ffn.2.weight"], sd[f"{b}ffn.2.bias"] = t(dim, ffn), t(dim)
        sd[f"{b}modulation"] = t(1, 6, dim)
        sd[f"{b}cam_encoder.2.weight"], sd[f"{b}cam_encoder.2.bias"] = t(dim, pool), t(dim)
        sd[f"{b}projector.weight"], sd[f"{b}projector.bias"] = t(dim, dim), t(dim)
    return sd


def test_release_checkpoint_loads_every_weight_by_name(tmp_path):
    sd = release_state_dict()
    save_file(sd, str(tmp_path / "step1000.safetensors"))
    model, cfg, report = load_release_checkpoint(tmp_path / "step1000.safetensors", head_dim=16)
    assert (
        report.mapped == len(sd) and not report.unmapped and report.camera_encoder == "frame_pooled"
    )
    assert (
        cfg.camera_encoder == "frame_pooled"
        and cfg.camera_pool == (48, 16, 16)
        and cfg.num_layers == 2
    )
    ours = model.state_dict()
    assert torch.equal(ours["blocks.1.attn1.to_q.weight"], sd["blocks.1.self_attn.q.weight"])
    assert torch.equal(ours["blocks.0.attn2.to_out.0.bias"], sd["blocks.0.cross_attn.o.bias"])
    assert torch.equal(
        ours["blocks.0.norm2.weight"], sd["blocks.0.norm3.weight"]
    )  # cross-attn norm
    assert torch.equal(ours["blocks.1.scale_shift_table"], sd["blocks.1.modulation"])
    assert torch.equal(
        ours["blocks.0.cam_encoder.layers.2.weight"], sd["blocks.0.cam_encoder.2.weight"]
    )
    assert torch.equal(ours["blocks.0.projector.weight"], sd["blocks.0.projector.weight"])
    assert torch.equal(ours["scale_shift_table"], sd["head.modulation"])
    # it runs: 2 latent frames of 8 x 8 latents, camera latents of 96 channels like the release's
    x, cam = torch.randn(1, 4, 2, 8, 8), torch.randn(1, 2, 96, 8, 8)
    out = model(x, torch.tensor([500.0]), torch.randn(1, 8, 16), camera=cam)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_release_5b_layout_covers_the_full_size_model():
    """Key names and shapes of a full Wan2.2-TI2V-5B release (on meta: no memory)."""
    five = PRESETS["wan2.2-ti2v-5b"]
    sd = release_state_dict(
        dim=3072, layers=30, ffn=14336, c_in=48, c_out=48, text=4096, freq=256, device="meta"
    )
    converted, report = convert_release_state_dict(sd)
    assert report.mapped == len(sd)
    cfg = infer_config(sd)
    assert (cfg.inner_dim, cfg.num_layers, cfg.ffn_dim, cfg.in_channels) == (
        five.inner_dim,
        30,
        14336,
        48,
    )
    with torch.device("meta"):
        model = ActionImagesWanTransformer.from_model_config(cfg)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == want


def test_unknown_keys_are_reported_not_guessed():
    assert rename_key("blocks.3.self_attn.q.weight") == "blocks.3.attn1.to_q.weight"
    assert rename_key("blocks.3.lora_A.weight") is None
    sd = release_state_dict(layers=1, pool=64)
    sd["optimizer_step"] = torch.zeros(1)
    with pytest.raises(ValueError, match="no counterpart"):
        convert_release_state_dict(sd)
    _, report = convert_release_state_dict(sd, strict=False)
    assert report.unmapped == ["optimizer_step"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="safetensors"):
        load_release_checkpoint(tmp_path / "nope.ckpt")


def test_a_downloaded_release_folder_with_checkpoint_ckpt_loads_memory_mapped(
    tmp_path, monkeypatch
):
    """The release ships ``checkpoint.ckpt`` (a Lightning-style dict), not safetensors."""
    sd = release_state_dict()
    folder = tmp_path / "ActionImages-5B"
    folder.mkdir()
    torch.save({"state_dict": sd, "global_step": 1000}, folder / "checkpoint.ckpt")
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model, cfg, report = load_release_checkpoint(folder, head_dim=16)
    assert report.mapped == len(sd) and cfg.num_layers == 2
    assert calls and all(c.get("mmap") and c.get("weights_only") for c in calls)
    ours = model.state_dict()
    assert torch.equal(ours["blocks.1.attn1.to_q.weight"], sd["blocks.1.self_attn.q.weight"])
