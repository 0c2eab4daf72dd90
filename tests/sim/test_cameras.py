"""OpenGL <-> OpenCV camera conversion, pose ranges, and sub-pixel agreement with renders."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

from actionimages.geometry import Camera
from actionimages.sim.cameras import (
    CAMERA_RANGES,
    STATIC_VIEWS,
    VIEW_PRESETS,
    CameraRange,
    camera_from_gl,
    camera_to_gl,
    pybullet_camera,
    sample_static_cameras,
    sample_view,
    static_camera,
    wrist_camera,
)
from actionimages.sim.scene import render
from actionimages.sim.variation import Lighting


def _random_camera(rng, h=96, w=128) -> Camera:
    eye = rng.uniform([0.8, -0.6, 0.3], [1.5, 0.6, 1.2])
    cam = Camera.look_at(
        eye, rng.uniform(-0.1, 0.1, 3), fov_y_deg=rng.uniform(30, 70), height=h, width=w
    )
    K = cam.K.copy()
    K[0, 0] *= rng.uniform(0.9, 1.1)  # non-square pixels, off-centre principal point
    K[:2, 2] += rng.uniform(-5, 5, 2)
    return Camera(K, cam.world_to_camera, h, w)


def test_gl_round_trip_is_exact(rng):
    for _ in range(20):
        cam = _random_camera(rng)
        for tiny in (True, False):
            view, proj = camera_to_gl(cam, tiny_renderer=tiny)
            back = camera_from_gl(view, proj, cam.height, cam.width, tiny_renderer=tiny)
            np.testing.assert_allclose(back.K, cam.K, atol=1e-9)
            np.testing.assert_allclose(back.world_to_camera, cam.world_to_camera, atol=1e-12)


def test_conversion_agrees_with_pybullets_own_matrix_builders(rng):
    """PyBullet's computeViewMatrix/ProjectionMatrixFOV give the OpenCV look-at camera."""
    for _ in range(10):
        eye, target = rng.uniform(0.5, 1.5, 3), rng.uniform(-0.2, 0.2, 3)
        fov, h, w = rng.uniform(30, 80), int(rng.integers(32, 300)), int(rng.integers(32, 300))
        ours = Camera.look_at(eye, target, (0, 0, 1), fov_y_deg=fov, height=h, width=w)
        view = p.computeViewMatrix(list(eye), list(target), [0, 0, 1])
        proj = p.computeProjectionMatrixFOV(fov, w / h, 0.02, 6.0)
        theirs = camera_from_gl(view, proj, h, w, tiny_renderer=False)
        np.testing.assert_allclose(theirs.world_to_camera, ours.world_to_camera, atol=1e-6)
        np.testing.assert_allclose(theirs.K, ours.K, rtol=1e-6, atol=1e-6)
        # With the renderer's half-pixel shift folded in, K moves by (+0.5, -0.5).
        shifted = pybullet_camera(eye, target, (0, 0, 1), fov, h, w)
        np.testing.assert_allclose(shifted.K[:2, 2] - ours.K[:2, 2], [0.5, -0.5], atol=1e-6)


def test_camera_from_gl_rejects_orthographic_matrices():
    ortho = np.eye(4).T.reshape(-1)
    with pytest.raises(ValueError, match="perspective"):
        camera_from_gl(np.eye(4).reshape(-1), ortho, 64, 64)


def _marker_scene(points: np.ndarray, radius: float) -> tuple[int, list[int]]:
    client = p.connect(p.DIRECT)
    vis = p.createVisualShape(p.GEOM_SPHERE, radius=radius, physicsClientId=client)
    bodies = [
        p.createMultiBody(0, -1, vis, list(map(float, q)), physicsClientId=client) for q in points
    ]
    return client, bodies


