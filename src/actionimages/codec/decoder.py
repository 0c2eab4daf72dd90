"""Decoding: multi-view action images -> 7-DoF actions (paper Eq. 7-9, SPEC section 3).

Two methods share the gripper read-out and the points-to-pose step:

``"paper"`` (faithful baseline): the heatmap centroid in a main view (Eq. 8), a ray
    through it, ``ray_samples`` points between ``near`` and ``far`` depth, and the one
    whose projection scores highest on a side view's heatmap (bilinear lookup, Eq. 9).
    Depth precision is limited by the sample spacing, and the centroid is biased by
    noise and by the image border.
``"triangulate"`` (default): a sub-pixel Gaussian fit in every view and a weighted
    least-squares triangulation over all views that see the point, with a per-point
    confidence from the reprojection error.

Both report, per view and point, whether the point was found (``visible``), so a
point that left one image or a missing view is visible in the output, not hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from actionimages._arrays import as_tensor, check_finite
from actionimages.codec.encoder import BLUE_LEVEL, LAYOUTS, Layout, layout_intrinsics
from actionimages.codec.heatmaps import (
    GRIPPER_TOLERANCE,
    Method,
    blue_cut,
    brightest,
    clamped_planes,
    gripper_opening,
    heatmaps,
    row_maxima,
    to_heat,
)
from actionimages.codec.peaks import centroid, fit_peak_window, noise_for_fit
from actionimages.geometry.camera import CameraSpec, stack_cameras
from actionimages.geometry.projection import pixel_rays, project_points
from actionimages.geometry.rotations import nearest_rotation
from actionimages.geometry.triangulation import triangulate

POINT_NAMES = ("pos", "normal", "up")


@dataclass
class DecodedActions:
    """Decoded trajectory. Arrays are NumPy, or torch on the input's device.

    Attributes:
        position: (T, 3) metres.
        rotation: (T, 3, 3) proper rotations (nearest to the decoded axes).
        gripper: (T,) openness in [0, 1].
        confidence: (T, 3) per semantic point [pos, normal, up], in [0, 1]; 0 where
            the point could not be located and was filled in from neighbouring steps.
        points: (T, 3, 3) decoded 3-D points [pos, normal, up].
        visible: (V, T, 3) bool, the point was found in that view.
        views_used: (T, 3) number of views that located each point.
        reprojection_error: (T, 3) RMS pixels (inf where not triangulated).
        method: "triangulate" or "paper".
    """

    position: np.ndarray | torch.Tensor
    rotation: np.ndarray | torch.Tensor
    gripper: np.ndarray | torch.Tensor
    confidence: np.ndarray | torch.Tensor
    points: np.ndarray | torch.Tensor
    visible: np.ndarray | torch.Tensor
    views_used: np.ndarray | torch.Tensor
    reprojection_error: np.ndarray | torch.Tensor
    method: str

    @property
    def ok(self):
        """(T,) True where every point was located at that step (nothing filled in)."""
        return (self.confidence > 0).all(-1)

    @property
    def step_confidence(self):
        """(T,) the weakest point's confidence at each step."""
        return self.confidence.min(-1) if isinstance(self.confidence, torch.Tensor) else self.confidence.min(axis=-1)  # fmt: skip

    @classmethod
    def from_pose(cls, position, rotation, gripper, method: str = "vector") -> DecodedActions:
        """A trajectory read directly as poses (a vector-action model): (T, 3), (T, 3, 3), (T,).

        Nothing was located in an image, so confidence is 1, no view is listed and the
        points are NaN.
        """
        position, rotation, gripper = (
            np.asarray(x, dtype=np.float64) for x in (position, rotation, gripper)
        )
        T = len(position)
        return cls(position, rotation, gripper, np.ones((T, 3)), np.full((T, 3, 3), np.nan),
                   np.zeros((0, T, 3), bool), np.zeros((T, 3), np.int64), np.zeros((T, 3)), method)  # fmt: skip


