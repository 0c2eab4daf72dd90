"""Locating heatmap peaks: the paper's centroid (Eq. 8) and a sub-pixel Gaussian fit.

All functions take a batch of heatmaps ``(N, H, W)`` and return pixel coordinates
``(N, 2)`` as (u, v) with the SPEC convention (pixel centres at j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math

import torch


def centroid(heat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted centroid of each heatmap (paper Eq. 8).

    A Gaussian cut by the image border has its centroid pulled inwards (the missing
    tail is not there to balance it); the paper's decoder does not correct this, and
    neither does this faithful version. ``fit_gaussian_peak`` does.

    Returns:
        uv: (N, 2); mass: (N,) the heatmap's sum (0 means nothing to locate).
    """
    _N, H, W = heat.shape
    col = heat.sum(1, dtype=torch.float64)  # (N, W) column marginal
    row = heat.sum(2, dtype=torch.float64)  # (N, H) row marginal
    mass = col.sum(-1)
    xs = torch.arange(W, dtype=torch.float64, device=heat.device) + 0.5
    ys = torch.arange(H, dtype=torch.float64, device=heat.device) + 0.5
    safe = mass.clamp_min(1e-12)
    u = (col * xs).sum(-1) / safe
    v = (row * ys).sum(-1) / safe
    return torch.stack([u, v], dim=-1), mass


def estimate_noise(heat: torch.Tensor, stride: int = 6) -> torch.Tensor:
    """Robust per-heatmap noise level (N,): 1.4826 x the median absolute deviation.

    A heatmap is mostly flat background, so the MAD over (a strided subsample of) its
    pixels measures the noise, unaffected by the blob itself.
    """
    sub = heat[:, ::stride, ::stride].reshape(heat.shape[0], -1).to(torch.float64)
    med = sub.median(dim=-1, keepdim=True).values
    return 1.4826 * (sub - med).abs().median(dim=-1).values


def fit_gaussian_peak(
    heat: torch.Tensor,
    sigma_px: float,
    floor: torch.Tensor | float = 0.02,
    min_peak: torch.Tensor | float = 0.03,
    relative_floor: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sub-pixel centre of an isotropic Gaussian blob in each heatmap.

    Around the brightest pixel, ``log z = a (x^2 + y^2) + b x + c y + d`` is fitted by
    weighted least squares (weights z^2, which undo the log's amplification of noise
    in dim pixels). The centre is (-b / 2a, -c / 2a). The fit is exact for a clean
    Gaussian of any width, including one cut by the image border (only a tail may be
    inside), and it tolerates blur (which only widens the blob).

    Thresholds adapt to the noise: pixels count only above max(floor, 4 noise,
    relative_floor * peak), and a blob needs a peak above max(min_peak, 8 noise).

    Args:
        heat: (N, H, W) heatmaps with values in about [0, 1].
        sigma_px: expected Gaussian sigma in pixels (sets the fitting window).
        floor: absolute pixel floor, scalar or (N,).
        min_peak: absolute minimum peak for a visible blob, scalar or (N,).
        relative_floor: pixels below this fraction of the peak are left out.

    Returns:
        uv: (N, 2) centres (the argmax pixel centre where the fit failed).
        found: (N,) bool, True where a peak was visible and the fit is trustworthy.
        peak: (N,) the maximum value.
    """
    N, H, W = heat.shape
    dtype, device = torch.float64, heat.device  # the fit is done in float64
    peak, flat_idx = heat.reshape(N, -1).max(dim=-1)
    peak = peak.to(dtype)
    i0, j0 = flat_idx // W, flat_idx % W

    # 1. A fixed-size window around the argmax (clamped inside the image): (N, wh, ww).
    r = max(2, math.ceil(1.5 * sigma_px))
    wh, ww = min(2 * r + 1, H), min(2 * r + 1, W)
    top = (i0 - r).clamp(0, H - wh)
    left = (j0 - r).clamp(0, W - ww)
    rows = top[:, None] + torch.arange(wh, device=device)  # (N, wh)
    cols = left[:, None] + torch.arange(ww, device=device)  # (N, ww)
    index = rows[:, :, None] * W + cols[:, None, :]  # (N, wh, ww) flat pixel indices
    z = torch.gather(heat.reshape(N, -1), 1, index.reshape(N, -1)).to(dtype)  # (N, wh*ww)

    # 2. Coordinates relative to the argmax pixel centre, scaled for conditioning.
    scale = max(sigma_px, 1.0)
    x = ((cols[:, None, :] - j0[:, None, None]).expand(N, wh, ww).reshape(N, -1)).to(dtype) / scale
    y = ((rows[:, :, None] - i0[:, None, None]).expand(N, wh, ww).reshape(N, -1)).to(dtype) / scale
    noise = estimate_noise(heat)  # (N,)
    floor_t = torch.maximum(torch.as_tensor(floor, dtype=dtype, device=device), 4 * noise)
    floor_t = torch.maximum(floor_t, relative_floor * peak)[:, None]  # (N, 1)
    min_peak_t = torch.maximum(torch.as_tensor(min_peak, dtype=dtype, device=device), 8 * noise)
    use = z > floor_t
    w = torch.where(use, z * z, torch.zeros_like(z))
    logz = torch.log(torch.where(use, z, torch.ones_like(z)))

    # 3. Weighted normal equations for (a, b, c, d): (N, 4, 4) @ theta = (N, 4).
    F = torch.stack([x * x + y * y, x, y, torch.ones_like(x)], dim=-1)  # (N, P, 4)
    M = torch.einsum("npi,np,npj->nij", F, w, F)
    rhs = torch.einsum("npi,np,np->ni", F, w, logz)
    n_used = use.sum(-1)
    tr = M.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-300)
    ok = (n_used >= 5) & (peak >= min_peak_t)
    ok = ok & (torch.linalg.eigvalsh(M / tr[:, None, None])[:, 0] > 1e-12)
    M = torch.where(ok[:, None, None], M, torch.eye(4, dtype=dtype, device=device))
    theta = torch.linalg.solve(M, torch.where(ok[:, None], rhs, torch.zeros_like(rhs)))
    a, b, c = theta[:, 0], theta[:, 1], theta[:, 2]
    ok = ok & (a < 0)
    safe_a = torch.where(ok, a, -torch.ones_like(a))
    du, dv = -b / (2 * safe_a), -c / (2 * safe_a)
    # A centre far outside the window means the fit extrapolated from a sliver: reject.
    ok = ok & (du.abs() <= (ww + 1) / scale) & (dv.abs() <= (wh + 1) / scale)
    u = j0.to(dtype) + 0.5 + torch.where(ok, du * scale, torch.zeros_like(du))
    v = i0.to(dtype) + 0.5 + torch.where(ok, dv * scale, torch.zeros_like(dv))
    return torch.stack([u, v], dim=-1), ok, peak
