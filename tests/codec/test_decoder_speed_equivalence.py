"""The fast triangulating decoder reads the images without building heatmap planes
(issue 12 item 16): it must find exactly the peaks the planes would give."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionimages.codec import decoder, heatmaps, peaks
from actionimages.codec.decoder import decode_action_images
from actionimages.codec.encoder import BLUE_LEVEL, encode_action_images
from actionimages.codec.peaks import fit_gaussian_peak, lower_median

from .helpers import random_trajectory, ring_cameras


def scene(size, T=6, noise=0.05, gripper=None, seed=0):
    """(V=2, T, H, W, 3) float32 action images (noisy, clipped) and their cameras."""
    H, W = (size, size) if isinstance(size, int) else size
    cams = ring_cameras(2, (H, W), seed=seed)
    pos, rot, g = random_trajectory(T, seed)
    if gripper is not None:
        g = np.full(T, float(gripper))
    imgs = encode_action_images(pos, rot, g, cams)
    rng = np.random.default_rng(seed)
    imgs = imgs + rng.normal(0, noise, imgs.shape).astype(np.float32) if noise else imgs
    return np.clip(imgs, 0, 1).astype(np.float32), cams


def reference_peaks(images, sigma, present=None):
    """The heatmap planes written out (clamped float32, blue cut at median + 3 MAD) and
    ``fit_gaussian_peak`` on them, with torch's own medians: uv (N, 2), found, peak."""
    imgs = torch.as_tensor(images)
    V, T, H, W, _ = imgs.shape
    planes = imgs.float().permute(0, 1, 4, 2, 3).clamp(0, 1).contiguous()  # (V, T, 3, H, W)
    blue = planes[:, :, 2]
    sub = blue[:, :, ::4, ::4].flatten(2)
    level = sub.median(-1).values
    mad = (sub - level[..., None]).abs().median(-1).values
    cut = torch.maximum(torch.full_like(level, BLUE_LEVEL + 1e-3), level + 3 * (1.4826 * mad))
    blue.masked_fill_(blue <= cut[..., None, None], 0.0)
    if present is not None:
        planes *= torch.as_tensor(present)[:, :, None, None, None]
    floor = torch.tensor([0.02, 0.02, BLUE_LEVEL + 1e-3], dtype=torch.float64)
    min_peak = torch.tensor([0.03, 0.03, BLUE_LEVEL + 1e-3 + 0.01], dtype=torch.float64)
    return fit_gaussian_peak(
        planes.reshape(-1, H, W),
        sigma * min(H, W),
        floor.expand(V, T, 3).reshape(-1),
        min_peak.expand(V, T, 3).reshape(-1),
    )


def decoder_peaks(monkeypatch, images, cams, **kw):
    """The decoder's own peaks (uv, found, peak), caught on their way to triangulation."""
    caught = {}
    fit = decoder.fit_peak_window

    def spy(*args, **kwargs):
        caught["out"] = fit(*args, **kwargs)
        return caught["out"]

    monkeypatch.setattr(decoder, "fit_peak_window", spy)
    dec = decode_action_images(images, cams, **kw)
    return dec, caught["out"]


