"""The Wan2.1-I2V path on a tiny configuration saved as diffusers folders (issue 13 item 10).

Transformer with the CLIP image branch (image_dim, added K/V), 2 C + 4 input channels
(noisy latents, 4 mask channels, clean latents of the given frames), one timestep per
sample; a tiny AutoencoderKLWan and a tiny CLIP vision tower, each saved and loaded from
its folder. Forward, one training step and sampling must run, and the image branch must
matter (changing the first frame's CLIP tokens changes the output).
"""

from __future__ import annotations

import pytest
import torch

from tests.model.helpers import synthetic_batch

TEXT_LENGTH = 512  # diffusers' Wan attention takes the last 512 context tokens as text


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from actionimages.model.config import ModelConfig

    root = tmp_path_factory.mktemp("i2v")
    torch.manual_seed(0)
    mc = ModelConfig.preset(
        "debug", latent_codec="wan2.1-vae", temporal_factor=2, spatial_factor=2,
        camera_channels=12, in_channels=12, out_channels=4, image_dim=24, added_kv_proj_dim=32,
        image_encoder="clip", timestep_per_token=False, text_length=TEXT_LENGTH,
    )  # fmt: skip
    WanTransformer3DModel(**mc.wan_kwargs()).save_pretrained(root / "wan" / "transformer")
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True],
                     latents_mean=[0.0] * 4, latents_std=[1.0] * 4, scale_factor_temporal=2,
                     scale_factor_spatial=2).save_pretrained(root / "wan" / "vae")  # fmt: skip
    clip = CLIPVisionConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                            num_attention_heads=2, image_size=32, patch_size=16)  # fmt: skip
    CLIPVisionModel(clip).save_pretrained(root / "wan" / "image_encoder")
    return mc, root / "wan"


def build(folders):
    from actionimages.model.factory import build_world_action_model

    mc, wan = folders
    return build_world_action_model(mc, wan, wan_path=wan, image_encoder_path=wan)


def test_i2v_forward_uses_the_clip_tokens_and_one_timestep_per_sample(folders):
    wam = build(folders)
    enc = wam.encode_batch(synthetic_batch(1))
    assert enc.image_context.shape == (1, 2 * 5, 24)  # 2 views x (1 + (32/16)^2) CLIP tokens
    x, states = enc.latents, torch.zeros(1, enc.latents.shape[2], dtype=torch.long)
    states[:, 1:] = 1  # predicted
    seen = {}
    hook = wam.transformer.register_forward_pre_hook(
        lambda m, args, kw: seen.update(t=args[1].shape), with_kwargs=True
    )
    sigma = torch.full((1, x.shape[2]), 0.5)
    v = wam.velocity(torch.randn_like(x), sigma, x, states, enc)
    hook.remove()
    assert v.shape == x.shape and seen["t"] == (1,)  # Wan 2.1: (B,), not per token
    other = torch.randn_like(enc.image_context)
    v2 = wam.velocity(
        torch.zeros_like(x),
        sigma,
        x,
        states,
        enc.__class__(**{**enc.__dict__, "image_context": other}),
    )
    assert not torch.allclose(wam.velocity(torch.zeros_like(x), sigma, x, states, enc), v2)


def test_i2v_trains_one_step_and_samples(folders, tmp_path):
    from actionimages.clips import ClipConfig
    from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline
    from actionimages.train.config import TrainConfig
    from actionimages.train.trainer import Trainer
    from tests.train.test_trainer import TinyClips

    mc, wan = folders
    cfg = TrainConfig.preset("debug", model=mc, output_dir=str(tmp_path), wan_path=str(wan),
                             latent_codec_path=str(wan), image_encoder_path=str(wan))  # fmt: skip
    t = Trainer(cfg, dataset=TinyClips())
    before = {n: p.detach().clone() for n, p in t.unwrapped.named_parameters()}
    logs = t.train(1)
    assert torch.isfinite(torch.tensor(logs[0]["loss"]))
    assert any(not torch.equal(before[n], p) for n, p in t.unwrapped.named_parameters())
    pipe = WorldActionPipeline(t.wam, ClipConfig.debug().for_inference())
    out = pipe(synthetic_batch(1), "generate", SamplingConfig(steps=2, guidance=2.0))
    assert out.video.shape == out.actions.shape == (1, 2, 5, 32, 32, 3)
    assert torch.isfinite(out.video).all()


def test_i2v_without_its_clip_folder_is_a_clear_error(folders):
    from actionimages.model.factory import build_world_action_model

    mc, wan = folders
    with pytest.raises(FileNotFoundError, match="CLIP image branch"):
        build_world_action_model(mc, wan, wan_path=wan)
