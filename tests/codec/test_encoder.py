import numpy as np
import pytest
import torch

from actionimages import Camera, encode_action_images
from actionimages.codec import semantic_points

from .helpers import brute_force_images, random_trajectory, ring_cameras


def identity_camera(size=64, f=100.0):
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    return Camera(K, np.eye(4), size, size)


def test_paper_equations_hand_computed():
    # Camera at the origin looking down +z; end effector 1 m ahead with R = I.
    cam = identity_camera(64)
    p, R = np.array([[0.0, 0.0, 1.0]]), np.eye(3)[None]
    img = encode_action_images(p, R, np.array([1.0]), [cam])[0, 0]  # (64, 64, 3)
    s = 0.05 * 64  # sigma in pixels
    # pos projects to (32, 32), the corner shared by pixels (31,31), (31,32), (32,31), (32,32).
    expected = np.exp(-(0.5**2 + 0.5**2) / (2 * s * s))
    np.testing.assert_allclose(img[31:33, 31:33, 0], expected, rtol=1e-6)
    # up = p + 0.1 e_x = (0.1, 0, 1) -> u = 32 + 100 * 0.1 = 42: pixel (31, 41) centre is 0.5 away.
    np.testing.assert_allclose(img[31, 41, 2], expected, rtol=1e-6)
    # normal = p - 0.1 e_z = (0, 0, 0.9): same pixel as pos, since it lies on the optical axis.
    np.testing.assert_allclose(img[31, 31, 1], expected, rtol=1e-6)
    # Blue background is 0.25 * g where the up Gaussian is <= 0.25.
    assert img[0, 0, 2] == pytest.approx(0.25)
    # A red pixel 10 px to the right of the peak: exp(-(10.5^2 + 0.5^2) / 2 s^2).
    np.testing.assert_allclose(img[31, 42, 0], np.exp(-(10.5**2 + 0.5**2) / (2 * s * s)), rtol=1e-5)


@pytest.mark.parametrize("layout", ["paper", "official"])
def test_matches_brute_force_reference(layout):
    cams = ring_cameras(3, (48, 64))
    pos, rot, g = random_trajectory(6, seed=3)
    g[:3] = [0.0, 0.4, 0.6]
    ours = encode_action_images(pos, rot, g, cams, layout=layout)
    ref = brute_force_images(pos, rot, g, cams, layout=layout)
    assert ours.shape == (3, 6, 48, 64, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=2e-7)


@pytest.mark.parametrize("g", [0.0, 0.5, 1.0])
def test_gripper_level_in_blue_background(g):
    cams = ring_cameras(2, 64)
    pos, rot, _ = random_trajectory(3, seed=1)
    img = encode_action_images(pos, rot, np.full(3, g), cams)
    blue = img[..., 2]
    background = blue[blue <= 0.25]
    np.testing.assert_allclose(background, 0.25 * g, atol=1e-7)
    assert (blue > 0.25).any()  # the up blob is there


def test_official_layout_swaps_axes_and_binarises_gripper():
    pos, rot, _ = random_trajectory(2, seed=5)
    paper = semantic_points(torch.tensor(pos), torch.tensor(rot), 0.1, "paper")
    official = semantic_points(torch.tensor(pos), torch.tensor(rot), 0.1, "official")
    ex, ez = torch.tensor(rot[:, :, 0]), torch.tensor(rot[:, :, 2])
    torch.testing.assert_close(paper[:, 1], torch.tensor(pos) - 0.1 * ez)
    torch.testing.assert_close(official[:, 1], torch.tensor(pos) + 0.1 * ex)
    torch.testing.assert_close(official[:, 2], torch.tensor(pos) - 0.1 * ez)
    cams = ring_cameras(2, 48)
    img = encode_action_images(pos, rot, np.array([0.4, 0.6]), cams, layout="official")
    assert np.median(img[:, 0, ..., 2]) == 0.0
    assert np.median(img[:, 1, ..., 2]) == pytest.approx(0.25)


def test_point_behind_camera_draws_nothing_and_is_flagged():
    cam = identity_camera(32)
    pos = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    img, valid = encode_action_images(
        pos, np.stack([np.eye(3)] * 2), np.array([0.5, 0.5]), [cam], return_valid=True
    )
    assert valid.shape == (1, 2, 3)
    assert not valid[0, 0].any() and valid[0, 1].all()
    assert img[0, 0, ..., :2].max() == 0.0
    np.testing.assert_allclose(img[0, 0, ..., 2], 0.125)  # gripper still encoded
    assert img[0, 1, ..., 0].max() > 0.9


