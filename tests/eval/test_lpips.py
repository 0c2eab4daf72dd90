"""LPIPS-Alex: the distance's properties, a hand-computed case, and weight loading."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from actionimages.eval.lpips import (
    LPIPS,
    convert_lpips_weights,
    load_lpips,
    lpips_distance,
)

TV_INDEX = (0, 3, 6, 8, 10)


@pytest.fixture(scope="module")
def model() -> LPIPS:
    return LPIPS.random_init(3)


@pytest.fixture
def frames() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(3, 40, 36, 3, generator=gen), torch.rand(3, 40, 36, 3, generator=gen)


def test_identical_zero_different_positive_symmetric(model, frames):
    a, b = frames
    assert lpips_distance(model, a, a).tolist() == [0.0, 0.0, 0.0]
    d_ab, d_ba = lpips_distance(model, a, b), lpips_distance(model, b, a)
    assert d_ab.shape == (3,) and bool((d_ab > 0).all())
    assert torch.equal(d_ab, d_ba)
    # batching does not change the values; uint8 input is read as /255
    assert torch.allclose(lpips_distance(model, a, b, batch_size=2), d_ab, atol=1e-6)
    a8, b8 = (a * 255).round().to(torch.uint8), (b * 255).round().to(torch.uint8)
    ref = lpips_distance(model, a8.float() / 255, b8.float() / 255)
    assert torch.allclose(lpips_distance(model, a8, b8), ref, atol=1e-6)


def test_hand_computed_first_layer_only():
    """Only conv1 differs between the images: the distance follows by hand."""
    m = LPIPS()
    for conv in m.convs:
        conv.weight.zero_()
        conv.bias.zero_()
    for conv in m.convs[1:]:
        conv.bias[0] = 1.0  # constant activations [1, 0, ...]: identical for both images
    m.convs[0].weight[0, 0, 5, 5] = 1.0  # channel 0 = the (scaled) red value at the centre
    m.convs[0].bias[1] = 1.0  # channel 1 = 1 everywhere
    for head in m.heads:
        head.weight.zero_()
    m.heads[0].weight[0, 0] = 1.0
    m.heads[0].weight[0, 1] = 2.0
    a, b = torch.full((1, 32, 32, 3), 0.75), torch.full((1, 32, 32, 3), 0.25)
    # 0.75 -> 0.5 in [-1, 1] -> (0.5 + 0.030) / 0.458 red; 0.25 -> -0.5 -> negative -> ReLU 0.
    v = 0.53 / 0.458
    n = math.sqrt(v * v + 1)
    # unit features: a = (v, 1) / n, b = (0, 1); head-weighted squared difference
    want = 1.0 * (v / n) ** 2 + 2.0 * (1 / n - 1) ** 2
    assert float(lpips_distance(m, a, b)[0]) == pytest.approx(want, rel=1e-5)
    # scaling a layer's activations leaves the unit-normalised features unchanged
    m.convs[0].weight[0, 0, 5, 5] = 3.0
    m.convs[0].bias[1] = 3.0
    assert float(lpips_distance(m, a, b)[0]) == pytest.approx(want, rel=1e-5)


def test_heads_are_linear_and_features_normalised(model, frames):
    a, b = frames
    base = lpips_distance(model, a, b)
    scaled = LPIPS()
    scaled.load_state_dict(model.state_dict())
    for head in scaled.heads:
        head.weight.mul_(3.0)
    scaled.convs[4].weight.mul_(10.0)  # only rescales the last tap (bias too, below)
    scaled.convs[4].bias.mul_(10.0)
    assert torch.allclose(lpips_distance(scaled, a, b), 3 * base, rtol=1e-4)


def test_input_errors(model, frames):
    a, b = frames
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        lpips_distance(model, a * 2 - 1, b)
    with pytest.raises(ValueError, match="equal"):
        lpips_distance(model, a, b[:, :, :30])
    with pytest.raises(ValueError, match="31x31"):
        lpips_distance(model, a[:, :30, :30], b[:, :30, :30])
    bad = a.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lpips_distance(model, bad, b)


def test_safetensors_round_trip(tmp_path, model, frames):
    path = tmp_path / "lpips.safetensors"
    save_file(model.state_dict(), str(path))
    loaded = load_lpips(path)
    a, b = frames
    assert torch.equal(lpips_distance(loaded, a, b), lpips_distance(model, a, b))


def _official_layout(model: LPIPS) -> tuple[dict, dict]:
    """The state dicts of the two released files, built from ``model``."""
    sd = model.state_dict()
    alexnet = {f"features.{j}.{p}": sd[f"convs.{i}.{p}"] for i, j in enumerate(TV_INDEX)
               for p in ("weight", "bias")}  # fmt: skip
    alexnet["classifier.1.weight"] = torch.zeros(4, 9216)  # the ImageNet head is ignored
    heads = {f"lin{k}.model.1.weight": sd[f"heads.{k}.weight"] for k in range(5)}
    return alexnet, heads


def test_official_files_load_and_convert(tmp_path, model, frames):
    alexnet, heads = _official_layout(model)
    torch.save(alexnet, tmp_path / "alexnet.pth")
    torch.save(heads, tmp_path / "alex.pth")
    a, b = frames
    want = lpips_distance(model, a, b)
    loaded = load_lpips(tmp_path / "alex.pth", alexnet_path=tmp_path / "alexnet.pth")
    assert torch.equal(lpips_distance(loaded, a, b), want)
    out = convert_lpips_weights(
        tmp_path / "alex.pth", tmp_path / "alexnet.pth", tmp_path / "m.safetensors"
    )
    assert torch.equal(lpips_distance(load_lpips(out), a, b), want)


def test_full_lpips_checkpoint_keys(tmp_path, model, frames):
    sd = model.state_dict()
    full = {f"net.slice{i + 1}.{j}.{p}": sd[f"convs.{i}.{p}"] for i, j in enumerate(TV_INDEX)
            for p in ("weight", "bias")}  # fmt: skip
    for k in range(5):  # LPIPS lists every head under two names
        full[f"lin{k}.model.1.weight"] = full[f"lins.{k}.model.1.weight"] = sd[f"heads.{k}.weight"]
    full["scaling_layer.shift"] = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    full["scaling_layer.scale"] = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    torch.save(full, tmp_path / "full.pth")
    a, b = frames
    assert torch.equal(
        lpips_distance(load_lpips(tmp_path / "full.pth"), a, b), lpips_distance(model, a, b)
    )
    full["scaling_layer.scale"] = torch.ones(1, 3, 1, 1)
    torch.save(full, tmp_path / "bad_scale.pth")
    with pytest.raises(ValueError, match=r"scaling_layer\.scale"):
        load_lpips(tmp_path / "bad_scale.pth")


def test_missing_file_says_how_to_get_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"download the LPIPS alex v0\.1") as err:
        load_lpips(tmp_path / "nope.safetensors")
    assert "--lpips-weights" in str(err.value) and "convert_lpips_weights" in str(err.value)


def test_wrong_keys_are_listed(tmp_path, model):
    sd = dict(model.state_dict())
    del sd["heads.2.weight"]
    sd["decoder.weight"] = torch.zeros(3)
    save_file(sd, str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match=r"missing \['heads.2.weight'\].*decoder.weight"):
        load_lpips(tmp_path / "w.safetensors")


def test_bad_shapes_and_negative_heads(tmp_path, model):
    sd = dict(model.state_dict())
    sd["convs.1.weight"] = torch.zeros(192, 64, 3, 3)
    save_file(sd, str(tmp_path / "s.safetensors"))
    with pytest.raises(ValueError, match=r"convs\.1\.weight: shape"):
        load_lpips(tmp_path / "s.safetensors")
    sd = dict(model.state_dict())
    sd["heads.0.weight"] = -sd["heads.0.weight"]
    save_file(sd, str(tmp_path / "n.safetensors"))
    with pytest.raises(ValueError, match="negative"):
        load_lpips(tmp_path / "n.safetensors")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"safetensors or \.pth"):
        load_lpips(tmp_path / "w.npz")
