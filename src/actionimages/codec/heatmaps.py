"""Reading action images into what the decoders locate: gripper, heatmaps, brightest pixels.

The triangulating decoder never builds full channel-first heatmap planes: it reads the
caller's (V, T, H, W, 3) images where it needs them and maps each value read through the
same monotone chain a clamped heatmap would apply (float32, clamp to [0, 1], the blue
background cut, the view mask; :func:`to_heat`). Its one full pass is :func:`row_maxima`,
from which :func:`brightest` finds each heatmap's first maximum exactly. The paper's
decoder still builds the planes (:func:`clamped_planes`, :func:`heatmaps`), since its
centroid needs every pixel.
"""

from __future__ import annotations

from typing import Literal

import torch

from actionimages.codec.encoder import BLUE_LEVEL
from actionimages.codec.peaks import lower_median

Method = Literal["triangulate", "paper"]
# Blue pixels up to this much above 0.25 * g still count as gripper background
# (the paper's strict "< 0.25" drops every background pixel when g = 1).
GRIPPER_TOLERANCE = 1e-3


def gripper_opening(blue: torch.Tensor, present: torch.Tensor, method: Method) -> torch.Tensor:
    """Gripper openness (T,) from the blue channel (V, T, H, W) of the present views.

    "paper": Eq. 7 with "<= 0.25 + tolerance" over every pixel, on clamped values.
    "triangulate": the median blue value, which equals 0.25 * g (the up blob covers a
    few percent of the pixels) and, unlike a mean of the pixels under a threshold, is
    not biased by noise that crosses it. The median is taken over every second pixel in
    each direction, which changes nothing on clean images and little on noisy ones.
    Here ``blue`` may be the images' own, unclamped values: the median of the clamped
    values is the clamped median.
    """
    T = blue.shape[1]
    if method == "paper":
        low = (blue <= BLUE_LEVEL + GRIPPER_TOLERANCE) & present[..., None, None]
        total = (blue * low).sum(dim=(0, 2, 3), dtype=torch.float64)
        count = low.sum(dim=(0, 2, 3)).clamp_min(1)
        return (total / count / BLUE_LEVEL).clamp(0.0, 1.0)
    # In float32, as the decoder reads every value: (T, V, H/2, W/2).
    sub = blue[:, :, ::2, ::2].permute(1, 0, 2, 3).to(torch.float32)
    if bool(present.all()):
        g = lower_median(sub.reshape(T, -1), clamped=True)  # (T, V*H/2*W/2) -> (T,)
    else:
        sub = torch.where(present.T[..., None, None], sub.clamp(0, 1), float("nan"))
        g = torch.nan_to_num(sub.reshape(T, -1).nanmedian(dim=-1).values, nan=0.0)
    return (g.to(torch.float64) / BLUE_LEVEL).clamp(0.0, 1.0)


def clamped_planes(x: torch.Tensor) -> torch.Tensor:
    """A float32, channel-first copy of image values clamped to [0, 1]:
    (V, T, h, w, 3) -> (V, T, 3, h, w)."""
    V, T, h, w, C = x.shape
    out = torch.empty((V, T, C, h, w), dtype=torch.float32, device=x.device)
    out.copy_(x.permute(0, 1, 4, 2, 3))
    return out.clamp_(0.0, 1.0)


def blue_cut(blue: torch.Tensor) -> torch.Tensor:
    """(V, T) float32 level up to which blue is background, from a subsample
    (V, T, h, w) of the clamped blue plane (the triangulating decoder's up heatmap).

    Against the measured background, not a fixed 0.25: with the gripper open the
    background sits at 0.25 itself, so under noise half of it crossed a fixed cut and the
    speckle hid the up blob (found in 45% of open steps at 64 px, 2 views, noise 0.05).
    Per view and frame, blue up to median + 3 robust sigmas is dropped (the median is the
    background: the blob covers a few percent of the pixels).
    """
    sub = blue.flatten(2)  # (V, T, h * w)
    level = lower_median(sub, clamped=True)  # (V, T)
    cut = torch.full(
        level.shape, BLUE_LEVEL + GRIPPER_TOLERANCE, dtype=sub.dtype, device=sub.device
    )
    # The MAD of values >= 0 is at most their median: where even that bound keeps the
    # cut at its floor (a closed gripper), the MAD, a second median, is not needed.
    need = level + 3 * (1.4826 * level) > cut
    if bool(need.any()):
        noise = 1.4826 * lower_median((sub[need] - level[need][:, None]).abs())
        cut[need] = torch.maximum(cut[need], level[need] + 3 * noise)
    return cut


def to_heat(vals: torch.Tensor, cut: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The triangulating decoder's heatmaps, in place in clamped image values (V, T, 3, ...):
    red, green, and blue above ``cut`` (V, T) (the up blob; 0 elsewhere); all 0 in
    views that are not ``present`` (V, T)."""
    V, T = cut.shape
    ones = (1,) * (vals.ndim - 3)
    blue = vals[:, :, 2]
    blue.masked_fill_(blue <= cut.reshape(V, T, *ones), 0.0)
    if not bool(present.all()):
        vals.mul_(present.reshape(V, T, 1, *ones))
    return vals


def heatmaps(planes: torch.Tensor, gripper: torch.Tensor) -> torch.Tensor:
    """The paper decoder's heatmaps (V, T, 3, H, W), built in place in the clamped image
    planes (V, T, 3, H, W): red, green, and the up blob from blue.

    Only blue values above 0.25 are the up Gaussian (Eq. 5); the rest is background
    and becomes 0, and the centroid also subtracts the background level 0.25 * g from
    the rest (SPEC 3). (The triangulating decoder's Gaussian fit must not, since
    G - level is no Gaussian; it cuts at the measured background instead, ``_blue_cut``.)
    """
    blue = planes[:, :, 2]
    background = blue <= BLUE_LEVEL + GRIPPER_TOLERANCE
    blue.masked_fill_(background, 0.0)
    level = (BLUE_LEVEL * gripper).to(blue.dtype)[None, :, None, None]  # (1, T, 1, 1)
    blue.sub_(torch.where(background, torch.zeros_like(blue), level))
    return planes


def row_maxima(imgs: torch.Tensor) -> torch.Tensor:
    """The largest value in each image row, per channel: (V, T, H, W, 3) -> (V, T, 3, H)."""
    V, T, H, W, C = imgs.shape
    # Reduced over W directly, the 3 channels are too short an inner dimension to
    # vectorise (4x slower): first over groups of g pixels, g * 3 contiguous values each.
    g = next((g for g in (32, 16, 8) if W % g == 0), 1)
    m = imgs.reshape(V * T * H, W // g, g * C).amax(1)  # (V*T*H, g*3)
    return m.reshape(V, T, H, g, C).amax(3).permute(0, 1, 3, 2)


def brightest(row_max: torch.Tensor, sample, W: int):
    """Row, column and value (N,) of the first brightest pixel (in row-major order, as an
    argmax over the whole heatmap finds it) of each of N heatmaps, given the heatmap
    values of each row's maximum ``row_max`` (N, H).

    The heatmap values are a non-decreasing function of the image values, so a row's
    largest image value is also its largest heatmap value: only the chosen row is read
    again, at full width.
    """
    N = row_max.shape[0]
    peak, i0 = row_max.max(dim=-1)  # the first row that holds the maximum
    cols = torch.arange(W, device=i0.device).expand(N, W)
    _, j0 = sample(i0[:, None], cols).reshape(N, W).max(dim=-1)  # its first such pixel
    return i0, j0, peak
