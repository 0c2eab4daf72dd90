"""The Wan subclass: identical to upstream Wan at init, loads diffusers weights, validates input."""

from __future__ import annotations

import pytest
import torch
from diffusers import WanTransformer3DModel

from actionimages.model.config import PRESETS, ModelConfig
from actionimages.model.transformer import ActionImagesWanTransformer

CFG = ModelConfig.preset("debug")


def inputs(frames=6, seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, CFG.in_channels, frames, 8, 8, generator=g)
    tokens = frames * 4 * 4
    t = torch.rand(batch, tokens, generator=g) * 1000
    t[:, :16] = 0.0  # a visible first frame
    ctx = torch.randn(batch, CFG.text_length, CFG.text_dim, generator=g)
    cam = torch.randn(batch, frames, CFG.camera_channels, 8, 8, generator=g)
    return x, t, ctx, cam


@pytest.mark.parametrize("encoder", ["token", "frame_pooled"])
def test_initial_camera_branch_equals_upstream_wan_exactly(encoder):
    torch.manual_seed(0)
    cfg = CFG.replace(camera_encoder=encoder, camera_pool=(4, 4, 4))
    upstream = WanTransformer3DModel(**cfg.wan_kwargs()).eval()
    ours = ActionImagesWanTransformer.from_model_config(cfg).eval()
    missing, unexpected = ours.load_state_dict(upstream.state_dict(), strict=False)
    assert not unexpected and all(".cam_encoder." in k or ".projector." in k for k in missing)
    x, t, ctx, cam = inputs()
    with torch.no_grad():
        for timestep in (t, t[:, -1]):  # per-token (B, L) and per-sample (B,)
            ref = upstream(x, timestep, ctx, return_dict=False)[0]
            assert torch.equal(ours(x, timestep, ctx, camera=cam), ref)
            assert torch.equal(ours(x, timestep, ctx, camera=None), ref)


def test_trained_camera_branch_changes_output_and_gets_gradients():
    torch.manual_seed(0)
    model = ActionImagesWanTransformer.from_model_config(CFG)
    x, t, ctx, cam = inputs()
    out = model(x, t, ctx, camera=cam)
    out.square().mean().backward()
    assert model.blocks[0].cam_encoder.proj.weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.blocks[0].cam_encoder.proj.weight.normal_()
        assert not torch.allclose(model(x, t, ctx, camera=cam), model(x, t, ctx, camera=None))
    assert not model.camera_state_is_initial()


def test_per_token_timesteps_matter():
    torch.manual_seed(0)
    model = ActionImagesWanTransformer.from_model_config(CFG).eval()
    x, t, ctx, cam = inputs()
    t2 = t.clone()
    t2[:, -16:] = 0.0  # change only the last frame's timesteps
    with torch.no_grad():
        a, b = model(x, t, ctx, camera=cam), model(x, t2, ctx, camera=cam)
    assert not torch.allclose(a, b)


def test_from_wan_pretrained_loads_a_saved_upstream_model(tmp_path):
    torch.manual_seed(0)
    upstream = WanTransformer3DModel(**CFG.wan_kwargs())
    upstream.save_pretrained(tmp_path / "transformer")
    model = ActionImagesWanTransformer.from_wan_pretrained(tmp_path)  # pipeline folder layout
    assert model.config.num_layers == CFG.num_layers and len(model.blocks) == CFG.num_layers
    assert model.camera_state_is_initial()  # real zeros / identity, nothing left on meta
    assert all(p.device.type == "cpu" for p in model.parameters())
    reloaded = WanTransformer3DModel.from_pretrained(tmp_path / "transformer").eval()
    x, t, ctx, cam = inputs()
    with torch.no_grad():
        assert torch.equal(
            model.eval()(x, t, ctx, camera=cam), reloaded(x, t, ctx, return_dict=False)[0]
        )
    # and our own save_pretrained / from_pretrained round trip keeps the camera modules
    model.save_pretrained(tmp_path / "ours")
    again = ActionImagesWanTransformer.from_pretrained(tmp_path / "ours")
    assert again.config.camera_encoder == "token" and again.camera_state_is_initial()


def test_missing_weights_folder_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config.json.*safetensors"):
        ActionImagesWanTransformer.from_wan_pretrained(tmp_path)


def test_bad_shapes_raise_value_error():
    model = ActionImagesWanTransformer.from_model_config(CFG)
    x, t, ctx, cam = inputs()
    with pytest.raises(ValueError, match="hidden_states"):
        model(x[:, :3], t, ctx)
    with pytest.raises(ValueError, match="per-token timestep"):
        model(x, t[:, :5], ctx)
    with pytest.raises(ValueError, match="camera map"):
        model(x, t, ctx, camera=cam[:, :3])


def test_named_configs_have_real_wan_sizes():
    five = PRESETS["wan2.2-ti2v-5b"]
    assert (five.inner_dim, five.num_layers, five.ffn_dim, five.in_channels) == (
        3072,
        30,
        14336,
        48,
    )
    i2v = PRESETS["wan2.1-i2v-14b"]
    assert (i2v.inner_dim, i2v.num_layers, i2v.ffn_dim, i2v.in_channels, i2v.out_channels) == (
        5120,
        40,
        13824,
        36,
        16,
    )
    assert i2v.image_dim == 1280 and i2v.added_kv_proj_dim == 5120
    with torch.device("meta"):  # builds at full size without memory
        m = ActionImagesWanTransformer.from_model_config(five)
    n = sum(
        p.numel()
        for n_, p in m.named_parameters()
        if ".cam_encoder." not in n_ and ".projector." not in n_
    )
    assert 4.9e9 < n < 5.1e9, n


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = ActionImagesWanTransformer.from_model_config(CFG)
    with torch.no_grad():
        for block in model.blocks:  # make the camera branch non-trivial
            block.cam_encoder.proj.weight.normal_(std=0.1)
    x, t, ctx, cam = inputs()
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(x, t, ctx, camera=cam).square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))
