"""An auxiliary localisation loss on the action images the model's velocity implies.

Flow matching scores every latent value alike, and an action image is a few blobs on an
empty background: where the blob sits is a small part of the loss, and the model learns it
last (issue 15). This loss scores the position directly. From the velocity f at noise
level sigma, the clean latents it implies are

    x0 = x_t - sigma f                      (x_t = (1 - sigma) x + sigma eps,  v = eps - x)

and the patch-PCA latent codec decodes them linearly, so the action heatmaps of x0 are
differentiable in f. Each heatmap channel of each frame is reduced to the centroid of its
mass above ``threshold`` (in [0, 1] heatmap units), and the loss is the squared distance
between the predicted and the target centroids, in units of the image size:

    c(h) = sum_p p relu(h_p - thr) / sum_p relu(h_p - thr)      loss = |c(h0) - c(h)|^2

Why a centroid and not a distribution loss such as KL(q || softmax(beta h)): the
KL's minimum is not h0 = h (it wants the background at minus infinity), so it would pull
against the flow loss. The squared centroid distance is zero at h0 = h, and at high noise,
where x0 is the posterior mean, the centroid of a mean of equal-mass blobs is the mean
of their centroids: what the loss asks for is what the flow loss's x0 already is, only
scored where it matters. Only predicted action frames whose target and prediction both
have mass above the threshold count (a prediction still below it gets no gradient here).

Measured on the tiny recipe (BENCHMARKS.md, rows T3, T4, T7 and T8): it lowers the position
errors, but it costs video quality and rotation, and the policy acts worse. So it is off by
default (``TrainConfig.blob_loss_weight = 0``).
"""

from __future__ import annotations

import torch

THRESHOLD = 0.3  # above the blue channel's gripper level (0.25), so the background is empty


def predicted_clean(x_t: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x0 implied by a velocity: (B, C, N, h, w) x_t and velocity, sigma (B, 1, N, 1, 1)."""
    return x_t - sigma * velocity


def centroids(images: torch.Tensor, threshold: float = THRESHOLD):
    """(N, 3, T, H, W) images in [-1, 1] -> centroids (N, 3, T, 2) as (x, y) in [0, 1] and
    masses (N, 3, T) of each channel's heatmap above ``threshold``."""
    H, W = images.shape[-2:]
    m = ((images.float() + 1) / 2 - threshold).clamp_min(0)  # (N, 3, T, H, W)
    mass = m.sum((-2, -1))  # (N, 3, T)
    xs = (torch.arange(W, device=m.device, dtype=m.dtype) + 0.5) / W  # pixel centres
    ys = (torch.arange(H, device=m.device, dtype=m.dtype) + 0.5) / H
    cx = (m.sum(-2) * xs).sum(-1) / mass.clamp_min(1e-6)  # (N, 3, T)
    cy = (m.sum(-1) * ys).sum(-1) / mass.clamp_min(1e-6)
    return torch.stack([cx, cy], -1), mass


def blob_centroid_loss(
    pred: torch.Tensor, true: torch.Tensor, frames: torch.Tensor, threshold: float = THRESHOLD
) -> torch.Tensor:
    """Mean squared centroid distance over the scored heatmaps.

    Args:
        pred: (N, 3, T, H, W) predicted action images in [-1, 1] (not clamped).
        true: (N, 3, T, H, W) target action images in [-1, 1].
        frames: (N, T) bool, the frames to score.

    Returns:
        a scalar; 0 (still in the graph) when nothing is scored.
    """
    if (
        pred.shape != true.shape
        or pred.ndim != 5
        or tuple(frames.shape) != (pred.shape[0], pred.shape[2])
    ):
        raise ValueError(f"blob loss needs pred, true (N, 3, T, H, W) and frames (N, T), got "
                         f"{tuple(pred.shape)}, {tuple(true.shape)}, {tuple(frames.shape)}")  # fmt: skip
    c_pred, m_pred = centroids(pred, threshold)
    with torch.no_grad():
        c_true, m_true = centroids(true, threshold)
    scored = (m_true > 1e-3) & (m_pred > 1e-3) & frames[:, None, :].to(m_true.device)  # (N, 3, T)
    if not scored.any():
        return pred.sum() * 0.0
    return (c_pred - c_true).pow(2).sum(-1)[scored].mean()


def source_frames(latent_frames: torch.Tensor, temporal_factor: int) -> torch.Tensor:
    """(N, F) per-latent-frame flags -> (N, 1 + tf (F - 1)) per decoded frame.

    Latent frame 0 decodes to frame 0 alone, latent frame f >= 1 to frames
    1 + (f - 1) tf .. f tf (the codec's causal layout).
    """
    return torch.cat(
        [latent_frames[:, :1], latent_frames[:, 1:].repeat_interleave(temporal_factor, 1)], 1
    )
