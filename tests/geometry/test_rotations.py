import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from actionimages.geometry import (
    axis_angle_to_matrix,
    euler_xyz_to_matrix,
    geodesic_angle,
    matrix_to_axis_angle,
    matrix_to_euler_xyz,
    matrix_to_quat_xyzw,
    matrix_to_rot6d,
    nearest_rotation,
    quat_xyzw_to_matrix,
    rot6d_to_matrix,
)

seeds = st.integers(0, 2**31 - 1)


def random_rotations(seed: int, n: int = 64) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()


@given(seeds)
def test_quaternion_matches_scipy(seed):
    R = random_rotations(seed)
    q_scipy = Rotation.from_matrix(R).as_quat()  # xyzw
    q = matrix_to_quat_xyzw(R)
    # q and -q are the same rotation; ours has w >= 0.
    q_scipy = np.where(q_scipy[:, 3:] < 0, -q_scipy, q_scipy)
    np.testing.assert_allclose(q, q_scipy, atol=1e-10)
    np.testing.assert_allclose(quat_xyzw_to_matrix(q_scipy), R, atol=1e-12)


def test_quaternion_near_180_degrees():
    # Rotations by pi have w = 0: the trace-based formula alone would divide by ~0.
    R = Rotation.from_rotvec(np.pi * np.eye(3)).as_matrix()
    np.testing.assert_allclose(quat_xyzw_to_matrix(matrix_to_quat_xyzw(R)), R, atol=1e-12)


@given(seeds)
def test_euler_xyz_matches_scipy(seed):
    R = random_rotations(seed)
    angles = Rotation.from_matrix(R).as_euler("xyz")
    np.testing.assert_allclose(euler_xyz_to_matrix(angles), R, atol=1e-12)
    np.testing.assert_allclose(euler_xyz_to_matrix(matrix_to_euler_xyz(R)), R, atol=1e-10)


def test_euler_xyz_gimbal_lock_round_trip():
    angles = np.array([[0.3, np.pi / 2, -0.2], [1.0, -np.pi / 2, 0.5]])
    R = euler_xyz_to_matrix(angles)
    np.testing.assert_allclose(euler_xyz_to_matrix(matrix_to_euler_xyz(R)), R, atol=1e-7)


@given(seeds)
def test_axis_angle_matches_scipy(seed):
    R = random_rotations(seed)
    v = Rotation.from_matrix(R).as_rotvec()
    np.testing.assert_allclose(axis_angle_to_matrix(v), R, atol=1e-12)
    np.testing.assert_allclose(matrix_to_axis_angle(R), v, atol=1e-9)
    np.testing.assert_allclose(matrix_to_axis_angle(np.eye(3)), np.zeros(3), atol=1e-15)


@given(seeds)
def test_rot6d_round_trip(seed):
    R = random_rotations(seed)
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(R)), R, atol=1e-12)
    # Any non-degenerate 6-vector gives a proper rotation.
    d6 = np.random.default_rng(seed).normal(size=(10, 6))
    M = rot6d_to_matrix(d6)
    np.testing.assert_allclose(
        M @ np.swapaxes(M, -1, -2), np.broadcast_to(np.eye(3), M.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(M), 1.0, atol=1e-12)


@given(seeds)
def test_nearest_rotation(seed):
    rng = np.random.default_rng(seed)
    R = random_rotations(seed, 16)
    np.testing.assert_allclose(nearest_rotation(R), R, atol=1e-12)  # already a rotation
    noisy = R + 0.05 * rng.normal(size=R.shape)
    Q = nearest_rotation(noisy)
    np.testing.assert_allclose(np.linalg.det(Q), 1.0, atol=1e-10)
    # Closest in Frobenius norm: no other nearby rotation is closer.
    others = Rotation.from_rotvec(0.01 * rng.normal(size=(16, 3))).as_matrix() @ Q
    assert (
        np.linalg.norm(noisy - Q, axis=(1, 2))
        <= np.linalg.norm(noisy - others, axis=(1, 2)) + 1e-12
    ).all()
    # A reflection becomes a proper rotation, never a reflection.
    assert np.linalg.det(nearest_rotation(np.diag([1.0, 1.0, -1.0]))) > 0


def test_geodesic_angle_matches_scipy(rng):
    R1, R2 = random_rotations(1), random_rotations(2)
    expected = (Rotation.from_matrix(R1).inv() * Rotation.from_matrix(R2)).magnitude()
    np.testing.assert_allclose(geodesic_angle(R1, R2), expected, atol=1e-10)


def test_torch_and_numpy_agree():
    R = random_rotations(3)
    Rt = torch.tensor(R)
    for fn in (matrix_to_quat_xyzw, matrix_to_euler_xyz, matrix_to_axis_angle, matrix_to_rot6d):
        out = fn(Rt)
        assert isinstance(out, torch.Tensor)
        np.testing.assert_allclose(out.numpy(), fn(R), atol=1e-12)


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="zero norm"):
        quat_xyzw_to_matrix(np.zeros(4))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        quat_xyzw_to_matrix(np.ones(3))
    with pytest.raises(ValueError, match="collinear"):
        rot6d_to_matrix(np.array([1.0, 0, 0, 2.0, 0, 0]))
    with pytest.raises(ValueError):
        nearest_rotation(np.eye(4))