def _fill_over_time(points: torch.Tensor, ok: torch.Tensor, may_miss=()) -> torch.Tensor:
    """Linearly interpolate (T, 3, 3) points over time where ``ok`` (T, 3) is False.

    A point in ``may_miss`` that is never found is left NaN instead of raising.
    """
    T = points.shape[0]
    if bool(ok.all()):
        return points
    out = points.clone()
    t = torch.arange(T, dtype=points.dtype, device=points.device)
    for k in range(points.shape[1]):  # 3 semantic points, not a per-pixel loop
        good = ok[:, k]
        if not bool(good.any()) and k in may_miss:
            out[:, k] = float("nan")
            continue
        if not bool(good.any()):
            raise ValueError(
                f"the {POINT_NAMES[k]} point could not be located at any time step; it must be "
                "visible in at least two views (check the cameras, or whether the images "
                "are action images at all)"
            )
        tg = t[good].cpu().numpy()
        for c in range(3):
            vals = np.interp(t.cpu().numpy(), tg, points[good, k, c].cpu().numpy())
            out[:, k, c] = torch.as_tensor(vals, dtype=points.dtype, device=points.device)
    return out


def _points_to_pose(points: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, 3, 3) points [pos, normal, up] -> position (T, 3), rotation (T, 3, 3)."""
    pos, normal, up = points[:, 0], points[:, 1], points[:, 2]
    if layout == "paper":  # normal = p - l e_z, up = p + l e_x
        ex, ez = up - pos, pos - normal
    else:  # official: normal = p + l e_x, up = p - l e_z
        ex, ez = normal - pos, pos - up
    ex = ex / ex.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    ez = ez / ez.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    ey = torch.linalg.cross(ez, ex, dim=-1)
    return pos, nearest_rotation(torch.stack([ex, ey, ez], dim=-1))


def _triangulate_points(imgs, K, E, present, sigma_px):
    """Sub-pixel peaks in every view + multi-view least squares. Returns points, conf, vis, n, err.

    The heatmaps are never built whole: ``imgs`` (V, T, H, W, 3) is read once for the row
    maxima, on strided subsamples (background, noise) and in small windows (the
    brightest row, the fit), with the values a clamped float32 heatmap plane would hold.
    A full channel-first copy of the images cost more than all the rest at 256 px.
    """
    imgs = imgs.contiguous()  # (a copy only for strided input) for flat pixel indices
    V, T, H, W, _ = imgs.shape
    P = 3
    N = V * T * P
    dev = imgs.device
    # The up heatmap's background cut, from every 4th pixel of blue.
    cut = blue_cut(imgs[:, :, ::4, ::4, 2].to(torch.float32).clamp(0.0, 1.0))  # (V, T)
    # The noise level of each heatmap from every 6th pixel (``peaks.estimate_noise``).
    sub6 = to_heat(clamped_planes(imgs[:, :, ::6, ::6]), cut, present)  # (V, T, 3, h, w)
    row_max = to_heat(row_maxima(imgs).to(torch.float32).clamp_(0.0, 1.0), cut, present)

    flat = imgs.view(-1)
    # Flat index of pixel (0, 0) of each heatmap: (N, 1, 1).
    base = torch.arange(V * T, device=dev)[:, None] * (H * W * P) + torch.arange(P, device=dev)
    base = base.reshape(N, 1, 1)

    def sample(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Heatmap values (N, a, b) at rows (N, a) x cols (N, b), read from the images."""
        index = base + rows[:, :, None] * (W * P) + cols[:, None, :] * P  # (N, a, b)
        vals = flat.index_select(0, index.reshape(-1)).to(torch.float32)  # a fresh copy
        vals = vals.clamp_(0.0, 1.0).reshape(V, T, P, rows.shape[1], cols.shape[1])
        return to_heat(vals, cut, present).reshape(index.shape)

    # Red/green blobs may be found from a faint tail (a point just off the image); the
    # up blob exists only above 0.25 in blue (Eq. 5), so its thresholds sit there.
    up_floor = BLUE_LEVEL + GRIPPER_TOLERANCE
    floor = torch.tensor([0.02, 0.02, up_floor], dtype=torch.float64, device=dev)
    min_peak = torch.tensor([0.03, 0.03, up_floor + 0.01], dtype=torch.float64, device=dev)
    floor = floor.expand(V, T, P).reshape(-1)  # (V*T*P,)
    min_peak = min_peak.expand(V, T, P).reshape(-1)
    i0, j0, peak = brightest(row_max.reshape(N, H), sample, W)
    noise = noise_for_fit(sub6.reshape(N, -1).to(torch.float64), peak, floor, min_peak)  # (N,)
    uv, found, peak = fit_peak_window(
        sample, (H, W), i0, j0, peak, noise, sigma_px, floor, min_peak
    )
    uv = uv.reshape(V, T, P, 2)
    visible = found.reshape(V, T, P) & present[..., None]  # (V, T, 3)
    # A view that sees only a faint tail constrains the point less: weight by peak^2.
    weight = visible * peak.reshape(V, T, P).to(torch.float64).clamp(0, 1) ** 2
    Pm = K @ E[..., :3, :]  # (V, T, 3, 4)
    X, ok, rms = triangulate(
        uv.permute(1, 2, 0, 3).reshape(T * P, V, 2),  # (V, T, P, 2) -> (T*P, V, 2)
        weight.permute(1, 2, 0).reshape(T * P, V),  # (V, T, P) -> (T*P, V)
        Pm[:, :, None].expand(V, T, P, 3, 4).permute(1, 2, 0, 3, 4).reshape(T * P, V, 3, 4),
    )
    ok = ok.reshape(T, P)
    rms = rms.reshape(T, P)
    conf = torch.where(ok, torch.exp(-rms / 1.0), torch.zeros_like(rms))
    return X.reshape(T, P, 3), ok, conf, visible, visible.sum(0), rms


