"""The one sampler (the pipeline) on the debug model: visible frames kept, exact flow recovered."""

from __future__ import annotations

import pytest
import torch

from actionimages.clips import ClipConfig
from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline, preview_sample
from actionimages.model.packing import unpack_clips
from actionimages.train.config import TrainConfig
from tests.model.helpers import debug_wam, synthetic_batch


def _pixels(wam, latents, V=2):
    """(B, C, F, h, w) per clip -> (B, V, T, H, W, 3) in [0, 1], as the pipeline returns them."""
    B = latents.shape[0]
    x = wam.latent_codec.decode(latents.flatten(0, 1)).unflatten(0, (B, V))  # (B, V, 3, T, H, W)
    return ((x.permute(0, 1, 3, 4, 5, 2) + 1) / 2).clamp(0, 1)


@pytest.mark.parametrize("mode", ["generate", "label"])
def test_sampler_keeps_visible_frames_and_decodes_every_clip(mode):
    wam = debug_wam()
    batch = synthetic_batch(1)
    pipe = WorldActionPipeline(wam, ClipConfig.debug().for_inference())
    out = pipe(batch, mode, SamplingConfig(steps=2, guidance=2.0))
    assert out.video.shape == out.actions.shape == (1, 2, 5, 32, 32, 3)
    clean_video, _ = unpack_clips(wam.encode_batch(batch).latents, 2)  # (B, V, C, F, h, w)
    want = _pixels(wam, clean_video)
    frames = slice(None) if mode == "label" else slice(0, 1)  # all video given, or frame 0 only
    assert torch.allclose(out.video[:, :, frames], want[:, :, frames], atol=1e-5)


def test_euler_sampler_with_the_exact_velocity_recovers_the_clean_latents():
    """With v* = (x_t - x0) / t (the true flow velocity) the sampler must land on x0."""
    wam = debug_wam()
    batch = synthetic_batch(1)
    x0 = wam.encode_batch(batch).latents

    class Oracle(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config, self.anchor = config, torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, timestep, context, camera=None):
            sigma = timestep.view(1, x.shape[2], -1)[:, :, 0] / 1000  # (B, F) per-frame noise level
            return (x - x0) / sigma.clamp_min(1e-6)[:, None, :, None, None]

    wam.transformer = Oracle(wam.transformer.config)
    pipe = WorldActionPipeline(wam, ClipConfig.debug().for_inference())
    out = pipe(batch, "generate", SamplingConfig(steps=3, shift=3.0))
    want_video, want_actions = unpack_clips(x0, 2)
    assert torch.allclose(out.video, _pixels(wam, want_video), atol=1e-4)
    assert torch.allclose(out.actions, _pixels(wam, want_actions), atol=1e-4)


def test_training_previews_are_the_pipeline_with_the_runs_settings():
    wam, batch = debug_wam(), synthetic_batch(1)
    cfg = TrainConfig.preset("debug", sample_steps=2, guidance=1.0, seed=3)
    video, actions = preview_sample(wam, batch, cfg)
    out = WorldActionPipeline(wam, cfg.clip.for_inference())(
        batch, "generate", SamplingConfig(steps=2, seed=3)
    )
    assert torch.equal(video, out.video) and torch.equal(actions, out.actions)


def test_the_pipeline_creates_its_scheduler_once():
    pipe = WorldActionPipeline(debug_wam(), ClipConfig.debug().for_inference())
    first = pipe.scheduler
    batch = synthetic_batch(1)
    pipe(batch, "generate", SamplingConfig(steps=2))
    pipe(batch, "generate", SamplingConfig(steps=3))
    assert pipe.scheduler is first and pipe.scheduler_for(SamplingConfig(steps=5)) is first
    assert pipe.scheduler_for(SamplingConfig(shift=3.0)) is not first
