"""LPIPS perceptual distance (Zhang et al., 2018), AlexNet backbone, v0.1 linear heads.

Usage::

    from actionimages.eval.lpips import load_lpips, lpips_distance

    model = load_lpips("lpips_alex.safetensors")  # or: load_lpips("alex.pth", alexnet_path=...)
    d = lpips_distance(model, pred_frames, true_frames)  # (N, H, W, 3) in [0, 1] -> (N,)

The network: inputs in [-1, 1] are shifted/scaled per channel to ImageNet statistics, run
through AlexNet's convolutional stack (``features``), and the activations after each of
its five ReLUs are unit-normalised along channels. The squared difference of the two
images' normalised activations is weighted per channel by a non-negative 1x1 head,
averaged over space and summed over the five layers.

Weights. The official release is split in two files: the v0.1 heads (``alex.pth`` of the
LPIPS repository, keys ``lin{k}.model.1.weight``) and torchvision's ImageNet AlexNet
(``alexnet-owt-7be5be79.pth``, keys ``features.{0,3,6,8,10}.{weight,bias}``). Either pass
both to :func:`load_lpips`, or merge them once with :func:`convert_lpips_weights` into one
safetensors file. Key mapping onto this module's names:

- ``features.{0,3,6,8,10}.*`` (torchvision) and ``net.slice{1..5}.{0,3,6,8,10}.*`` (a
  full LPIPS checkpoint) -> ``convs.{0..4}.*``;
- ``lin{k}.model.1.weight`` and ``lins.{k}.model.1.weight`` -> ``heads.{k}.weight``;
- ``classifier.*`` (AlexNet's ImageNet head) and ``scaling_layer.*`` are ignored; the
  scaling constants, when present, must equal the built-in ones.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actionimages._arrays import as_tensor

# (in, out, kernel, stride, padding) of AlexNet's five convolutions.
_CONVS = ((3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1),
          (256, 256, 3, 1, 1))  # fmt: skip
_TV_INDEX = (0, 3, 6, 8, 10)  # each conv's position in torchvision's alexnet.features
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
MIN_SIZE = 31  # smaller frames vanish before the second max-pool

_HOW_TO_GET = (
    "download the LPIPS alex v0.1 weights (weights/v0.1/alex.pth in the LPIPS repository, "
    "richzhang/PerceptualSimilarity) and torchvision's alexnet weights "
    '(alexnet-owt-7be5be79.pth), convert with `python -c "from actionimages.eval.lpips '
    "import convert_lpips_weights as c; c('alex.pth', 'alexnet-owt-7be5be79.pth', "
    "'lpips_alex.safetensors')\"`; pass --lpips-weights lpips_alex.safetensors"
)


def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide every pixel's feature vector by its L2 norm (channel axis 1)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS-Alex: ``forward(a, b)`` with ``(N, 3, H, W)`` in [-1, 1] -> ``(N,)`` distances."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride=s, padding=p) for i, o, k, s, p in _CONVS
        )
        self.heads = nn.ModuleList(nn.Conv2d(c[1], 1, 1, bias=False) for c in _CONVS)
        # Constants, not parameters: kept out of the state dict so files need not carry them.
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def random_init(cls, seed: int = 0) -> LPIPS:
        """Random backbone and non-negative random heads, for tests (not a real metric)."""
        model = cls()
        gen = torch.Generator().manual_seed(seed)
        for conv in model.convs:
            fan_in = conv.weight[0].numel()
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * 0.01)
        for head in model.heads:
            head.weight.copy_(torch.rand(head.weight.shape, generator=gen) / head.weight.shape[1])
        return model

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five post-ReLU activations of ``(N, 3, H, W)`` inputs in [-1, 1]."""
        h = (x - self.shift) / self.scale
        out = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # AlexNet max-pools before its second and third convolutions
                h = F.max_pool2d(h, kernel_size=3, stride=2)
            h = F.relu(conv(h))
            out.append(h)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(f"expected two (N, 3, H, W) batches, got {a.shape} and {b.shape}")
        if min(a.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS-Alex needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels")
        total = a.new_zeros(a.shape[0])
        for fa, fb, head in zip(self.taps(a), self.taps(b), self.heads):
            total = total + head((_unit(fa) - _unit(fb)).square()).mean(dim=(1, 2, 3))
        return total


def _read(path: str | Path) -> dict[str, torch.Tensor]:
    from actionimages.eval.weights import read_state_dict

    return read_state_dict(path, f"LPIPS weights: {_HOW_TO_GET}")


_CONV_KEY = re.compile(r"(?:features|net\.slice[1-5])\.(\d+)\.(weight|bias)")
_HEAD_KEY = re.compile(r"lins?\.?(\d)\.model\.\d\.weight")


def _native_name(key: str) -> str | None:
    """This module's name for a source key; None for known keys to skip; "" if unknown."""
    key = key.removeprefix("module.")
    if re.fullmatch(r"(convs\.[0-4]\.(weight|bias)|heads\.[0-4]\.weight)", key):
        return key
    if m := _CONV_KEY.fullmatch(key):
        index = int(m[1])
        return f"convs.{_TV_INDEX.index(index)}.{m[2]}" if index in _TV_INDEX else ""
    if (m := _HEAD_KEY.fullmatch(key)) and int(m[1]) < 5:
        return f"heads.{m[1]}.weight"
    if key.startswith("classifier.") or key.startswith("scaling_layer."):
        return None
    return ""


def _map_state(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for name, const in (("shift", _SHIFT), ("scale", _SCALE)):
        value = raw.get(f"scaling_layer.{name}")
        if value is not None and not torch.allclose(value.flatten().float(), torch.tensor(const)):
            raise ValueError(f"scaling_layer.{name} is {value.flatten().tolist()}, not {const}")
    state: dict[str, torch.Tensor] = {}
    unexpected = []
    for key, value in raw.items():
        name = _native_name(key)
        if name == "":
            unexpected.append(key)
        elif name is not None:
            # LPIPS checkpoints list each head twice (lin{k} and lins.{k}): they must agree.
            if name in state and not torch.equal(state[name], value):
                raise ValueError(f"two different tensors map to {name} (one is {key})")
            state[name] = value
    expected = LPIPS().state_dict()
    missing = sorted(set(expected) - set(state))
    if missing or unexpected:
        raise ValueError(
            f"LPIPS weights do not match: missing {missing}, unexpected {sorted(unexpected)}. "
            f"Expected the backbone and the five heads ({_HOW_TO_GET})"
        )
    for name, value in state.items():
        if value.shape != expected[name].shape:
            raise ValueError(
                f"{name}: shape {tuple(value.shape)}, expected {tuple(expected[name].shape)}"
            )
        if name.startswith("heads.") and bool((value < 0).any()):
            raise ValueError(f"{name} has negative weights: not LPIPS v0.1 linear heads")
    return state


def load_lpips(
    path: str | Path, alexnet_path: str | Path | None = None, device: str | torch.device = "cpu"
) -> LPIPS:
    """Load LPIPS-Alex from one file with backbone and heads, or heads + ``alexnet_path``.

    Raises FileNotFoundError (with download instructions) for a missing file and
    ValueError listing missing/unexpected keys when the files do not fit.
    """
    raw = _read(path)
    if alexnet_path is not None:
        raw = {**_read(alexnet_path), **raw}
    model = LPIPS()
    model.load_state_dict(_map_state(raw))
    return model.to(device)


def convert_lpips_weights(
    heads_path: str | Path, alexnet_path: str | Path, out_path: str | Path
) -> Path:
    """Merge the official heads and torchvision AlexNet files into one safetensors file."""
    from safetensors.torch import save_file

    model = load_lpips(heads_path, alexnet_path)
    out_path = Path(out_path)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_path))
    return out_path


