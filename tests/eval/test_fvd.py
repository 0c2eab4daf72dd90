"""FVD: Fréchet distance closed forms, I3D padding/shapes, weight loading."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from safetensors.torch import save_file

from actionimages.eval.fvd import (
    I3D,
    Unit3D,
    _max_pool_same,
    convert_i3d_weights,
    frechet_distance,
    fvd,
    fvd_features,
    load_i3d,
    preprocess,
)


@pytest.fixture(scope="module")
def model() -> I3D:
    return I3D.random_init(0)


@pytest.fixture(scope="module")
def videos() -> np.ndarray:
    return np.random.default_rng(5).random((3, 8, 32, 32, 3))


def test_frechet_1d_closed_form():
    # a: mean 1, unbiased variance 2; b: mean 5, variance 8.
    # d = (1 - 5)^2 + (sqrt(2) - sqrt(8))^2 = 16 + 2 = 18
    assert frechet_distance([[0.0], [2.0]], [[3.0], [7.0]]) == pytest.approx(18.0, abs=1e-9)


def test_frechet_diagonal_closed_form():
    a = np.array([[1.0, 1], [1, -1], [-1, 1], [-1, -1]])  # mean 0, cov diag(4/3, 4/3)
    b = a * [2.0, 3.0] + [1.0, 0.0]  # mean (1, 0), cov diag(16/3, 12)
    # 1 + (sqrt(4/3) - sqrt(16/3))^2 + (sqrt(4/3) - sqrt(12))^2 = 1 + 4/3 + 16/3
    assert frechet_distance(a, b) == pytest.approx(1 + 20 / 3, abs=1e-9)
    assert frechet_distance(b, a) == pytest.approx(1 + 20 / 3, abs=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-12)


def test_frechet_full_covariance_matches_sqrtm(rng):
    a = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4))
    b = rng.normal(size=(60, 4)) @ rng.normal(size=(4, 4)) + 0.5
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real
    )
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)


def test_frechet_singular_covariances_stay_real(rng):
    # 5 samples in 20 dimensions: rank-4 covariances, where sqrtm is ill-conditioned.
    a = rng.normal(size=(5, 20))
    d = frechet_distance(a, a + 3.0)  # a shift only: d = |shift|^2 = 20 * 9
    assert math.isfinite(d) and d == pytest.approx(180.0, rel=1e-6)


def test_frechet_input_errors():
    with pytest.raises(ValueError, match="at least 2 videos"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="equal D"):
        frechet_distance(np.zeros((3, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))


def test_same_padding_matches_tensorflow():
    unit = Unit3D(1, 1, (1, 1, 3), (1, 1, 2)).eval().requires_grad_(False)
    unit.conv.weight.fill_(1.0)
    bn = 1 / math.sqrt(1 + 1e-3)  # fresh BatchNorm in eval: x / sqrt(1 + eps)
    # width 8, kernel 3, stride 2 -> 4 outputs, 1 padded column, after: sums 3, 3, 3, 2
    out = unit(torch.ones(1, 1, 1, 1, 8)).flatten()
    assert out.tolist() == pytest.approx([3 * bn, 3 * bn, 3 * bn, 2 * bn])
    # width 7 -> 4 outputs, 2 padded columns, one each side: sums 2, 3, 3, 2
    out = unit(torch.ones(1, 1, 1, 1, 7)).flatten()
    assert out.tolist() == pytest.approx([2 * bn, 3 * bn, 3 * bn, 2 * bn])
    # SAME max-pool ignores padding (zero padding would give 0 here)
    pooled = _max_pool_same(-torch.ones(1, 1, 3, 5, 5), (3, 3, 3), (2, 2, 2))
    assert pooled.shape == (1, 1, 2, 3, 3) and bool((pooled == -1).all())


def test_preprocess_is_the_standard_one():
    v = np.zeros((2, 3, 40, 50, 3), dtype=np.uint8)
    v[:, :, :, :, 1] = 255
    x = preprocess(v)
    assert x.shape == (2, 3, 3, 224, 224)  # (N, C, T, H, W)
    # resizing a constant image keeps it constant (up to float rounding)
    assert torch.allclose(x[:, 0], torch.tensor(-1.0)) and torch.allclose(
        x[:, 1], torch.tensor(1.0)
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preprocess(v.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(N, T, H, W, 3\)"):
        preprocess(v[0])


def test_i3d_output_shapes(model, videos):
    logits = fvd_features(model, videos[:1])  # the default 224x224 path, one 8-frame clip
    assert logits.shape == (1, 400) and np.isfinite(logits).all()
    pooled = fvd_features(model, videos[:2], features="pool", resolution=32)
    assert pooled.shape == (2, 1024) and (pooled >= 0).all()  # averages of ReLU outputs
    # batching does not change the features
    one = fvd_features(model, videos, batch_size=1, resolution=32)
    three = fvd_features(model, videos, batch_size=3, resolution=32)
    np.testing.assert_allclose(one, three, rtol=1e-4, atol=1e-5)


def test_fvd_zero_for_same_set_and_grows_with_shift(model, videos):
    feats = fvd_features(model, videos, resolution=32)
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    small = fvd_features(model, np.clip(videos + 0.05, 0, 1), resolution=32)
    large = fvd_features(model, np.clip(videos + 0.4, 0, 1), resolution=32)
    d_small, d_large = frechet_distance(feats, small), frechet_distance(feats, large)
    assert 0 < d_small < d_large
    with pytest.raises(ValueError, match="at least 2 videos"):
        fvd(model, videos[:1], videos)


def _port_layout(state: dict) -> dict:
    """Rename this module's keys to those of the common PyTorch I3D port."""
    out = {}
    for k, v in state.items():
        k = k.replace(".conv.", ".conv3d.").replace(".branch0.", ".b0.")
        k = k.replace(".branch3.", ".b3b.")
        for b in ("1a", "1b", "2a", "2b"):
            k = k.replace(f".branch{b}.", f".b{b}.")
        out[k] = v
    return out