def _paper_points(heat, K, E, present, ray_samples, near, far, main_view, side_view):
    """Eq. 8-9: centroid in the main view, K ray samples scored on the side view."""
    V, T, P, H, W = heat.shape
    uvc, mass = centroid(heat.reshape(-1, H, W))
    visible = (mass.reshape(V, T, P) > 1e-6) & present[..., None]  # (V, T, 3)
    uvc = uvc.reshape(V, T, P, 2)
    # Main/side view per (t, point): the requested ones if the point is seen there,
    # otherwise the first views that see it.
    order = torch.tensor(
        [main_view, side_view] + [v for v in range(V) if v not in (main_view, side_view)],
        device=heat.device,
    )
    vis_ordered = visible[order].permute(1, 2, 0)  # (T, P, V) in preference order
    rank = torch.cumsum(vis_ordered.long(), dim=-1)
    main = order[((rank == 1) & vis_ordered).float().argmax(-1)]  # (T, P)
    side = order[((rank == 2) & vis_ordered).float().argmax(-1)]
    ok = rank[..., -1] >= 2
    t_idx = torch.arange(T, device=heat.device)[:, None].expand(T, P)
    p_idx = torch.arange(P, device=heat.device)[None, :].expand(T, P)
    # 1. Ray from the main camera through its centroid: origin, direction (T, P, 3).
    Km, Em = K[main, t_idx], E[main, t_idx]  # (T, P, 3, 3), (T, P, 4, 4)
    o, d = pixel_rays(uvc[main, t_idx, p_idx][..., None, :], Km, Em)
    o, d = o[..., 0, :], d[..., 0, :]
    # 2. Samples at camera depths between near and far (depth = distance along z).
    z_axis = Em[..., 2, :3]  # camera z axis in world coordinates, (T, P, 3)
    cos = (d * z_axis).sum(-1, keepdim=True).clamp_min(1e-6)
    depths = torch.linspace(near, far, ray_samples, dtype=torch.float64, device=heat.device)
    X = o[..., None, :] + d[..., None, :] * (depths[:, None] / cos[..., None])  # (T, P, S, 3)
    # 3. Project into the side view and score by bilinear lookup of its heatmap.
    uvs, depth_s = project_points(X, K[side, t_idx], E[side, t_idx])  # (T, P, S, 2)
    side_heat = heat[side, t_idx, p_idx]  # (T, P, H, W)
    grid = torch.stack(
        [uvs[..., 0] / W * 2 - 1, uvs[..., 1] / H * 2 - 1], dim=-1
    )  # align_corners=False
    score = torch.nn.functional.grid_sample(
        side_heat.reshape(T * P, 1, H, W),
        grid.reshape(T * P, 1, ray_samples, 2).to(side_heat.dtype),
        mode="bilinear", padding_mode="zeros", align_corners=False,
    ).reshape(T, P, ray_samples)  # fmt: skip
    score = torch.where(depth_s > 0, score, torch.full_like(score, -1.0))
    best = score.argmax(-1)  # (T, P)
    pts = torch.gather(X, 2, best[..., None, None].expand(T, P, 1, 3))[:, :, 0]
    ok = ok & (score.max(-1).values > 0)
    conf = torch.where(
        ok, score.max(-1).values.clamp(0, 1), torch.zeros_like(best, dtype=heat.dtype)
    )
    n = visible.sum(0)
    err = torch.where(ok, torch.zeros_like(conf), torch.full_like(conf, float("inf")))
    return pts, ok, conf, visible, n, err