CASES = {
    "64 noisy": dict(size=64),
    "256 noisy": dict(size=256, T=3),
    "64 clean": dict(size=64, noise=0.0),
    "closed gripper": dict(size=96, gripper=0.0),
    "open gripper": dict(size=96, gripper=1.0),
    "150 x 100 (width not a multiple of 8)": dict(size=(100, 150)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_peaks_equal_the_heatmap_planes(monkeypatch, case):
    imgs, cams = scene(**CASES[case])
    _, (uv, found, peak) = decoder_peaks(monkeypatch, imgs, cams)
    uv_ref, found_ref, peak_ref = reference_peaks(imgs, 0.05)
    assert torch.equal(found, found_ref)
    assert torch.equal(peak, peak_ref)
    torch.testing.assert_close(uv[found], uv_ref[found], rtol=0, atol=1e-9)


def test_peaks_equal_the_heatmap_planes_for_overshooting_images_and_missing_views(monkeypatch):
    imgs, cams = scene(80, T=6, noise=0.1)
    imgs = imgs * 1.3 - 0.15  # values in [-0.15, 1.15]: clamped, with ties at 0 and 1
    present = np.ones((2, 6), bool)
    present[1, ::2] = False
    dec, (uv, found, peak) = decoder_peaks(monkeypatch, imgs, cams, view_mask=present)
    uv_ref, found_ref, peak_ref = reference_peaks(imgs, 0.05, present)
    assert torch.equal(found, found_ref)
    assert torch.equal(peak, peak_ref)
    torch.testing.assert_close(uv[found], uv_ref[found], rtol=0, atol=1e-9)
    # The gripper is the clamped median of the present views' blue (every 2nd pixel).
    blue = torch.from_numpy(imgs[..., 2]).clamp(0, 1)[:, :, ::2, ::2]
    for t in range(6):
        g = blue[torch.from_numpy(present[:, t]), t].flatten().median()
        assert dec.gripper[t] == pytest.approx(min(1.0, float(g) / BLUE_LEVEL), abs=1e-12)


def test_same_decode_with_torch_medians(monkeypatch):
    """Off the CPU the medians are torch's: the result must not depend on which."""
    imgs, cams = scene(128, T=4, gripper=0.0)
    fast = decode_action_images(imgs, cams)

    def torch_median(x, *, clamped=False):
        return (x.clamp(0, 1) if clamped else x).median(dim=-1).values

    for module in (decoder, heatmaps, peaks):
        if hasattr(module, "lower_median"):
            monkeypatch.setattr(module, "lower_median", torch_median)
    slow = decode_action_images(imgs, cams)
    for field in ("position", "rotation", "gripper", "confidence", "visible"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lower_median_is_torchs_median(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 1001, generator=g, dtype=dtype) * 0.3 + 0.2
    assert torch.equal(lower_median(x), x.median(-1).values)
    assert torch.equal(lower_median(x[:, :1000]), x[:, :1000].median(-1).values)  # even n
    # Clamped: many repeated 0s and 1s (replaced before selecting), and the input unchanged.
    before = x.clone()
    for shift in (-0.4, 0.0, 0.9):
        assert torch.equal(lower_median(x + shift, clamped=True), (x + shift).clamp(0, 1).median(-1).values)  # fmt: skip
    assert torch.equal(x, before)


@pytest.mark.parametrize("width", [7, 64, 150, 256])
def test_row_maxima(width):
    x = torch.rand(2, 3, 5, width, 3, generator=torch.Generator().manual_seed(width))
    assert torch.equal(heatmaps.row_maxima(x), x.amax(3).permute(0, 1, 3, 2))


def test_plateau_is_found_at_its_centroid():
    heat = torch.zeros(2, 64, 64)
    heat[0, 20:60, 30:64] = 0.7  # wider than the window (sigma 4 px: +-6 px)
    uv, found, peak = fit_gaussian_peak(heat, 4.0)
    assert found.tolist() == [True, False]  # the empty heatmap has nothing to find
    # Argmax (20, 30), window rows 14..26 and columns 24..36: the plateau part is rows
    # 20..26 and columns 30..36, whose centre is pixel (23, 33), at (33.5, 23.5).
    assert uv[0].tolist() == pytest.approx([33.5, 23.5])
    assert float(peak[0]) == pytest.approx(0.7)


def test_decoding_leaves_the_images_alone():
    imgs, cams = scene(64, T=3, noise=0.2)
    imgs = imgs * 1.2 - 0.1
    before = imgs.copy()
    decode_action_images(imgs, cams)
    np.testing.assert_array_equal(imgs, before)
    t = torch.from_numpy(imgs)
    decode_action_images(t, cams)
    np.testing.assert_array_equal(t.numpy(), before)


def test_noise_is_skipped_only_where_it_changes_nothing():
    g = torch.Generator().manual_seed(1)
    N, H, W = 240, 48, 48
    level = torch.tensor([0.0, 0.1, 0.3])[torch.arange(N) % 3]
    sigma = torch.tensor([0.01, 0.05, 0.2, 0.4])[torch.arange(N) // 3 % 4]
    amp = torch.rand(N, generator=g) ** 3  # many faint blobs
    yy, xx = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    cy, cx = torch.rand(2, N, 1, 1, generator=g) * 64 - 8  # some just off the image
    blob = amp[:, None, None] * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 3.0**2))
    heat = level[:, None, None] + sigma[:, None, None] * torch.randn(N, H, W, generator=g) + blob
    heat = heat.clamp(0, 1)
    peak, flat_idx = heat.reshape(N, -1).max(-1)
    full = peaks.estimate_noise(heat)
    fast = peaks.noise_for_fit(heat[:, ::6, ::6].reshape(N, -1).double(), peak)
    computed = fast > 0
    assert 0 < int(computed.sum()) < N  # both branches ran
    assert torch.equal(fast[computed], full[computed])

    def fit(noise):
        def sample(rows, cols):
            return heat[torch.arange(N)[:, None, None], rows[:, :, None], cols[:, None, :]]

        i0, j0 = flat_idx // W, flat_idx % W
        return peaks.fit_peak_window(sample, (H, W), i0, j0, peak, noise, 3.0)

    (uv_a, found_a, _), (uv_b, found_b, _) = fit(full), fit(fast)
    assert torch.equal(found_a, found_b)
    assert torch.equal(uv_a, uv_b)
