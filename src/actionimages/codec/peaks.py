"""Locating heatmap peaks: the paper's centroid (Eq. 8) and a sub-pixel Gaussian fit.

All functions take a batch of heatmaps ``(N, H, W)`` and return pixel coordinates
``(N, 2)`` as (u, v) with the SPEC convention (pixel centres at j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
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


def lower_median(x: torch.Tensor, *, clamped: bool = False) -> torch.Tensor:
    """The lower median along the last dim, (..., n) -> (...): what ``torch.median`` gives.

    ``x`` must be finite (NumPy orders NaN last where torch propagates it). On the CPU,
    NumPy's selection (``np.partition``) finds the same order statistic several times
    faster than ``torch.median``, which also tracks indices: the decoder's medians were
    a sixth of its time at 256 px.

    ``clamped=True`` gives the median of ``x.clamp(0, 1)`` (the clamped median). Clamped
    noise repeats 0 and 1 many times (a noisy background at 0 is half zeros), and
    selection slows down several-fold on repeated values, so where they are common they
    are first replaced by distinct values below 0 and above 1, in order: the selected one
    is then clamped back.
    """
    n = x.shape[-1]
    k = (n - 1) // 2
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.numel() > 0:
        a = x.detach().numpy()
        if clamped and n < 2**24:  # the replacements -1 - i and 2 + i are exact
            idx = np.arange(n, dtype=a.dtype)
            for mask, distinct in ((a <= 0, -1 - idx), (a >= 1, 2 + idx)):
                # Replacing costs a third of a selection: only where values repeat often.
                if np.count_nonzero(mask) > 0.1 * a.size:
                    a = np.where(mask, distinct, a)  # a new array
        med = np.partition(a, k, axis=-1)[..., k]  # a copy: x is left as it is
        if clamped:
            med = np.clip(med, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(med))
    if clamped:
        x = x.clamp(0, 1)
    return x.median(dim=-1).values


def robust_noise(samples: torch.Tensor) -> torch.Tensor:
    """1.4826 x the median absolute deviation of each row of ``samples`` (N, n) -> (N,)."""
    med = lower_median(samples)
    return 1.4826 * lower_median((samples - med[..., None]).abs())


def noise_for_fit(
    samples: torch.Tensor,
    peak: torch.Tensor,
    floor: torch.Tensor | float = 0.02,
    min_peak: torch.Tensor | float = 0.03,
    relative_floor: float = 0.25,
) -> torch.Tensor:
    """The noise level (N,) to give ``fit_peak_window``, from float64 heatmap samples
    (N, n) with values in [0, 1] and the peaks (N,): ``robust_noise`` wherever it can
    change the fit, 0 where it cannot.

    The fit uses the noise only in max(floor, 4 noise, relative_floor * peak) and in
    peak >= max(min_peak, 8 noise). The median absolute deviation of values >= 0 is at
    most their median (half of them lie in [0, median]), so 1.4826 x the median bounds
    the noise; where that bound leaves both unchanged, the second median is skipped.
    On noisy images that is nearly every heatmap but the faintest.
    """
    dtype = torch.float64
    med = lower_median(samples, clamped=True)  # (N,)
    bound = 1.4826 * med
    peak = peak.to(dtype)
    floor_px = torch.maximum(torch.as_tensor(floor, dtype=dtype), relative_floor * peak)
    min_peak = torch.as_tensor(min_peak, dtype=dtype)
    need = (4 * bound > floor_px) | ((8 * bound > min_peak) & (8 * bound > peak))
    noise = torch.zeros_like(med)
    if bool(need.any()):
        dev = (samples[need] - med[need, None]).abs()
        noise[need] = 1.4826 * lower_median(dev)
    return noise


def estimate_noise(heat: torch.Tensor, stride: int = 6) -> torch.Tensor:
    """Robust per-heatmap noise level (N,): 1.4826 x the median absolute deviation.

    A heatmap is mostly flat background, so the MAD over (a strided subsample of) its
    pixels measures the noise, unaffected by the blob itself.
    """
    return robust_noise(heat[:, ::stride, ::stride].reshape(heat.shape[0], -1).to(torch.float64))


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
    relative_floor * peak), and a blob needs a peak above max(min_peak, 8 noise). A
    plateau (all used pixels at the peak value) is located at its centroid.

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
    peak, flat_idx = heat.reshape(N, -1).max(dim=-1)
    flat = heat.reshape(N, -1)

    def sample(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        index = rows[:, :, None] * W + cols[:, None, :]  # (N, wh, ww) flat pixel indices
        return torch.gather(flat, 1, index.reshape(N, -1)).reshape(index.shape)

    return fit_peak_window(
        sample, (H, W), flat_idx // W, flat_idx % W, peak, estimate_noise(heat), sigma_px,
        floor, min_peak, relative_floor,
    )  # fmt: skip


def fit_peak_window(
    sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    shape: tuple[int, int],
    i0: torch.Tensor,
    j0: torch.Tensor,
    peak: torch.Tensor,
    noise: torch.Tensor,
    sigma_px: float,
    floor: torch.Tensor | float = 0.02,
    min_peak: torch.Tensor | float = 0.03,
    relative_floor: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``fit_gaussian_peak`` once the brightest pixel and the noise are known.

    For callers that locate the maximum and read pixels their own way (the decoder reads
    them straight from the images, with no heatmap planes in memory).

    Args:
        sample: ``sample(rows, cols)`` with rows (N, wh) and cols (N, ww) pixel indices
            returns the heatmap values (N, wh, ww) there.
        shape: (H, W) of the heatmaps.
        i0, j0: (N,) row and column of the brightest pixel.
        peak: (N,) its value.
        noise: (N,) the noise level (see ``estimate_noise``).
        sigma_px, floor, min_peak, relative_floor: as in ``fit_gaussian_peak``.

    Returns:
        uv (N, 2), found (N,), peak (N,) as in ``fit_gaussian_peak``.
    """
    H, W = shape
    N = i0.shape[0]
    dtype, device = torch.float64, i0.device  # the fit is done in float64
    peak = peak.to(dtype)

    # 1. A fixed-size window around the argmax (clamped inside the image): (N, wh, ww).
    r = max(2, math.ceil(1.5 * sigma_px))
    wh, ww = min(2 * r + 1, H), min(2 * r + 1, W)
    top = (i0 - r).clamp(0, H - wh)
    left = (j0 - r).clamp(0, W - ww)
    rows = top[:, None] + torch.arange(wh, device=device)  # (N, wh)
    cols = left[:, None] + torch.arange(ww, device=device)  # (N, ww)
    z = sample(rows, cols).to(dtype)  # (N, wh, ww)

    # 2. Coordinates relative to the argmax pixel centre, scaled for conditioning; x
    # depends on the column only and y on the row only (the window is a grid).
    scale = max(sigma_px, 1.0)
    x = (cols - j0[:, None]).to(dtype) / scale  # (N, ww)
    y = (rows - i0[:, None]).to(dtype) / scale  # (N, wh)
    floor_t = torch.maximum(torch.as_tensor(floor, dtype=dtype, device=device), 4 * noise)
    floor_t = torch.maximum(floor_t, relative_floor * peak)[:, None, None]  # (N, 1, 1)
    min_peak_t = torch.maximum(torch.as_tensor(min_peak, dtype=dtype, device=device), 8 * noise)
    use = z > floor_t
    # Weights w = z^2 and w log z over the used pixels, written where the moments need
    # them side by side: (N, 2, wh, ww).
    both = torch.empty((N, 2, wh, ww), dtype=dtype, device=device)
    w, wlogz = both[:, 0], both[:, 1]
    torch.where(use, z, z.new_zeros(()), out=w).square_()
    torch.where(use, z, z.new_ones(()), out=wlogz).log_().mul_(w)

    # 3. Weighted normal equations for (a, b, c, d) on the features (r^2, x, y, 1),
    # r^2 = x^2 + y^2. Their sums are moments S[p, q] = sum w x^p y^q (p + q <= 4) and
    # L[p, q] = sum w log z x^p y^q (p + q <= 2); on a grid each is a product of
    # per-column and per-row powers, so two small matrix products give them all and
    # no (N, wh * ww, 4) feature tensor is built.
    xp = x[..., None] ** torch.arange(5, dtype=dtype, device=device)  # (N, ww, 5)
    yp = y[..., None] ** torch.arange(5, dtype=dtype, device=device)  # (N, wh, 5)
    Sx = both.reshape(N, 2 * wh, ww) @ xp  # sum over columns: (N, 2 wh, p)
    Sx = Sx.reshape(N, 2, wh, 5)
    mom = yp.transpose(1, 2)[:, None] @ Sx  # sum over rows: (N, 2, q, p)
    S, L = mom[:, 0].transpose(1, 2), mom[:, 1].transpose(1, 2)  # [n, p, q]
    s_r4 = S[:, 4, 0] + 2 * S[:, 2, 2] + S[:, 0, 4]
    s_r2x, s_r2y = S[:, 3, 0] + S[:, 1, 2], S[:, 2, 1] + S[:, 0, 3]
    s_r2 = S[:, 2, 0] + S[:, 0, 2]
    M = torch.stack(
        [
            torch.stack([s_r4, s_r2x, s_r2y, s_r2], -1),
            torch.stack([s_r2x, S[:, 2, 0], S[:, 1, 1], S[:, 1, 0]], -1),
            torch.stack([s_r2y, S[:, 1, 1], S[:, 0, 2], S[:, 0, 1]], -1),
            torch.stack([s_r2, S[:, 1, 0], S[:, 0, 1], S[:, 0, 0]], -1),
        ],
        dim=-2,
    )  # (N, 4, 4)
    rhs = torch.stack([L[:, 2, 0] + L[:, 0, 2], L[:, 1, 0], L[:, 0, 1], L[:, 0, 0]], -1)  # (N, 4)
    n_used = use.sum((1, 2))
    tr = M.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-300)
    ok = (n_used >= 5) & (peak >= min_peak_t)
    ok = ok & (torch.linalg.eigvalsh(M / tr[:, None, None])[:, 0] > 1e-12)
    M = torch.where(ok[:, None, None], M, torch.eye(4, dtype=dtype, device=device))
    theta = torch.linalg.solve(M, torch.where(ok[:, None], rhs, torch.zeros_like(rhs)))
    a, b, c = theta[:, 0], theta[:, 1], theta[:, 2]
    # A plateau, every used pixel at the peak value (an occluder, or saturation wider
    # than the window), has no curvature: a = b = c = 0 but for rounding, and rounding
    # alone decided whether it was found (and where: near the plateau's centroid). Its
    # centre is that centroid, sum w x / sum w with w constant.
    plateau = (n_used > 0) & ~(use & (z < peak[:, None, None])).any(dim=(1, 2))
    ok = ok & ((a < 0) | plateau)
    safe_a = torch.where(ok & ~plateau, a, -torch.ones_like(a))
    du, dv = -b / (2 * safe_a), -c / (2 * safe_a)
    s00 = S[:, 0, 0].clamp_min(1e-300)
    du = torch.where(plateau, S[:, 1, 0] / s00, du)
    dv = torch.where(plateau, S[:, 0, 1] / s00, dv)
    # A centre far outside the window means the fit extrapolated from a sliver: reject.
    ok = ok & (du.abs() <= (ww + 1) / scale) & (dv.abs() <= (wh + 1) / scale)
    u = j0.to(dtype) + 0.5 + torch.where(ok, du * scale, torch.zeros_like(du))
    v = i0.to(dtype) + 0.5 + torch.where(ok, dv * scale, torch.zeros_like(dv))
    return torch.stack([u, v], dim=-1), ok, peak