def _marker_errors(cameras: list[Camera], points: np.ndarray, radius: float, bodies, client):
    """(N, 2) mask centroid minus projected centre (pixels) of every cleanly visible sphere.

    Spheres cut by the image border or overlapping another sphere's image are skipped.
    """
    errors = []
    for cam in cameras:
        seg = render(client, cam, Lighting(), segmentation=True)["segmentation"]
        uv, depth = cam.project(points)
        r_px = cam.K[0, 0] * radius / np.maximum(depth, 1e-6) + 2.0  # image radius + margin
        for k, (body, q, d) in enumerate(zip(bodies, uv, depth, strict=True)):
            inside = r_px[k] < q[0] < cam.width - r_px[k] and r_px[k] < q[1] < cam.height - r_px[k]
            others = np.delete(np.arange(len(points)), k)
            apart = (np.linalg.norm(uv[others] - q, axis=1) > r_px[others] + r_px[k]).all()
            if d <= 0.05 or not inside or not apart:
                continue
            ii, jj = np.nonzero(seg == body)
            assert len(ii) >= 4, "marker in view but not rendered"
            centroid = np.array([jj.mean() + 0.5, ii.mean() + 0.5])  # pixel centres
            errors.append(centroid - q)
    return np.array(errors)


@pytest.mark.parametrize("range_name", ["train", "heldout"])
def test_rendered_markers_land_where_cameras_project_them(range_name):
    """Sub-pixel: without the TinyRenderer half-pixel correction the bias would be 0.7 px.

    Single centroids carry quantisation noise (a sphere covers ~30 pixels), so the test
    bounds each error loosely and the mean error (the systematic part) tightly.
    """
    rng = np.random.default_rng(7)
    points = np.array(
        [[x, y, z] for x in (0.35, 0.55, 0.75) for y in (-0.2, 0.0, 0.2) for z in (0.02, 0.2)]
    )
    client, bodies = _marker_scene(points, 0.015)
    try:
        cams = []
        for _ in range(2):
            cams += list(
                sample_static_cameras(
                    STATIC_VIEWS, 160, 200, rng, CAMERA_RANGES[range_name]
                ).values()
            )
        hand = np.eye(4)
        hand[:3, :3] = np.diag([1.0, -1.0, -1.0])  # pointing down over the table
        hand[:3, 3] = [0.55, 0.0, 0.45]
        cams.append(wrist_camera(hand, 160, 200))
        err = _marker_errors(cams, points, 0.015, bodies, client)
        assert len(err) > 50
        assert np.abs(err).max() < 0.5, np.abs(err).max()
        assert np.linalg.norm(err.mean(axis=0)) < 0.1, err.mean(axis=0)
    finally:
        p.disconnect(client)


def test_ranges_are_disjoint_in_azimuth_and_sampling_is_seeded():
    train, held = CameraRange.preset("train"), CameraRange.preset("heldout")
    assert held.azimuth_deg[0] > train.azimuth_deg[1]
    rng = np.random.default_rng(0)
    for name in STATIC_VIEWS:
        for _ in range(50):
            t = sample_view(VIEW_PRESETS[name], rng, train)
            h = sample_view(VIEW_PRESETS[name], rng, held)
            assert abs(t.offsets[0]) <= train.azimuth_deg[1] < abs(h.offsets[0])
            assert abs(t.offsets[1]) <= train.elevation_deg[1]
    a = static_camera(
        VIEW_PRESETS["front"], 64, 64, rng=np.random.default_rng(3), camera_range=train
    )
    b = static_camera(
        VIEW_PRESETS["front"], 64, 64, rng=np.random.default_rng(3), camera_range=train
    )
    c = static_camera(
        VIEW_PRESETS["front"], 64, 64, rng=np.random.default_rng(4), camera_range=train
    )
    assert np.array_equal(a.world_to_camera, b.world_to_camera)
    assert not np.allclose(a.world_to_camera, c.world_to_camera)
    fixed = static_camera(VIEW_PRESETS["front"], 64, 64, rng=np.random.default_rng(3),
                          camera_range=CameraRange.preset("fixed"))  # fmt: skip
    assert np.allclose(
        fixed.world_to_camera, static_camera(VIEW_PRESETS["front"], 64, 64).world_to_camera
    )


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown camera range preset 'sideways'"):
        CameraRange.preset("sideways")
    with pytest.raises(ValueError, match="valid"):
        sample_static_cameras(
            ("front", "ceiling"), 32, 32, np.random.default_rng(0), CAMERA_RANGES["train"]
        )
