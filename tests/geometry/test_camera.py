import numpy as np
import pytest
import torch

from actionimages.geometry import (
    Camera,
    look_at,
    pixel_rays,
    plucker_map,
    project_points,
    stack_cameras,
)


def simple_camera(h=80, w=100) -> Camera:
    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    return Camera(K, np.eye(4), h, w)


def test_projection_hand_computed():
    cam = simple_camera()
    uv, depth = cam.project(np.array([[0.1, 0.2, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, -1.0]]))
    # u = fx x / z + cx, v = fy y / z + cy
    np.testing.assert_allclose(uv[:2], [[60.0, 60.0], [50.0, 40.0]])
    np.testing.assert_allclose(depth, [1.0, 2.0, -1.0])
    assert np.isfinite(uv).all()


def test_camera_validation_messages():
    K = np.array([[-100.0, 0, 50], [0, -100.0, 40], [0, 0, 1]])
    with pytest.raises(ValueError, match="positive focal"):
        Camera(K, np.eye(4), 80, 100)
    E = np.eye(4)
    E[:3, :3] *= 2
    with pytest.raises(ValueError, match="proper rotation"):
        Camera(simple_camera().K, E, 80, 100)
    with pytest.raises(ValueError, match="NaN"):
        Camera(np.full((3, 3), np.nan), np.eye(4), 80, 100)
    with pytest.raises(ValueError, match="4x4"):
        Camera(simple_camera().K, np.eye(3), 80, 100)
    with pytest.raises(ValueError, match="positive integers"):
        Camera(simple_camera().K, np.eye(4), 0, 100)
    mirror = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="proper rotation"):
        Camera(simple_camera().K, mirror, 80, 100)


def test_look_at_centres_target_and_keeps_up_up():
    cam = Camera.look_at([1.0, 0.5, 1.0], [0.0, 0.0, 0.3], fov_y_deg=50, height=120, width=160)
    uv, depth = cam.project(np.array([[0.0, 0.0, 0.3], [0.0, 0.0, 0.5]]))
    np.testing.assert_allclose(uv[0], [80.0, 60.0], atol=1e-9)
    assert depth[0] > 0
    assert uv[1, 1] < uv[0, 1]  # a point above the target appears higher (smaller v)
    np.testing.assert_allclose(cam.center, [1.0, 0.5, 1.0], atol=1e-12)
    with pytest.raises(ValueError, match="parallel"):
        look_at([0, 0, 1], [0, 0, 0], up=[0, 0, 1])


def test_resize_and_crop_are_consistent_with_pixels(rng):
    cam = Camera.look_at([0.8, -0.4, 0.9], [0, 0, 0.2], height=96, width=128)
    pts = rng.uniform(-0.2, 0.2, (20, 3)) + [0, 0, 0.2]
    uv, _ = cam.project(pts)
    uv2, _ = cam.resized(48, 256).project(pts)
    np.testing.assert_allclose(uv2, uv * [2.0, 0.5], atol=1e-9)
    uv3, _ = cam.cropped(10, 20, 50, 60).project(pts)
    np.testing.assert_allclose(uv3, uv - [20, 10], atol=1e-9)


def test_dict_round_trip():
    cam = Camera.look_at([0.8, -0.4, 0.9], [0, 0, 0.2], height=96, width=128)
    back = Camera.from_dict(cam.to_dict())
    np.testing.assert_array_equal(back.K, cam.K)
    np.testing.assert_array_equal(back.world_to_camera, cam.world_to_camera)
    assert (back.height, back.width) == (96, 128)
    with pytest.raises(ValueError, match="missing"):
        Camera.from_dict({"K": cam.K.tolist()})


def test_pixel_rays_pass_through_points(rng):
    cam = Camera.look_at([0.8, -0.4, 0.9], [0, 0, 0.2], height=96, width=128)
    pts = rng.uniform(-0.2, 0.2, (20, 3)) + [0, 0, 0.2]
    uv, _depth = cam.project(pts)
    o, d = pixel_rays(uv, cam.K, cam.world_to_camera)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    # The point lies on its ray: o + s d for s = |p - o|.
    s = np.linalg.norm(pts - o, axis=-1, keepdims=True)
    np.testing.assert_allclose(o + s * d, pts, atol=1e-9)


def test_plucker_map_properties():
    cam = Camera.look_at([0.8, -0.4, 0.9], [0, 0, 0.2], height=12, width=16)
    pl = plucker_map(cam.K, cam.world_to_camera, 12, 16)
    assert pl.shape == (12, 16, 6)
    d, m = pl[..., :3], pl[..., 3:]
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose((d * m).sum(-1), 0.0, atol=1e-12)  # moment is perpendicular
    np.testing.assert_allclose(m, np.cross(cam.center, d), atol=1e-12)
    # Relative to itself, the camera sits at the origin: zero moments.
    rel = plucker_map(
        cam.K, cam.world_to_camera, 12, 16, reference_world_to_camera=cam.world_to_camera
    )
    np.testing.assert_allclose(rel[..., 3:], 0.0, atol=1e-12)
    # Pixel (0, 0)'s ray in its own camera frame is K^-1 (0.5, 0.5, 1), normalised.
    ray = np.linalg.inv(cam.K) @ [0.5, 0.5, 1.0]
    np.testing.assert_allclose(rel[0, 0, :3], ray / np.linalg.norm(ray), atol=1e-12)


def test_plucker_relative_map_is_invariant_to_the_world_frame(rng):
    a = Camera.look_at([0.8, -0.4, 0.9], [0, 0, 0.2], height=8, width=10)
    b = Camera.look_at([0.5, 0.7, 1.1], [0, 0, 0.2], height=8, width=10)
    G = look_at([0.3, 0.1, 0.2], [1.0, 2.0, -0.5])  # an arbitrary rigid change of world frame
    Ginv = np.linalg.inv(G)
    rel1 = plucker_map(b.K, b.world_to_camera, 8, 10, reference_world_to_camera=a.world_to_camera)
    rel2 = plucker_map(
        b.K, b.world_to_camera @ Ginv, 8, 10, reference_world_to_camera=a.world_to_camera @ Ginv
    )
    np.testing.assert_allclose(rel1, rel2, atol=1e-10)


def test_batched_projection_torch_matches_numpy(rng):
    cams = [Camera.look_at([0.8, y, 0.9], [0, 0, 0.2], height=64, width=64) for y in (-0.4, 0.4)]
    K, E, _, _ = stack_cameras(cams, 5)  # (V, T, 3, 3), (V, T, 4, 4)
    pts = rng.normal(size=(5, 7, 3)) * 0.1
    uv, depth = project_points(pts[None], K, E)
    uvt, deptht = project_points(torch.tensor(pts)[None], torch.tensor(K), torch.tensor(E))
    assert uv.shape == (2, 5, 7, 2) and depth.shape == (2, 5, 7)
    np.testing.assert_allclose(uvt.numpy(), uv, atol=1e-12)
    np.testing.assert_allclose(deptht.numpy(), depth, atol=1e-12)


def test_stack_cameras_rejects_mixed_sizes_and_wrong_lengths():
    a = simple_camera(80, 100)
    with pytest.raises(ValueError, match="one image size"):
        stack_cameras([a, simple_camera(64, 64)], 3)
    with pytest.raises(ValueError, match="sequence of 3"):
        stack_cameras([[a, a]], 3)
    with pytest.raises(ValueError, match="at least one"):
        stack_cameras([], 3)
