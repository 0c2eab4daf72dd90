"""Image, action and point-tracking metrics for the paper's Tables 4-6.

Usage::

    from actionimages.eval.metrics import psnr, ssim, tapvid_metrics

    psnr(pred_video, true_video)            # (T, H, W, 3) in [0, 1] or uint8 -> float (dB)
    ssim(pred_video, true_video, reduction="none")  # -> tensor (T,), one value per frame
    action_errors_3d(p_pos, t_pos, p_rot, t_rot)    # -> {"pos_mean_m": ..., "rot_mean_deg": ...}
    tapvid_metrics(pred_xy, pred_occ, gt_xy, gt_occ, image_size=(H, W))
    # -> {"occlusion_accuracy", "pts_within_{1,2,4,8,16}", "jaccard_{1,2,4,8,16}",
    #     "average_pts_within_thresh", "average_jaccard"}

Images and videos are channels-last ``(..., H, W, 3)``: every leading index is one frame.
Float inputs are taken as they are (``data_range`` says their span); uint8 inputs are
divided by 255, so their ``data_range`` stays 1.0. NumPy arrays and torch tensors both work.

PSNR and SSIM are computed per frame and then averaged (the usual video convention, not
the PSNR of the whole clip's MSE). SSIM is Wang et al. (2004): 11x11 Gaussian window,
sigma 1.5, K1 = 0.01, K2 = 0.03, per channel, over the "valid" region only (no padding,
as in the authors' reference code), so frames must be at least 11x11.

TAP-Vid metrics follow Doersch et al. (2022): track coordinates are ``(x, y)`` pixels and
are rescaled to a 256x256 frame before the 1/2/4/8/16 px thresholds are applied; a point is
"within" a threshold when its distance is strictly below it. Metrics are computed per video
and averaged over videos. Pass ``evaluate_mask`` (e.g. from :func:`tapvid_query_mask`) for
TAP-Vid's "query first" protocol, which scores only the frames after each query frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from actionimages._arrays import as_tensor

TAPVID_THRESHOLDS = (1, 2, 4, 8, 16)
TAPVID_RESOLUTION = 256
_SSIM_WINDOW, _SSIM_SIGMA, _SSIM_K1, _SSIM_K2 = 11, 1.5, 0.01, 0.03


def _frames(x: Any, name: str, data_range: float) -> torch.Tensor:
    """Any ``(..., H, W, 3)`` image array -> float tensor, uint8 scaled to [0, 1]."""
    t = as_tensor(x)
    if t.ndim < 3 or t.shape[-1] != 3:
        raise ValueError(
            f"{name} must be channels-last images of shape (..., H, W, 3), got {tuple(t.shape)}"
        )
    if t.dtype == torch.uint8:
        if data_range != 1.0:
            raise ValueError(
                f"{name} is uint8, which is mapped to [0, 1]: leave data_range at 1.0 "
                f"(got {data_range})"
            )
        return t.float() / 255.0
    if not t.is_floating_point():
        raise ValueError(f"{name} must be float or uint8, got {t.dtype}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; clean the frames before scoring them")
    return t


def _pair(pred: Any, target: Any, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    p, t = _frames(pred, "pred", data_range), _frames(target, "target", data_range)
    if p.shape != t.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
    dtype = torch.promote_types(p.dtype, t.dtype)
    return p.to(dtype), t.to(device=p.device, dtype=dtype)


def _reduce(per_frame: torch.Tensor, lead: torch.Size, reduction: str) -> float | torch.Tensor:
    if reduction == "mean":
        return float(per_frame.mean())
    if reduction == "none":
        return per_frame.reshape(lead)
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def psnr(
    pred: Any, target: Any, data_range: float = 1.0, reduction: str = "mean"
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB of ``(..., H, W, 3)`` frames.

    Each frame's MSE is taken over its H x W x 3 values; ``reduction="mean"`` returns the
    mean over frames as a float, ``"none"`` a tensor of shape ``(...)``. Identical frames
    score ``inf`` (and so does the mean).
    """
    p, t = _pair(pred, target, data_range)
    lead = p.shape[:-3]
    mse = (p - t).square().flatten(-3).mean(dim=-1).reshape(-1)
    per_frame = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 -> +inf, by design
    return _reduce(per_frame, lead, reduction)


def _gaussian_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # The 2-D window is the outer product of this 1-D one; normalising each factor
    # normalises the product, so two separable passes equal one 11x11 filter.
    r = torch.arange(_SSIM_WINDOW, dtype=dtype, device=device) - (_SSIM_WINDOW - 1) / 2
    g = torch.exp(-(r**2) / (2 * _SSIM_SIGMA**2))
    return g / g.sum()