def test_weights_round_trip(tmp_path, model, videos):
    state = {k: v for k, v in model.state_dict().items() if "num_batches" not in k}
    # distinct BatchNorm statistics, so a mix-up of keys would show in the outputs
    gen = torch.Generator().manual_seed(1)
    for k in state:
        if k.endswith("running_var") or k.endswith("bn.weight"):
            state[k] = 0.5 + torch.rand(state[k].shape, generator=gen)
    ref = I3D()
    ref.load_state_dict(state, strict=False)
    want = fvd_features(ref, videos[:1], resolution=32)
    save_file(state, str(tmp_path / "i3d.safetensors"))
    got = fvd_features(load_i3d(tmp_path / "i3d.safetensors"), videos[:1], resolution=32)
    np.testing.assert_array_equal(got, want)
    port = _port_layout(model.state_dict() | state)
    assert "Mixed_4c.b1b.conv3d.weight" in port
    torch.save(port, tmp_path / "rgb_imagenet.pt")
    out = convert_i3d_weights(tmp_path / "rgb_imagenet.pt", tmp_path / "c.safetensors")
    np.testing.assert_array_equal(fvd_features(load_i3d(out), videos[:1], resolution=32), want)


def test_missing_and_wrong_weights(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="Kinetics-400 Inception-I3D") as err:
        load_i3d(tmp_path / "none.pt")
    assert "--i3d-weights" in str(err.value)
    state = dict(model.state_dict())
    del state["Mixed_5c.branch2b.bn.running_mean"]
    state["head.fc.weight"] = torch.zeros(2)
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match=r"missing \['Mixed_5c.branch2b.bn.running_mean'\]"):
        load_i3d(tmp_path / "w.safetensors")
    state = dict(model.state_dict())
    state["logits.conv.weight"] = torch.zeros(600, 1024, 1, 1, 1)
    save_file(state, str(tmp_path / "k600.safetensors"))
    with pytest.raises(ValueError, match="400-class"):
        load_i3d(tmp_path / "k600.safetensors")
