"""The auxiliary blob-localisation loss: centroids, its minimum, its gradient, the model's use."""

from __future__ import annotations

import pytest
import torch

from actionimages.model.blob_loss import blob_centroid_loss, centroids, source_frames
from tests.model.helpers import debug_wam, synthetic_batch


def blob(x: float, y: float, H: int = 32, W: int = 32, sigma: float = 2.5) -> torch.Tensor:
    """(1, 3, 1, H, W) action image in [-1, 1]: one Gaussian blob at pixel (x, y) per channel."""
    yy, xx = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    g = torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return (g * 2 - 1).expand(1, 3, 1, H, W).clone()


def test_centroid_is_the_blob_centre_and_an_empty_image_has_no_mass():
    c, m = centroids(blob(10.0, 20.5))
    assert torch.allclose(c[0, :, 0], torch.tensor([10.0 / 32, 20.5 / 32]), atol=1e-3)
    assert (m > 0).all()
    _, empty = centroids(torch.full((1, 3, 1, 8, 8), -1.0))
    assert (empty == 0).all()


def test_loss_is_zero_at_the_target_grows_with_distance_and_pulls_towards_it():
    true, frames = blob(16.0, 16.0), torch.ones(1, 1, dtype=torch.bool)
    assert blob_centroid_loss(true, true, frames).item() == pytest.approx(0.0, abs=1e-10)
    losses = [blob_centroid_loss(blob(16.0 + d, 16.0), true, frames).item() for d in (2, 4, 8)]
    assert losses[0] < losses[1] < losses[2]
    assert losses[1] == pytest.approx((4 / 32) ** 2, rel=0.05)
    pred = blob(22.0, 16.0).requires_grad_(True)
    blob_centroid_loss(pred, true, frames).backward()
    with torch.no_grad():  # one gradient step moves the predicted blob towards the target
        moved = pred - 50.0 * pred.grad
    assert blob_centroid_loss(moved, true, frames) < blob_centroid_loss(pred.detach(), true, frames)
    assert blob_centroid_loss(pred, true, torch.zeros(1, 1, dtype=torch.bool)).item() == 0.0


def test_source_frames_follow_the_codec_layout():
    f = torch.tensor([[True, False, True]])
    assert source_frames(f, 4).tolist() == [[True] + [False] * 4 + [True] * 4]


def test_model_loss_adds_the_blob_term_with_a_gradient():
    wam = debug_wam()
    enc = wam.encode_batch(synthetic_batch(2))
    base, _ = wam.loss(enc, torch.Generator().manual_seed(0), (1.0, 0, 0, 0))
    loss, info = wam.loss(enc, torch.Generator().manual_seed(0), (1.0, 0, 0, 0), blob_weight=5.0)
    assert torch.isfinite(info["blob"]) and info["blob"] > 0
    assert loss.item() == pytest.approx(base.item() + 5.0 * info["blob"].item(), rel=1e-5)
    info["blob"].backward()
    grads = [p.grad for p in wam.transformer.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_blob_loss_refuses_vector_actions():
    wam = debug_wam(action_representation="vector")
    batch = synthetic_batch(2)
    T = batch["video"].shape[2]
    batch.update(position=torch.zeros(2, T, 3), rotation=torch.eye(3).expand(2, T, 3, 3),
                 gripper=torch.ones(2, T))  # fmt: skip
    enc = wam.encode_batch(batch)
    with pytest.raises(ValueError, match="vectors"):
        wam.loss(enc, torch.Generator().manual_seed(0), (1.0, 0, 0, 0), blob_weight=1.0)