def test_point_outside_image_draws_its_tail_only():
    cam = identity_camera(32, f=100.0)
    # x = -0.2 at z = 1 -> u = 16 - 20 = -4: four pixels left of the image.
    img = encode_action_images(np.array([[-0.2, 0.0, 1.0]]), np.eye(3)[None], np.ones(1), [cam])[
        0, 0
    ]
    s = 0.05 * 32
    np.testing.assert_allclose(img[15, 0, 0], np.exp(-(4.5**2 + 0.5**2) / (2 * s * s)), rtol=1e-5)
    assert img[..., 0].argmax() % 32 == 0  # brightest red pixel is on the left edge


def test_numpy_and_torch_agree_and_types_follow_input():
    cams = ring_cameras(2, 40)
    pos, rot, g = random_trajectory(4, seed=2)
    a = encode_action_images(pos, rot, g, cams)
    b = encode_action_images(torch.tensor(pos), torch.tensor(rot), torch.tensor(g), cams)
    c = encode_action_images(
        torch.tensor(pos, dtype=torch.float32),
        torch.tensor(rot, dtype=torch.float32),
        torch.tensor(g),
        cams,
    )
    assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
    np.testing.assert_allclose(b.numpy(), a, atol=1e-7)
    np.testing.assert_allclose(c.numpy(), a, atol=1e-4)  # float32 poses: sub-pixel rounding only


def test_moving_cameras_and_out_buffer():
    cams = ring_cameras(2, 40)
    pos, rot, g = random_trajectory(3, seed=4)
    static = encode_action_images(pos, rot, g, cams)
    moving = encode_action_images(pos, rot, g, [[c] * 3 for c in cams])
    np.testing.assert_array_equal(static, moving)
    buf = np.full((2, 3, 40, 40, 3), np.nan, dtype=np.float32)
    out = encode_action_images(pos, rot, g, cams, out=buf)
    assert out is buf
    np.testing.assert_array_equal(buf, static)
    with pytest.raises(ValueError, match="out must be"):
        encode_action_images(pos, rot, g, cams, out=np.zeros((1, 3, 40, 40, 3), np.float32))


def test_sigma_uses_the_shorter_image_side():
    K = np.array([[100.0, 0, 40], [0, 100.0, 20], [0, 0, 1]])
    cam = Camera(K, np.eye(4), 40, 80)
    img = encode_action_images(np.array([[0.0, 0.0, 1.0]]), np.eye(3)[None], np.ones(1), [cam])[
        0, 0
    ]
    s = 0.05 * 40
    np.testing.assert_allclose(img[19, 30, 0], np.exp(-(9.5**2 + 0.5**2) / (2 * s * s)), rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(position=np.zeros((3, 2))), "position must have shape"),
        (dict(rotation=np.zeros((2, 3, 3))), "rotation must have shape"),
        (dict(gripper=np.zeros(4)), "gripper must have shape"),
        (dict(position=np.full((3, 3), np.nan)), "NaN"),
        (dict(layout="other"), "layout"),
        (dict(sigma=0.0), "sigma"),
        (dict(axis_length=-1.0), "axis_length"),
        (dict(cameras=[]), "at least one camera"),
    ],
)
def test_bad_input_raises_clear_value_error(kwargs, match):
    args = dict(
        position=np.zeros((3, 3)),
        rotation=np.stack([np.eye(3)] * 3),
        gripper=np.ones(3),
        cameras=ring_cameras(2, 16),
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        encode_action_images(**args)


def test_official_layout_images_decode_without_the_half_pixel_bias():
    """Release-style images (integer pixel grid, ``brute_force_images``) read back exactly."""
    from actionimages.codec.decoder import decode_action_images

    cams = ring_cameras(3, 96)
    pos, rot, g = random_trajectory(8, seed=5)
    ref = brute_force_images(pos, rot, g, cams, layout="official").astype(np.float32)
    dec = decode_action_images(ref, cams, layout="official")
    assert np.abs(dec.position - pos).max() < 5e-4  # the old reading was 2.5-3 mm off
