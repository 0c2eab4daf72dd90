"""The autoregressive mode's training (issue 11 item 2): teacher forcing through the loss."""

from __future__ import annotations

import pytest
import torch

from actionimages.model.causal import chunk_of_packed_frame
from actionimages.model.masking import PREDICTED, frame_states
from tests.model.helpers import debug_wam, synthetic_batch


def _jiggled(wam):
    for p in wam.transformer.parameters():  # away from the zero-initialised output
        p.data += 0.02 * torch.randn_like(p)
    return wam


def test_teacher_forced_loss_draws_one_t_per_chunk_and_trains():
    wam = debug_wam(seed=1, chunk_frames=1)
    enc = wam.encode_batch(synthetic_batch(3))
    gen = torch.Generator().manual_seed(0)
    loss, info = wam.loss(enc, gen, (1.0, 0.0, 0.0, 0.0))
    chunk = chunk_of_packed_frame(2 * enc.num_views, enc.frames_per_clip, 1)  # (2VF,)
    sigma = info["sigma"]  # (B, 2VF): the level each frame's chunk drew
    assert sigma.shape == (3, len(chunk))
    for c in (0, 1):  # one level within a chunk, another in the next
        assert (sigma[:, chunk == c] == sigma[:, chunk == c][:, :1]).all()
    assert (sigma[:, chunk == 0][:, 0] != sigma[:, chunk == 1][:, 0]).all()
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    grads = [p.grad for p in wam.transformer.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # the bidirectional model keeps one t per sample
    _, info = debug_wam(seed=1).loss(enc, torch.Generator().manual_seed(0), (1.0, 0, 0, 0))
    assert info["sigma"].shape == (3,)


@pytest.mark.parametrize("task", [0, 1, 2, 3])
def test_a_noisy_chunk_sees_the_clean_past_and_never_the_future(task):
    """Fig. 11 through the loss's own pass, for each of the four masking tasks."""
    torch.manual_seed(0)
    wam = _jiggled(debug_wam(seed=2, chunk_frames=1)).eval()
    enc = wam.encode_batch(synthetic_batch(1))
    V2, F = 2 * enc.num_views, enc.frames_per_clip
    states = frame_states(torch.tensor([task]), enc.num_views, F)
    chunk = chunk_of_packed_frame(V2, F, 1)  # (2VF,)
    sigma = torch.where(states == PREDICTED, 0.7, 0.0).float()
    clean = enc.latents
    x_t = 0.3 * clean + 0.7 * torch.randn_like(clean)

    def run(clean_in):
        with torch.no_grad():
            return wam.teacher_forced_velocity(x_t, sigma, clean_in, states, enc, enc.context)

    base = run(clean)
    future = clean.clone()
    future[:, :, chunk == 1] += 1.0  # change the clean copy of the last chunk
    past = clean.clone()
    past[:, :, chunk == 0] += 1.0  # change the clean copy of the first chunk
    d_future, d_past = (run(future) - base).abs(), (run(past) - base).abs()
    assert d_future.max() == 0  # no chunk sees the clean copy of chunk 1: it is nobody's past
    assert d_past[:, :, chunk == 0].max() == 0  # chunk 0 sees only its own noisy tokens
    assert d_past[:, :, chunk == 1].max() > 1e-4  # chunk 1 reads the clean chunk 0


def test_autoregressive_mode_needs_per_token_timesteps():
    from actionimages.model.config import ModelConfig

    with pytest.raises(ValueError, match="per-token"):
        ModelConfig.preset("debug", chunk_frames=1, timestep_per_token=False)
    with pytest.raises(ValueError, match="chunk_frames"):
        ModelConfig.preset("debug", chunk_frames=-1)