def lpips_distance(model: LPIPS, pred: Any, target: Any, batch_size: int = 32) -> torch.Tensor:
    """LPIPS between frames ``(..., H, W, 3)`` in [0, 1] (or uint8) -> CPU tensor ``(...)``."""
    a, b = as_tensor(pred), as_tensor(target)
    if a.shape != b.shape or a.ndim < 3 or a.shape[-1] != 3:
        raise ValueError(
            f"pred and target must be equal (..., H, W, 3) frames, got {a.shape} and {b.shape}"
        )
    frames = []
    for name, x in (("pred", a), ("target", b)):
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or inf")
        if x.numel() and (float(x.min()) < -1e-3 or float(x.max()) > 1 + 1e-3):
            raise ValueError(
                f"{name} is outside [0, 1] (range {float(x.min()):.3g}..{float(x.max()):.3g}); "
                "map [-1, 1] images with (x + 1) / 2 first"
            )
        frames.append(x.reshape(-1, *x.shape[-3:]))
    param = next(model.parameters())
    out = []
    with torch.no_grad():
        for i in range(0, len(frames[0]), batch_size):
            # channels-last [0, 1] -> (N, 3, H, W) in [-1, 1], the range LPIPS was trained on
            x, y = (f[i : i + batch_size].to(param).permute(0, 3, 1, 2) * 2 - 1 for f in frames)
            out.append(model(x, y).cpu())
    return torch.cat(out).reshape(a.shape[:-3]) if out else torch.zeros(a.shape[:-3])