def _ssim_chunk(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """SSIM of frames ``(F, H, W, 3)`` -> ``(F,)``."""
    f, h, w, c = x.shape
    x = x.permute(0, 3, 1, 2).reshape(f * c, 1, h, w)
    y = y.permute(0, 3, 1, 2).reshape(f * c, 1, h, w)
    # One grouped convolution filters all five local moments of every channel at once.
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    g = _gaussian_1d(x.dtype, x.device)
    moments = F.conv2d(moments, g.view(1, 1, -1, 1).expand(5, 1, -1, 1), groups=5)
    moments = F.conv2d(moments, g.view(1, 1, 1, -1).expand(5, 1, 1, -1), groups=5)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.unbind(1)
    var_x, var_y = e_xx - mu_x * mu_x, e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    c1, c2 = (_SSIM_K1 * data_range) ** 2, (_SSIM_K2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (num / den).reshape(f, -1).mean(dim=1)


def ssim(
    pred: Any, target: Any, data_range: float = 1.0, reduction: str = "mean"
) -> float | torch.Tensor:
    """Structural similarity (Wang et al. 2004) of ``(..., H, W, 3)`` frames, H, W >= 11.

    Per frame: the SSIM map of each channel over the valid window positions, averaged over
    positions and channels. ``reduction="mean"`` averages frames into a float; ``"none"``
    returns a tensor of shape ``(...)``.
    """
    p, t = _pair(pred, target, data_range)
    h, w = p.shape[-3], p.shape[-2]
    if h < _SSIM_WINDOW or w < _SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least 11x11 pixels, got {h}x{w}")
    lead = p.shape[:-3]
    p, t = p.reshape(-1, h, w, 3), t.reshape(-1, h, w, 3)
    # Chunks of frames bound the memory of the five filtered moment maps (~256 MB).
    step = max(1, (1 << 25) // (5 * 3 * h * w))
    per_frame = torch.cat(
        [_ssim_chunk(p[i : i + step], t[i : i + step], data_range) for i in range(0, len(p), step)]
    )
    return _reduce(per_frame, lead, reduction)


def _finite_tensor(x: Any, name: str, last: tuple[int, ...]) -> torch.Tensor:
    t = as_tensor(x, dtype=torch.float64)
    if t.ndim < len(last) or tuple(t.shape[t.ndim - len(last) :]) != last:
        dims = ", ".join(map(str, last))
        raise ValueError(f"{name} must have shape (..., {dims}), got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; drop or mask those samples first")
    return t


def action_errors_2d(pred_points_px: Any, true_points_px: Any, visible: Any = None) -> float:
    """Mean pixel distance between ``(..., 2)`` predicted and true image points.

    ``visible`` (``(...)`` bool) restricts the mean to points visible in the true image.
    """
    p = _finite_tensor(pred_points_px, "pred_points_px", (2,))
    t = _finite_tensor(true_points_px, "true_points_px", (2,))
    if p.shape != t.shape:
        raise ValueError(f"point shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
    dist = (p - t).norm(dim=-1)
    if visible is not None:
        mask = as_tensor(visible).bool()
        if mask.shape != dist.shape:
            raise ValueError(
                f"visible must have shape {tuple(dist.shape)}, got {tuple(mask.shape)}"
            )
        dist = dist[mask]
    if dist.numel() == 0:
        raise ValueError("no (visible) points to score: pass at least one visible point")
    return float(dist.mean())


def action_errors_3d(
    pred_pos: Any, true_pos: Any, pred_rot: Any = None, true_rot: Any = None
) -> dict[str, float]:
    """Position errors of ``(..., 3)`` metres and, optionally, rotation errors.

    Rotations are matrices ``(..., 3, 3)`` (the package's convention). Returns
    ``{"pos_mean_m", "pos_median_m"}`` plus ``{"rot_mean_deg", "rot_median_deg"}`` (the
    geodesic angle of R_pred^T R_true) when both rotations are given.
    """
    from actionimages.geometry.rotations import geodesic_angle

    p = _finite_tensor(pred_pos, "pred_pos", (3,))
    t = _finite_tensor(true_pos, "true_pos", (3,))
    if p.shape != t.shape or p.numel() == 0:
        raise ValueError(f"positions must be non-empty and equal in shape: {p.shape} vs {t.shape}")
    dist = (p - t).norm(dim=-1).flatten()
    out = {"pos_mean_m": float(dist.mean()), "pos_median_m": float(dist.quantile(0.5))}
    if (pred_rot is None) != (true_rot is None):
        raise ValueError("pass both pred_rot and true_rot, or neither")
    if pred_rot is not None:
        rp = _finite_tensor(pred_rot, "pred_rot", (3, 3))
        rt = _finite_tensor(true_rot, "true_rot", (3, 3))
        if rp.shape != rt.shape or rp.shape[:-2] != p.shape[:-1]:
            raise ValueError(
                f"rotations must be (..., 3, 3) matching positions {tuple(p.shape[:-1])}, "
                f"got {tuple(rp.shape)} and {tuple(rt.shape)}"
            )
        ang = torch.rad2deg(geodesic_angle(rp, rt)).flatten()
        out["rot_mean_deg"] = float(ang.mean())
        out["rot_median_deg"] = float(ang.quantile(0.5))
    return out


def tapvid_query_mask(query_frames: Any, num_frames: int, mode: str = "first") -> torch.Tensor:
    """Which frames TAP-Vid scores for each query: ``(N,)`` frame indices -> ``(N, T)`` bool.

    ``"first"``: frames strictly after the query frame (the points before it are known to
    be occluded and the query frame itself is given). ``"strided"``: every frame but the
    query frame.
    """
    q = as_tensor(query_frames).round().long()
    if q.ndim != 1 or bool(((q < 0) | (q >= num_frames)).any()):
        raise ValueError(f"query_frames must be (N,) indices in [0, {num_frames}), got {q}")
    t = torch.arange(num_frames)
    if mode == "first":
        return t[None, :] > q[:, None]
    if mode == "strided":
        return t[None, :] != q[:, None]
    raise ValueError(f"mode must be 'first' or 'strided', got {mode!r}")


def tapvid_metrics(
    pred_tracks: Any,
    pred_occluded: Any,
    gt_tracks: Any,
    gt_occluded: Any,
    image_size: tuple[int, int],
    *,
    evaluate_mask: Any = None,
    thresholds: Sequence[float] = TAPVID_THRESHOLDS,
    eval_resolution: int | None = TAPVID_RESOLUTION,
) -> dict[str, float]:
    """TAP-Vid occlusion accuracy, <delta^x (pts_within_x) and Jaccard_x.

    Args:
        pred_tracks, gt_tracks: ``(N, T, 2)`` or ``(B, N, T, 2)`` ``(x, y)`` pixels in a
            frame of ``image_size = (H, W)``. Positions where the track is occluded may be
            NaN (they never count as "within").
        pred_occluded, gt_occluded: ``(N, T)`` or ``(B, N, T)`` bool.
        evaluate_mask: optional ``(N, T)`` / ``(B, N, T)`` bool, the entries to score.
        eval_resolution: the square frame size tracks are rescaled to (256 in TAP-Vid);
            None keeps pixels as they are.

    With V = gt visible, P = predicted visible, W = within d px (all within the mask):
    ``pts_within_d = |V & W| / |V|`` and ``jaccard_d = TP / (TP + FP + FN)`` where
    TP = V & P & W, FN = V & not (P & W), FP = P & (not V or not W). A video with no
    gt-visible evaluated point gives NaN for those metrics, as in TAP-Vid.
    """
    pt = as_tensor(pred_tracks, dtype=torch.float64)
    gt = as_tensor(gt_tracks, dtype=torch.float64)
    if gt.ndim not in (3, 4) or gt.shape[-1] != 2 or pt.shape != gt.shape:
        raise ValueError(
            "tracks must be (N, T, 2) or (B, N, T, 2) and equal in shape, got "
            f"pred {tuple(pt.shape)} and gt {tuple(gt.shape)}"
        )
    lead = gt.shape[:-1]
    p_occ, g_occ = as_tensor(pred_occluded).bool(), as_tensor(gt_occluded).bool()
    ev = torch.ones(lead, dtype=torch.bool) if evaluate_mask is None else as_tensor(evaluate_mask)
    ev = ev.bool()
    for name, m in (("pred_occluded", p_occ), ("gt_occluded", g_occ), ("evaluate_mask", ev)):
        if m.shape != lead:
            raise ValueError(f"{name} must have shape {tuple(lead)}, got {tuple(m.shape)}")
    if gt.ndim == 3:  # a single video
        pt, gt, p_occ, g_occ, ev = pt[None], gt[None], p_occ[None], g_occ[None], ev[None]
    vis, p_vis = ~g_occ, ~p_occ
    if not bool(torch.isfinite(gt)[vis].all()) or not bool(torch.isfinite(pt)[p_vis].all()):
        raise ValueError("tracks contain NaN/inf where they are marked visible")
    if not bool(ev.flatten(1).any(dim=1).all()):
        raise ValueError("evaluate_mask selects no entry in some video: nothing to score")
    if eval_resolution is not None:
        h, w = image_size
        if h <= 0 or w <= 0:
            raise ValueError(f"image_size must be positive (H, W), got {image_size}")
        scale = torch.tensor([eval_resolution / w, eval_resolution / h], dtype=torch.float64)
        pt, gt = pt * scale, gt * scale

    def per_video(mask: torch.Tensor) -> torch.Tensor:
        return (mask & ev).flatten(1).sum(dim=1).double()

    out = {"occlusion_accuracy": per_video(p_occ == g_occ) / per_video(torch.ones_like(ev))}
    sq_dist = (pt - gt).square().sum(dim=-1)  # NaN at occluded positions compares False
    n_vis = per_video(vis)
    for d in thresholds:
        within = sq_dist < d * d
        tp = per_video(vis & p_vis & within)
        fp = per_video(p_vis & (~vis | ~within))
        fn = n_vis - tp
        out[f"pts_within_{d:g}"] = per_video(vis & within) / n_vis
        out[f"jaccard_{d:g}"] = tp / (tp + fp + fn)
    result = {k: float(v.mean()) for k, v in out.items()}
    result["average_pts_within_thresh"] = _mean(result[f"pts_within_{d:g}"] for d in thresholds)
    result["average_jaccard"] = _mean(result[f"jaccard_{d:g}"] for d in thresholds)
    return result


def _mean(values: Any) -> float:
    v = list(values)
    return math.fsum(v) / len(v)