def decode_action_images(
    images,
    cameras: Sequence[CameraSpec],
    method: Method = "triangulate",
    *,
    layout: Layout = "paper",
    sigma: float = 0.05,
    view_mask=None,
    ray_samples: int = 256,
    near: float = 0.1,
    far: float = 3.0,
    main_view: int = 0,
    side_view: int = 1,
    fallback_rotation=None,
) -> DecodedActions:
    """Decode action images back into a 7-DoF trajectory.

    Args:
        images: (V, T, H, W, 3) action images with values in about [0, 1] (generated
            ones may overshoot; values are clipped to [0, 1]). NumPy or torch.
        cameras: V entries, each a ``Camera`` or T cameras (moving view).
        method: "triangulate" (default, all views, sub-pixel) or "paper" (Eq. 8-9).
        layout: the encoding layout, "paper" or "official".
        sigma: the encoding's sigma as a fraction of min(H, W) (sets fit windows).
        view_mask: optional (V,) or (V, T) bool; False marks a missing view/frame.
        ray_samples, near, far: the paper decoder's K samples between near and far
            camera depth (metres).
        main_view, side_view: the paper decoder's preferred views.
        fallback_rotation: optional (3, 3) rotation used where the normal or up point is
            never found (e.g. above the top of every image at the robot's home pose); without
            it that raises. The position still comes from the images.

    Returns:
        DecodedActions (NumPy for NumPy input, torch on the input's device for torch).
    """
    torch_mode = isinstance(images, torch.Tensor)
    device = images.device if torch_mode else None
    if method not in ("triangulate", "paper"):
        raise ValueError(f"method must be 'triangulate' or 'paper', got {method!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    imgs = images.detach() if torch_mode else as_tensor(images, copy=False)  # only read
    if imgs.ndim != 5 or imgs.shape[-1] != 3:
        raise ValueError(f"images must have shape (V, T, H, W, 3), got {tuple(imgs.shape)}")
    V, T, H, W, _ = imgs.shape
    if min(V, T, H, W) == 0:
        raise ValueError(f"images must be non-empty, got shape {tuple(imgs.shape)}")
    if not imgs.is_floating_point():
        raise ValueError(f"images must be floats in [0, 1], got dtype {imgs.dtype}")
    check_finite("images", imgs)
    if len(cameras) != V:
        raise ValueError(f"got {V} views of images but {len(cameras)} cameras")
    if not (0 < near < far) or ray_samples < 2:
        raise ValueError(
            f"need 0 < near < far and ray_samples >= 2, got {near}, {far}, {ray_samples}"
        )
    if V < 2:
        raise ValueError(
            f"decoding 3-D points needs at least two calibrated views, got {V}; a single view "
            "cannot resolve depth"
        )
    if method == "paper" and not (
        0 <= main_view < V and 0 <= side_view < V and main_view != side_view
    ):
        raise ValueError(f"main_view and side_view must be two different views out of {V}")
    Knp, Enp, h, w = stack_cameras(cameras, T)
    if (h, w) != (H, W):
        raise ValueError(f"cameras are {h}x{w} but images are {H}x{W}; resize the cameras to match")
    K = layout_intrinsics(torch.as_tensor(Knp, device=imgs.device), layout)
    E = torch.as_tensor(Enp, device=imgs.device)
    if view_mask is None:
        present = torch.ones(V, T, dtype=torch.bool, device=imgs.device)
    else:
        m = torch.as_tensor(
            np.asarray(view_mask) if not isinstance(view_mask, torch.Tensor) else view_mask
        )
        m = m.to(device=imgs.device, dtype=torch.bool)
        if m.shape == (V,):
            m = m[:, None].expand(V, T)
        if m.shape != (V, T):
            raise ValueError(
                f"view_mask must have shape ({V},) or ({V}, {T}), got {tuple(m.shape)}"
            )
        present = m
    if not bool(present.any(0).all()):
        raise ValueError("view_mask leaves some time steps with no view at all")

    # float32 is plenty for values in [0, 1]; the peak fit works in float64 on its
    # small windows only.
    if method == "triangulate":
        # 1. Gripper from the blue background (Eq. 7), 2.-3. heatmap peaks read from the
        # images themselves (no heatmap planes) and triangulated.
        gripper = gripper_opening(imgs[..., 2], present, method)
        pts, ok, conf, visible, n, err = _triangulate_points(imgs, K, E, present, sigma * min(H, W))
    else:
        # The centroid sums every pixel: one clamped channel-first copy, (V, T, 3, H, W), in
        # which the heatmaps are built.
        planes = clamped_planes(imgs)
        gripper = gripper_opening(planes[:, :, 2], present, method)
        heat = heatmaps(planes, gripper)
        if not bool(present.all()):
            heat = heat * present[:, :, None, None, None]
        pts, ok, conf, visible, n, err = _paper_points(
            heat, K, E, present, ray_samples, near, far, main_view, side_view
        )
    # 4. Steps where a point failed borrow it from neighbouring steps (confidence 0).
    pts = _fill_over_time(pts, ok, may_miss=(1, 2) if fallback_rotation is not None else ())
    # 5. Points -> pose (Eq. after 9, with the nearest rotation).
    if fallback_rotation is not None and bool(pts[:, 1:].isnan().any()):
        position = pts[:, 0]
        rotation = torch.as_tensor(
            np.asarray(fallback_rotation), dtype=pts.dtype, device=pts.device
        )
        rotation = rotation.expand(T, 3, 3).clone()  # (T, 3, 3)
        whole = ~pts.isnan().any(-1).any(-1)  # (T,) frames with all three points
        if bool(whole.any()):
            rotation[whole] = _points_to_pose(pts[whole], layout)[1]
    else:
        position, rotation = _points_to_pose(pts, layout)

    fields = dict(
        position=position, rotation=rotation, gripper=gripper, confidence=conf, points=pts,
        visible=visible, views_used=n, reprojection_error=err,
    )  # fmt: skip
    if torch_mode:
        fields = {k: v.to(device) for k, v in fields.items()}
    else:
        fields = {k: v.cpu().numpy() for k, v in fields.items()}
    return DecodedActions(method=method, **fields)
