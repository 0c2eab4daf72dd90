"""Chunk-by-chunk sampling of the autoregressive mode (issue 11 item 3)."""

from __future__ import annotations

import pytest
import torch

from actionimages.data.sampler import ClipConfig
from actionimages.infer.chunked import ChunkSession, sample_chunks
from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline, make_scheduler
from actionimages.model.masking import TASKS, VISIBLE, task_frame_states
from tests.model.helpers import H, W, debug_wam, synthetic_batch

FRAMES = 9  # 3 latent frames per clip: chunks 0, 1, 2 with K = 1


def _ar_wam(seed: int = 3):
    wam = debug_wam(seed=seed, chunk_frames=1)
    for p in wam.transformer.parameters():  # away from the zero-initialised output layer
        p.data += 0.05 * torch.randn_like(p)
    return wam.eval()


def _setup(wam, task="joint", seed=0):
    enc = wam.encode_batch(synthetic_batch(1, frames=FRAMES))
    states = task_frame_states(TASKS.index(task), enc.num_views, enc.frames_per_clip)[None]
    noise = torch.randn(enc.latents.shape, generator=torch.Generator().manual_seed(seed))
    held = torch.where((states == VISIBLE)[:, None, :, None, None], enc.latents, noise)
    return enc, states, held


@pytest.mark.parametrize(
    "config",
    [SamplingConfig(steps=3), SamplingConfig(steps=3, guidance=3.0),
     SamplingConfig(steps=4, cache_threshold=-1.0, cache_window=1)],
)  # fmt: skip
def test_kv_cached_sampling_equals_recomputation(config):
    """Item 3's exactness check at the sampler level: <= 1e-5 in float32, with batched
    guidance and velocity caching too."""
    wam = _ar_wam()
    enc, states, held = _setup(wam)
    empty = wam.text_encoder.encode([""]).expand_as(enc.context)
    runs = [
        sample_chunks(wam, enc, states, held, make_scheduler(config), config, empty, use_cache=c)
        for c in (True, False)
    ]
    (cached, calls_c), (full, calls_f) = runs
    assert (cached - full).abs().max() <= 1e-5
    assert calls_c == calls_f + 2  # the cache also takes one write per chunk but the last
    assert not torch.allclose(cached, held)  # something was sampled
    if config.cache_threshold is not None:
        assert calls_f < 3 * config.steps  # velocity caching skipped model calls


def test_the_real_observation_replaces_the_prediction_in_the_cache():
    """Writing real latents for chunk 1 changes chunk 2's sample, exactly as recomputing
    with those latents in the sequence does; the prompt's K/V are made once."""
    wam = _ar_wam()
    enc, states, held = _setup(wam)
    config = SamplingConfig(steps=2)
    real = enc.latents + 0.5 * torch.randn_like(enc.latents)
    out = {}
    for use_cache in (True, False):
        for given in (None, real):
            s = ChunkSession.start(wam, enc, states, held, use_cache=use_cache)
            sched = make_scheduler(config)
            s.denoise(0, sched, config)
            s.write(0)
            s.denoise(1, sched, config)
            s.write(1, given)
            cross = None if s.cache is None else [k for k, _ in s.cache.cross]
            s.denoise(2, sched, config)
            if cross is not None:  # the same tensors: made at the first chunk, then reused
                assert all(a is b for a, (b, _) in zip(cross, s.cache.cross, strict=True))
            out[use_cache, given is None] = s.x[:, :, s.frames(2)]
    assert (out[True, False] - out[False, False]).abs().max() <= 1e-5
    assert (out[True, False] - out[True, True]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="cache"):
        ChunkSession.start(wam, enc, states, held).denoise(1, make_scheduler(config), config)


def test_pipeline_samples_an_autoregressive_model_in_every_mode():
    wam = _ar_wam()
    pipe = WorldActionPipeline(wam, ClipConfig(num_frames=FRAMES, height=H, width=W))
    batch = synthetic_batch(1, frames=FRAMES)
    for mode in ("generate", "a2v", "label", "video"):
        out = pipe(batch, mode, SamplingConfig(steps=2))
        assert out.video.shape == (1, 2, FRAMES, H, W, 3) and torch.isfinite(out.video).all()
    one = pipe(batch, "generate", SamplingConfig(steps=1))  # Flash: one step per chunk
    assert one.model_calls == 3 + 2  # 3 chunks, one step each, 2 writes
    with pytest.raises(ValueError, match="batched_cfg"):
        pipe(batch, "generate", SamplingConfig(steps=1, guidance=2.0, batched_cfg=False))
