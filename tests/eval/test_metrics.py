"""PSNR/SSIM, action errors and TAP-Vid metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from actionimages.eval.metrics import (
    action_errors_2d,
    action_errors_3d,
    psnr,
    ssim,
    tapvid_metrics,
    tapvid_query_mask,
)


def test_psnr_of_known_mse():
    target = np.full((2, 8, 8, 3), 0.5)
    pred = target.copy()
    pred[0] += 0.1  # MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    pred[1] -= 0.01  # MSE 1e-4 -> 40 dB
    per_frame = psnr(pred, target, reduction="none")
    assert per_frame.shape == (2,)
    assert per_frame.tolist() == pytest.approx([20.0, 40.0], abs=1e-9)
    assert psnr(pred, target) == pytest.approx(30.0, abs=1e-9)
    # data_range 2 multiplies the peak by 2: +20 log10(2) dB
    assert psnr(pred[:1], target[:1], data_range=2.0) == pytest.approx(20 + 20 * math.log10(2))
    assert psnr(target, target) == math.inf


def test_psnr_uint8_is_scaled_to_unit_range():
    a = np.full((4, 5, 3), 100, dtype=np.uint8)
    b = a + 1  # one grey level everywhere: MSE (1/255)^2 -> 20 log10(255) dB
    assert psnr(b, a) == pytest.approx(20 * math.log10(255), abs=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        psnr(b, a, data_range=255.0)


def test_image_metric_input_errors():
    x = torch.zeros(2, 16, 16, 3)
    with pytest.raises(ValueError, match="differ"):
        psnr(x, torch.zeros(2, 16, 15, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\)"):
        ssim(torch.zeros(2, 16, 16), torch.zeros(2, 16, 16))
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ssim(bad, x)
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.zeros(10, 12, 3), torch.zeros(10, 12, 3))
    with pytest.raises(ValueError, match="reduction"):
        psnr(x, x, reduction="sum")


def test_ssim_identical_is_one_and_noise_lowers_it(rng):
    img = rng.random((3, 24, 20, 3))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    noisy = np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1)
    per_frame = ssim(noisy, img, reduction="none")
    assert per_frame.shape == (3,) and bool((per_frame < 0.95).all())


def test_ssim_of_constant_frames_closed_form():
    # No variance anywhere: SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01)^2.
    a, b, c1 = 0.5, 0.6, 1e-4
    val = ssim(np.full((12, 12, 3), b), np.full((12, 12, 3), a))
    assert val == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-12)


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    """The 2004 formula, one 11x11 window position and one channel at a time."""
    r = np.arange(11) - 5.0
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for ch in range(3):
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                px, py = x[i : i + 11, j : j + 11, ch], y[i : i + 11, j : j + 11, ch]
                mx, my = (g * px).sum(), (g * py).sum()
                vx, vy = (g * (px - mx) ** 2).sum(), (g * (py - my) ** 2).sum()
                cxy = (g * (px - mx) * (py - my)).sum()
                vals.append(
                    (2 * mx * my + c1)
                    * (2 * cxy + c2)
                    / ((mx * mx + my * my + c1) * (vx + vy + c2))
                )
    return float(np.mean(vals))


def test_ssim_matches_direct_formula(rng):
    x = rng.random((2, 14, 13, 3))
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
    per_frame = ssim(x, y, reduction="none")
    for k in range(2):
        assert float(per_frame[k]) == pytest.approx(_ssim_reference(x[k], y[k]), abs=1e-10)
    # float32 and uint8 paths agree with float64 to float32 accuracy
    x8, y8 = (x * 255).round().astype(np.uint8), (y * 255).round().astype(np.uint8)
    ref = ssim(x8.astype(np.float64) / 255, y8.astype(np.float64) / 255)
    assert ssim(torch.from_numpy(x8), torch.from_numpy(y8)) == pytest.approx(ref, abs=1e-5)


def test_action_errors_2d():
    pred = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    true = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0]])
    assert action_errors_2d(pred, true) == pytest.approx((0 + 5 + 1) / 3)
    assert action_errors_2d(pred, true, visible=[False, True, True]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no"):
        action_errors_2d(pred, true, visible=[False] * 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        action_errors_2d(pred[:, :1], true[:, :1])


def _rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_action_errors_3d():
    true = np.zeros((3, 3))
    pred = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 6.0]])
    out = action_errors_3d(pred, true)
    assert out == pytest.approx({"pos_mean_m": 3.0, "pos_median_m": 2.0})
    rp = np.stack([_rot_z(10), _rot_z(90), _rot_z(-50)])
    rt = np.stack([np.eye(3), np.eye(3), _rot_z(-30)])
    out = action_errors_3d(pred, true, rp, rt)
    assert out["rot_mean_deg"] == pytest.approx((10 + 90 + 20) / 3)
    assert out["rot_median_deg"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="both"):
        action_errors_3d(pred, true, rp, None)
    with pytest.raises(ValueError, match="NaN"):
        action_errors_3d(pred, np.full((3, 3), np.nan))


def _hand_case():
    """2 points x 4 frames in a 256x256 frame (no rescaling)."""
    gt = np.zeros((2, 4, 2))
    gt[0] = [10.0, 10.0]
    gt[1] = [100.0, 50.0]
    gt_occ = np.array([[0, 0, 1, 0], [0, 1, 1, 0]], dtype=bool)
    # Offsets: point 0 moves by 0.5, 3, 0, 20 px in x; point 1 by 1.5 (0.9, 1.2), 0, 0, 5 (3, 4).
    off = np.zeros((2, 4, 2))
    off[0, :, 0] = [0.5, 3.0, 0.0, 20.0]
    off[1, 0] = [0.9, 1.2]
    off[1, 3] = [3.0, 4.0]
    pred_occ = np.array([[0, 0, 0, 1], [0, 1, 0, 0]], dtype=bool)
    return gt + off, pred_occ, gt, gt_occ, off


def test_tapvid_hand_computed():
    pred, pred_occ, gt, gt_occ, _ = _hand_case()
    m = tapvid_metrics(pred, pred_occ, gt, gt_occ, image_size=(256, 256))
    # Occlusion agrees at p0: f0 f1, p1: f0 f1 f3 -> 5 of 8.
    assert m["occlusion_accuracy"] == pytest.approx(5 / 8)
    # GT-visible distances: p0 0.5, 3, 20 (pred occluded); p1 1.5, 5.
    want_within = {1: 1 / 5, 2: 2 / 5, 4: 3 / 5, 8: 4 / 5, 16: 4 / 5}
    # Pred-visible at gt-occluded p0f2, p1f2: FP at every threshold.
    # d=1:  TP p0f0;                 FP +p0f1 p1f0 p1f3 = 5; FN 4 -> 1/10
    # d=2:  TP p0f0 p1f0;            FP +p0f1 p1f3 = 4;      FN 3 -> 2/9
    # d=4:  TP p0f0 p0f1 p1f0;       FP +p1f3 = 3;           FN 2 -> 3/8
    # d=8:  TP +p1f3 = 4;            FP 2;  FN p0f3 = 1          -> 4/7
    # d=16: same as 8 (p0f3 is 20 px off and predicted occluded) -> 4/7
    want_jac = {1: 1 / 10, 2: 2 / 9, 4: 3 / 8, 8: 4 / 7, 16: 4 / 7}
    for d in (1, 2, 4, 8, 16):
        assert m[f"pts_within_{d}"] == pytest.approx(want_within[d]), d
        assert m[f"jaccard_{d}"] == pytest.approx(want_jac[d]), d
    assert m["average_pts_within_thresh"] == pytest.approx(2.8 / 5)
    assert m["average_jaccard"] == pytest.approx(sum(want_jac.values()) / 5)


def test_tapvid_rescales_x_by_width_and_y_by_height():
    _, pred_occ, gt, gt_occ, off = _hand_case()
    # A 128 (H) x 64 (W) frame: x is scaled by 4 and y by 2 to reach 256x256, so offsets
    # divided by (4, 2) here become the hand case's offsets there.
    gt_small = gt / [4.0, 2.0]
    pred_small = gt_small + off / [4.0, 2.0]
    m = tapvid_metrics(pred_small, pred_occ, gt_small, gt_occ, image_size=(128, 64))
    assert m["jaccard_2"] == pytest.approx(2 / 9) and m["pts_within_4"] == pytest.approx(3 / 5)
    raw = tapvid_metrics(pred_small, pred_occ, gt_small, gt_occ, (128, 64), eval_resolution=None)
    assert raw["pts_within_1"] == pytest.approx(3 / 5)  # 0.125, 0.75, 0.3125 px apart


def test_tapvid_query_first_mask():
    mask = tapvid_query_mask([1, 0], num_frames=4)
    assert mask.tolist() == [[False, False, True, True], [False, True, True, True]]
    assert tapvid_query_mask([1], 3, mode="strided").tolist() == [[True, False, True]]
    pred, pred_occ, gt, gt_occ, _ = _hand_case()
    m = tapvid_metrics(pred, pred_occ, gt, gt_occ, (256, 256), evaluate_mask=mask)
    # Scored: p0 f2 f3 (both occlusion-wrong), p1 f1 f2 f3 (f2 wrong) -> 2 of 5.
    assert m["occlusion_accuracy"] == pytest.approx(2 / 5)
    # Visible scored: p0f3 (20 px), p1f3 (5 px).
    assert m["pts_within_8"] == pytest.approx(1 / 2) and m["pts_within_4"] == 0.0
    # d=8: TP p1f3; FP p0f2 p1f2; FN p0f3 -> 1/4
    assert m["jaccard_8"] == pytest.approx(1 / 4)


def test_tapvid_batch_averages_videos():
    pred, pred_occ, gt, gt_occ, _ = _hand_case()
    # Video 1 is the hand case, video 2 a perfect prediction (every metric 1).
    m = tapvid_metrics(
        np.stack([pred, gt]),
        np.stack([pred_occ, gt_occ]),
        np.stack([gt, gt]),
        np.stack([gt_occ, gt_occ]),
        (256, 256),
    )
    assert m["occlusion_accuracy"] == pytest.approx((5 / 8 + 1) / 2)
    assert m["jaccard_4"] == pytest.approx((3 / 8 + 1) / 2)


def test_tapvid_input_errors():
    pred, pred_occ, gt, gt_occ, _ = _hand_case()
    with pytest.raises(ValueError, match="equal in shape"):
        tapvid_metrics(pred[:, :3], pred_occ, gt, gt_occ, (256, 256))
    with pytest.raises(ValueError, match="gt_occluded"):
        tapvid_metrics(pred, pred_occ, gt, gt_occ[:, :3], (256, 256))
    nan_pred = pred.copy()
    nan_pred[0, 0] = np.nan  # visible in the prediction: not allowed
    with pytest.raises(ValueError, match="NaN"):
        tapvid_metrics(nan_pred, pred_occ, gt, gt_occ, (256, 256))
    nan_pred = pred.copy()
    nan_pred[0, 3] = np.nan  # predicted occluded: allowed, counts as not within
    m = tapvid_metrics(nan_pred, pred_occ, gt, gt_occ, (256, 256))
    assert m["pts_within_16"] == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="nothing to score"):
        tapvid_metrics(pred, pred_occ, gt, gt_occ, (256, 256), evaluate_mask=np.zeros((2, 4)))


def test_tapvid_threshold_is_strict():
    gt = np.zeros((1, 2, 2))
    pred = gt + [[[0.0, 2.0], [0.0, 1.0]]]  # exactly 2 px, then 1 px
    occ = np.zeros((1, 2), dtype=bool)
    m = tapvid_metrics(pred, occ, gt, occ, (256, 256))
    assert m["pts_within_2"] == pytest.approx(1 / 2) and m["pts_within_1"] == 0.0
    assert m["jaccard_2"] == pytest.approx(1 / 3)  # TP 1, FP 1, FN 1
