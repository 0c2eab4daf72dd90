"""Block-causal attention and the KV cache (issue 11): the chunked pass equals recomputation."""

from __future__ import annotations

import pytest
import torch

from actionimages.model.causal import KVCache, block_causal_mask, chunk_of_tokens, chunk_tokens
from actionimages.model.transformer import tokens_of
from tests.model.helpers import debug_wam, synthetic_batch


def test_block_causal_mask_lets_a_chunk_see_itself_and_the_past_only():
    V2, F, K, n = 4, 3, 1, 2  # 4 clips of 3 latent frames, chunks of 1 frame, 2 tokens a frame
    c = chunk_of_tokens(V2, F, K, n)
    assert c.tolist() == [0, 0, 1, 1, 2, 2] * V2
    m = block_causal_mask(V2, F, K, n)
    i, j = torch.meshgrid(torch.arange(len(c)), torch.arange(len(c)), indexing="ij")
    assert torch.equal(m, c[j] <= c[i])
    assert chunk_tokens(1, V2, F, K, n).tolist() == [2, 3, 8, 9, 14, 15, 20, 21]
    # chunks of K = 2: latent frame 0 alone, then frames (1, 2), (3, 4)
    assert chunk_of_tokens(1, 5, 2, 1).tolist() == [0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="multiple"):
        chunk_of_tokens(V2, 4, 2, n)


@pytest.mark.parametrize(
    ("per_token", "camera"), [(True, "token"), (False, "token"), (True, "frame_pooled")]
)
def test_kv_cached_chunks_equal_the_masked_full_pass(per_token, camera):
    """Prefill chunk 0, then each chunk against the cache == one block-causal forward (float32)."""
    torch.manual_seed(0)
    pooled = (
        {"camera_encoder": "frame_pooled", "camera_pool": (4, 4, 4)} if camera != "token" else {}
    )
    wam = debug_wam(seed=1, **pooled)
    for p in wam.transformer.parameters():  # a trained-looking, not an initial, camera branch
        p.data += 0.02 * torch.randn_like(p)
    enc = wam.encode_batch(synthetic_batch(1))
    tr = wam.transformer.eval()
    x = torch.randn_like(enc.latents)  # (1, C, 2VF, h, w)
    Fr, V2 = enc.frames_per_clip, 2 * enc.num_views
    _, p_h, p_w = tr.config.patch_size
    n = (x.shape[-2] // p_h) * (x.shape[-1] // p_w)
    L = x.shape[2] * n
    t = torch.rand(1, L) * 1000 if per_token else torch.tensor([500.0])
    mask = block_causal_mask(V2, Fr, 1, n)
    with torch.no_grad():
        full = tokens_of(
            tr(x, t, enc.context, camera=enc.camera, attention_mask=mask), tr.config.patch_size
        )
        bidirectional = tokens_of(tr(x, t, enc.context, camera=enc.camera), tr.config.patch_size)
    cache = KVCache(len(tr.blocks))
    for c in range(Fr):
        rows = chunk_tokens(c, V2, Fr, 1, n)
        out = tr.forward_tokens(x, t, enc.context, rows, cache, camera=enc.camera)
        assert (out - full[:, rows]).abs().max() <= 1e-5, c
    assert cache.length == L
    # and the mask matters: chunk 0 of the bidirectional pass sees the future
    rows0 = chunk_tokens(0, V2, Fr, 1, n)
    assert (bidirectional[:, rows0] - full[:, rows0]).abs().max() > 1e-3


def test_the_latency_benchmark_runs_quick():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "causal.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--repeats", "1"],
                         capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    assert "| chunks already executed |" in out.stdout and out.stdout.count("x |") >= 3


def test_teacher_forcing_equals_cached_inference_on_the_clean_past():
    """One pass over [clean; noisy] with Fig. 11's mask == denoising each chunk against a
    cache of the clean earlier chunks (same rotary positions in training and inference)."""
    from actionimages.model.causal import teacher_forcing_mask

    torch.manual_seed(0)
    wam = debug_wam(seed=2)
    for p in wam.transformer.parameters():
        p.data += 0.02 * torch.randn_like(p)
    enc = wam.encode_batch(synthetic_batch(1))
    tr = wam.transformer.eval()
    clean, noisy = enc.latents, torch.randn_like(enc.latents)
    Fr, V2 = enc.frames_per_clip, 2 * enc.num_views
    _, p_h, p_w = tr.config.patch_size
    n = (clean.shape[-2] // p_h) * (clean.shape[-1] // p_w)
    L = clean.shape[2] * n
    t_clean, t_noisy = torch.zeros(1, L), torch.rand(1, L) * 1000
    both = torch.cat([clean, noisy], dim=2)
    cam = torch.cat([enc.camera, enc.camera], dim=1)
    mask = teacher_forcing_mask(V2, Fr, 1, n)
    with torch.no_grad():
        out = tr(both, torch.cat([t_clean, t_noisy], 1), enc.context, camera=cam,
                 attention_mask=mask, rotary_repeat=2)  # fmt: skip
    taught = tokens_of(out, tr.config.patch_size)[:, L:]  # the noisy copy's outputs
    cache = KVCache(len(tr.blocks))
    for c in range(Fr):
        rows = chunk_tokens(c, V2, Fr, 1, n)
        pred = tr.forward_tokens(
            noisy, t_noisy, enc.context, rows, cache, camera=enc.camera, write=False
        )
        assert (pred - taught[:, rows]).abs().max() <= 1e-5, c
        tr.forward_tokens(
            clean, t_clean, enc.context, rows, cache, camera=enc.camera
        )  # the real chunk


def test_a_sliding_window_cache_equals_the_banded_mask():
    """The context limit: a cache of the last chunk only == attention to chunks c-1 and c."""
    torch.manual_seed(0)
    wam = debug_wam(seed=3)
    enc = wam.encode_batch(synthetic_batch(1))
    tr = wam.transformer.eval()
    x = torch.randn_like(enc.latents)
    Fr, V2 = enc.frames_per_clip, 2 * enc.num_views
    _, p_h, p_w = tr.config.patch_size
    n = (x.shape[-2] // p_h) * (x.shape[-1] // p_w)
    t = torch.rand(1, x.shape[2] * n) * 1000
    with torch.no_grad():
        banded = tokens_of(tr(x, t, enc.context, camera=enc.camera,
                              attention_mask=block_causal_mask(V2, Fr, 1, n, window=1)), tr.config.patch_size)  # fmt: skip
    cache = KVCache(len(tr.blocks), window=1)
    for c in range(Fr):
        rows = chunk_tokens(c, V2, Fr, 1, n)
        out = tr.forward_tokens(x, t, enc.context, rows, cache, camera=enc.camera)
        assert (out - banded[:, rows]).abs().max() <= 1e-5, c
        assert cache.length == len(rows)  # only the newest chunk is kept
    with pytest.raises(ValueError, match="window"):
        KVCache(2, window=0)
