"""Fuzzing: random shapes, NaN/inf and degenerate cameras give a result or a ValueError.

``scripts/fuzz_codec.py`` runs the same generator 10,000 times; this test runs a
few hundred examples so the suite stays fast.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from actionimages import Camera, decode_action_images, encode_action_images


def fuzz_case(seed: int) -> str:
    """One fuzzed encode + decode; raises only ValueError, never returns NaN.

    Returns which path the call took (for the fuzz script's coverage summary).
    """
    rng = np.random.default_rng(seed)
    special = [np.nan, np.inf, -np.inf, 0.0, 1e30, -1e-30]

    def maybe_poison(a):
        if a.size and rng.random() < 0.05:
            a = a.copy()
            a.flat[rng.integers(a.size)] = rng.choice(special)
        return a

    T = 0 if rng.random() < 0.03 else int(rng.integers(1, 6))
    pos_shape = [(T, 3), (T, 2), (3,), (T, 3, 1)][rng.integers(4) if rng.random() < 0.2 else 0]
    position = maybe_poison(
        rng.normal(0, 0.3, pos_shape) + [0, 0, 0.0][: pos_shape[-1]]
        if pos_shape[-1] <= 3
        else rng.normal(size=pos_shape)
    )
    rotation = maybe_poison(
        rng.normal(size=(T, 3, 3))
        if rng.random() < 0.3
        else np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
    )
    gripper = maybe_poison(rng.uniform(-0.5, 1.5, T if rng.random() > 0.1 else T + 1))
    size = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
    cams = []
    for _ in range(1 if rng.random() < 0.1 else int(rng.integers(2, 5))):
        K = np.array(
            [
                [rng.uniform(-50, 200), 0, size[1] / 2],
                [0, rng.uniform(1, 200), size[0] / 2],
                [0, 0, 1],
            ]
        )
        eye = maybe_poison(rng.normal(0, 1, 3) + [0, 0, 1.5])
        try:
            cams.append(
                Camera.look_at(eye, [0, 0, 0], height=size[0], width=size[1])
                if rng.random() < 0.7
                else Camera(maybe_poison(K), np.eye(4), *size)
            )
        except ValueError:
            continue  # a degenerate camera was refused with a clear error: fine
    if not cams:
        return "camera refused"
    sigma = (
        0.05
        if rng.random() < 0.8
        else float(rng.choice([0.0, -1.0, np.nan, 1e-4, 0.01, 0.2, 10.0]))
    )
    try:
        imgs = encode_action_images(position, rotation, gripper, cams, sigma=sigma)
    except ValueError:
        return "encode refused"
    assert np.isfinite(imgs).all() and imgs.min() >= 0 and imgs.max() <= 1
    if rng.random() < 0.3:
        imgs = maybe_poison(imgs + rng.normal(0, 0.1, imgs.shape).astype(np.float32))
    try:
        out = decode_action_images(imgs, cams, method=str(rng.choice(["triangulate", "paper"])))
    except ValueError:
        return "decode refused"
    for name in ("position", "rotation", "gripper", "confidence", "points"):
        assert np.isfinite(getattr(out, name)).all(), name
    return "decoded"


@settings(max_examples=300)
@given(st.integers(0, 2**32 - 1))
def test_fuzzed_calls_raise_only_value_errors(seed):
    fuzz_case(seed)
