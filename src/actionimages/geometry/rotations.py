"""Rotation conversions at the package boundary (SPEC section 1).

Inside the package a rotation is always a matrix ``(..., 3, 3)`` whose columns are the
end-effector axes e_x, e_y, e_z in world coordinates. Every other form is converted by
one of these named functions; all accept NumPy arrays or torch tensors of any leading
batch shape and return the same type.

- quaternions are ``(x, y, z, w)`` as SciPy's ``Rotation.as_quat()`` writes them;
- Euler angles are SciPy's ``"xyz"`` (lower case: extrinsic, R = Rz(c) @ Ry(b) @ Rx(a));
- axis-angle is a rotation vector (unit axis times angle in radians);
- 6-D is the first two columns of the matrix, concatenated (Zhou et al., 2019).
"""

from __future__ import annotations

import torch

from actionimages._arrays import numpy_or_torch


def _check_last(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if tuple(x.shape[x.ndim - len(shape) :]) != shape or x.ndim < len(shape):
        raise ValueError(
            f"{name} must have shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}"
        )


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix."""
    z = torch.zeros_like(v[..., 0])
    x, y, w = v.unbind(-1)
    return torch.stack([z, -w, y, w, z, -x, -y, x, z], dim=-1).reshape(*v.shape[:-1], 3, 3)


@numpy_or_torch
def quat_xyzw_to_matrix(q):
    """Quaternion (..., 4) in xyzw order -> rotation matrix (..., 3, 3). Normalises q."""
    _check_last(q, (4,), "quaternion")
    norm = q.norm(dim=-1, keepdim=True)
    if bool((norm < 1e-12).any()):
        raise ValueError("quaternion has zero norm; it does not describe a rotation")
    x, y, z, w = (q / norm).unbind(-1)
    m = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(m, dim=-1).reshape(*q.shape[:-1], 3, 3)


@numpy_or_torch
def matrix_to_quat_xyzw(R):
    """Rotation matrix (..., 3, 3) -> unit quaternion (..., 4), xyzw, with w >= 0.

    Shepperd's method: of the four algebraically equal formulas, each element uses the
    one whose pivot is largest, which keeps it accurate near 180-degree rotations.
    """
    _check_last(R, (3, 3), "rotation")
    m = R
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # Four candidate quaternions (each 4*pivot^2 scaled), shape (..., 4 candidates, 4 comps).
    cands = torch.stack(
        [
            torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                         m[..., 1, 0] - m[..., 0, 1], 1 + tr], -1),
            torch.stack([1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0],
                         m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], -1),
            torch.stack([m[..., 0, 1] + m[..., 1, 0], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                         m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                         1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], m[..., 1, 0] - m[..., 0, 1]], -1),
        ],
        dim=-2,
    )  # fmt: skip
    pivots = torch.stack([1 + tr, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                          1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                          1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)  # fmt: skip
    best = pivots.argmax(dim=-1)  # (...)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., 3:4] < 0, -q, q)


@numpy_or_torch
def euler_xyz_to_matrix(angles):
    """SciPy-style extrinsic "xyz" Euler angles (..., 3) in radians -> (..., 3, 3)."""
    _check_last(angles, (3,), "euler angles")
    a, b, c = angles.unbind(-1)
    ca, sa, cb, sb, cc, sc = a.cos(), a.sin(), b.cos(), b.sin(), c.cos(), c.sin()
    # R = Rz(c) @ Ry(b) @ Rx(a), written out.
    m = [
        cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa,
        sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa,
        -sb, cb * sa, cb * ca,
    ]  # fmt: skip
    return torch.stack(m, dim=-1).reshape(*angles.shape[:-1], 3, 3)


@numpy_or_torch
def matrix_to_euler_xyz(R):
    """(..., 3, 3) -> SciPy-style extrinsic "xyz" Euler angles (..., 3), b in [-pi/2, pi/2].

    At gimbal lock (|b| = pi/2) the split between a and c is arbitrary; like SciPy we
    put all of it in a and return c = 0.
    """
    _check_last(R, (3, 3), "rotation")
    sb = (-R[..., 2, 0]).clamp(-1.0, 1.0)
    b = torch.asin(sb)
    cb = torch.sqrt(R[..., 2, 1] ** 2 + R[..., 2, 2] ** 2)
    locked = cb < 1e-7
    a = torch.where(
        locked, torch.atan2(-R[..., 1, 2], R[..., 1, 1]), torch.atan2(R[..., 2, 1], R[..., 2, 2])
    )
    c = torch.where(locked, torch.zeros_like(b), torch.atan2(R[..., 1, 0], R[..., 0, 0]))
    return torch.stack([a, b, c], dim=-1)


@numpy_or_torch
def axis_angle_to_matrix(v):
    """Rotation vector (..., 3) -> (..., 3, 3), by the matrix exponential of its skew matrix."""
    _check_last(v, (3,), "axis-angle")
    return torch.linalg.matrix_exp(_skew(v))


@numpy_or_torch
def matrix_to_axis_angle(R):
    """(..., 3, 3) -> rotation vector (..., 3) with angle in [0, pi]."""
    q = matrix_to_quat_xyzw(R)
    xyz, w = q[..., :3], q[..., 3:4]
    n = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(n, w)
    # angle / n tends to 2 / w for tiny rotations; avoid 0/0 there.
    scale = torch.where(n > 1e-8, angle / n.clamp_min(1e-300), 2.0 / w)
    return xyz * scale


@numpy_or_torch
def rot6d_to_matrix(d6):
    """6-D representation (..., 6) -> (..., 3, 3) by Gram-Schmidt on the two columns."""
    _check_last(d6, (6,), "6-D rotation")
    a1, a2 = d6[..., :3], d6[..., 3:]
    n1 = a1.norm(dim=-1, keepdim=True)
    b1 = a1 / n1
    a2p = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    n2 = a2p.norm(dim=-1, keepdim=True)
    if bool((n1 < 1e-12).any() or (n2 < 1e-12).any()):
        raise ValueError(
            "6-D rotation has a zero or collinear column; it does not define a rotation"
        )
    b2 = a2p / n2
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


@numpy_or_torch
def matrix_to_rot6d(R):
    """(..., 3, 3) -> (..., 6): first column then second column."""
    _check_last(R, (3, 3), "rotation")
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


@numpy_or_torch
def nearest_rotation(M):
    """Closest rotation (Frobenius norm) to any 3x3 matrix (..., 3, 3), by SVD.

    Decoded axes are never exactly orthogonal; this projects them onto SO(3). The sign
    fix on the last singular vector keeps det = +1 (a reflection is never returned).
    """
    _check_last(M, (3, 3), "matrix")
    U, _, Vh = torch.linalg.svd(M)
    det = torch.linalg.det(U @ Vh)
    D = torch.ones(*M.shape[:-2], 3, dtype=M.dtype, device=M.device)
    D[..., 2] = torch.sign(det) + (det == 0).to(M.dtype)
    return U @ torch.diag_embed(D) @ Vh


@numpy_or_torch
def geodesic_angle(R1, R2):
    """Angle in radians (...) of the rotation R1^T R2, computed stably with atan2."""
    _check_last(R1, (3, 3), "R1")
    _check_last(R2, (3, 3), "R2")
    Rrel = R1.transpose(-1, -2) @ R2
    cos = (Rrel[..., 0, 0] + Rrel[..., 1, 1] + Rrel[..., 2, 2] - 1) / 2
    skew = torch.stack([Rrel[..., 2, 1] - Rrel[..., 1, 2], Rrel[..., 0, 2] - Rrel[..., 2, 0],
                        Rrel[..., 1, 0] - Rrel[..., 0, 1]], -1)  # fmt: skip
    return torch.atan2(skew.norm(dim=-1) / 2, cos)
