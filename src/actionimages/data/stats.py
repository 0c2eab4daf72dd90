"""Feature statistics as LeRobot keeps them: min, max, mean, std, count, q01 ... q99.

Numeric features get per-dimension statistics (shape (n,)); videos get per-channel
statistics of pixel values scaled to [0, 1], shaped (3, 1, 1) so they broadcast over
(C, H, W) images. NaN entries (an uncalibrated view) are left out; a dimension with no
finite value gets NaN statistics and count 0.

Quantiles (q01, q10, q50, q90, q99: what LeRobot's QUANTILES normalisation reads) are
exact per episode. Across episodes they are merged as LeRobot merges them, by the
count-weighted mean of the episodes' quantiles: not the quantile of the pooled data
(exact quantiles cannot be merged from summaries), but the same numbers LeRobot's own
writer would store, which is what matters for normalising alike.
"""

from __future__ import annotations

import warnings

import numpy as np

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILES)


def array_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """(N, ...) samples -> statistics over axis 0, NaN-aware."""
    x = np.asarray(values, dtype=np.float64)
    x = x.reshape(len(x), -1)  # (N, D)
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    safe = np.where(finite, x, 0.0)
    n = np.maximum(count, 1)
    mean = safe.sum(axis=0) / n
    var = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=0) / n
    lo = np.where(finite, x, np.inf).min(axis=0)
    hi = np.where(finite, x, -np.inf).max(axis=0)
    empty = count == 0
    with warnings.catch_warnings():  # an all-NaN dimension gets NaN quantiles
        warnings.simplefilter("ignore", RuntimeWarning)
        qs = np.nanquantile(x, list(QUANTILES.values()), axis=0) if len(x) else None
    out = {
        "min": np.where(empty, np.nan, lo),
        "max": np.where(empty, np.nan, hi),
        "mean": np.where(empty, np.nan, mean),
        "std": np.where(empty, np.nan, np.sqrt(var)),
        "count": np.array([int(count.max()) if count.size else 0]),
    }
    for i, name in enumerate(QUANTILES):
        out[name] = np.full(x.shape[1], np.nan) if qs is None else qs[i]
    return out


def image_stats(frames: np.ndarray, max_frames: int = 32) -> dict[str, np.ndarray]:
    """(T, H, W, 3) uint8 -> per-channel stats (3, 1, 1) of up to ``max_frames`` frames."""
    step = max(1, len(frames) // max_frames)
    sample = frames[::step, ::4, ::4].reshape(-1, 3).astype(np.float64) / 255.0  # (N, 3)
    stats = array_stats(sample)
    out = {k: v.reshape(3, 1, 1) for k, v in stats.items() if k != "count"}  # (3,) -> (3, 1, 1)
    out["count"] = np.array([len(frames[::step])])
    return out


def aggregate_stats(
    parts: list[dict[str, dict[str, np.ndarray]]],
) -> dict[str, dict[str, np.ndarray]]:
    """Merge per-episode statistics (parallel-variance formula, weighted by count)."""
    merged: dict[str, dict[str, np.ndarray]] = {}
    for key in parts[0] if parts else []:
        items = [p[key] for p in parts if key in p]
        counts = np.array([float(s["count"][0]) for s in items])
        total = counts.sum()
        means = np.stack([np.nan_to_num(s["mean"]) for s in items])  # (P, ...)
        stds = np.stack([np.nan_to_num(s["std"]) for s in items])
        w = (counts / max(total, 1.0)).reshape(-1, *[1] * (means.ndim - 1))  # (P, 1, ...)
        mean = (w * means).sum(axis=0)
        var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
        with warnings.catch_warnings():  # an all-NaN dimension (uncalibrated view) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanmin(np.stack([s["min"] for s in items]), axis=0)
            hi = np.nanmax(np.stack([s["max"] for s in items]), axis=0)
        merged[key] = {
            "min": lo if total else items[0]["min"],
            "max": hi if total else items[0]["max"],
            "mean": mean if total else items[0]["mean"],
            "std": np.sqrt(var) if total else items[0]["std"],
            "count": np.array([int(total)]),
        }
        for q in QUANTILES:  # LeRobot's rule: count-weighted mean (see the module docstring)
            if all(q in s for s in items):
                qv = np.stack([np.nan_to_num(s[q]) for s in items])  # (P, ...)
                merged[key][q] = (w * qv).sum(axis=0) if total else items[0][q]
    return merged


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


def stats_from_json(d: dict) -> dict[str, dict[str, np.ndarray]]:
    return {k: {s: np.asarray(v, dtype=np.float64) for s, v in v_.items()} for k, v_ in d.items()}
