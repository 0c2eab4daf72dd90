"""Least-squares multi-view triangulation with per-view weights (torch, batched)."""

from __future__ import annotations

import torch


def triangulate(uv: torch.Tensor, weight: torch.Tensor, P: torch.Tensor, iterations: int = 3):
    """Triangulate N points, each seen in up to V views.

    Each view contributes the two linear equations (u p3 - p1) . X = 0 and
    (v p3 - p2) . X = 0 in X = (x, y, z, 1). Rows are re-weighted by 1 / depth and the
    system re-solved (Hartley's iterative linear method), so the result approaches
    the reprojection-error minimum rather than the algebraic one.

    Args:
        uv: (N, V, 2) pixel observations (ignored where weight == 0).
        weight: (N, V) non-negative weights; 0 marks a missing observation.
        P: (N, V, 3, 4) or broadcastable projection matrices K [R | t].
        iterations: re-weighting rounds.

    Returns:
        X: (N, 3) points (finite; meaningless where ``ok`` is False).
        ok: (N,) bool, True where >= 2 views observed the point, the system was well
            conditioned and the point lies in front of every used camera.
        rms: (N,) root-mean-square reprojection error in pixels over the used views.
    """
    P = P.expand(*uv.shape[:2], 3, 4)
    u, v = uv[..., 0:1], uv[..., 1:2]  # (N, V, 1)
    rows = torch.stack([u * P[..., 2, :] - P[..., 0, :], v * P[..., 2, :] - P[..., 1, :]], dim=2)
    A, b = rows[..., :3], -rows[..., 3]  # (N, V, 2, 3), (N, V, 2)
    used = weight > 0
    n_used = used.sum(-1)
    eye = torch.eye(3, dtype=uv.dtype, device=uv.device)
    scale = torch.ones_like(weight)
    X = torch.zeros(uv.shape[0], 3, dtype=uv.dtype, device=uv.device)
    for _ in range(max(1, iterations)):
        w = (weight * scale)[..., None]  # (N, V, 1)
        M = torch.einsum("nvri,nvr,nvrj->nij", A, w.expand_as(b), A)  # (N, 3, 3)
        rhs = torch.einsum("nvri,nvr,nvr->ni", A, w.expand_as(b), b)  # (N, 3)
        # Normalise by the trace so the conditioning test is scale-free.
        tr = M.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-300)
        well = (torch.linalg.eigvalsh(M / tr[:, None, None])[:, 0] > 1e-10) & (n_used >= 2)
        M = torch.where(well[:, None, None], M, eye)
        X = torch.linalg.solve(M, torch.where(well[:, None], rhs, torch.zeros_like(rhs)))
        depth = torch.einsum("nvj,nj->nv", P[..., 2, :3], X) + P[..., 2, 3]  # (N, V)
        scale = 1.0 / depth.abs().clamp_min(1e-6) ** 2
    Xh = torch.cat([X, torch.ones_like(X[:, :1])], dim=-1)
    proj = torch.einsum("nvij,nj->nvi", P, Xh)  # (N, V, 3)
    depth = proj[..., 2]
    pix = proj[..., :2] / torch.where(depth.abs() < 1e-12, 1e-12, depth)[..., None]
    err2 = ((pix - uv) ** 2).sum(-1)
    rms = torch.sqrt((err2 * used).sum(-1) / n_used.clamp_min(1))
    in_front = ((depth > 0) | ~used).all(-1)
    ok = well & in_front & torch.isfinite(X).all(-1)
    return X, ok, torch.where(ok, rms, torch.full_like(rms, float("inf")))
