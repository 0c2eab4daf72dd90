"""Multi-view behaviour cloning with action chunks (issue 7, baseline 2).

From the current frame of V static views, the end-effector state and the instruction,
the network predicts the absolute end-effector poses of the next ``chunk`` control
steps (position, 6-D rotation, gripper). Each view goes through one shared small CNN
(stride-2 convolutions, GroupNorm, SiLU) ending in spatial-softmax keypoints; the
camera's intrinsics and extrinsics are added to its feature, so the same weights serve
any camera pose. View features are averaged (any number of views, in any order), then
joined with the proprioception and a pooled sentence embedding and read out by an MLP.

Pose vector (``POSE_DIM`` = 10): position normalised with the training set's mean/std
(stored as buffers, so they travel in ``model.safetensors``), the rotation's first two
columns, and the gripper mapped from [0, 1] to [-1, 1]. The head predicts the change
from the current pose in that space, so an untrained network holds still.

Checkpoint folder: ``config.json``, ``model.safetensors``, ``stats.json`` (written by
:func:`actionimages.baselines.bc_train.train_bc`); :class:`BCPolicy` loads one.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from actionimages._presets import lookup
from actionimages.geometry.rotations import matrix_to_rot6d, nearest_rotation, rot6d_to_matrix

POSE_DIM = 10  # position (3) + rot6d (6) + gripper (1)
CAMERA_DIM = 16  # fx/W, fy/H, cx/W, cy/H, world_to_camera rotation (9) and translation (3)
CHECKPOINT_KIND = "actionimages-bc"


@dataclass(frozen=True)
class BCConfig:
    """Network, inputs and optimisation of the behaviour-cloning baseline."""

    image_size: int = 64  # square model input; other sizes are scaled and centre-cropped
    num_views: int = 2  # views per training clip (random ones of the dataset's)
    chunk: int = 8  # predicted future steps
    channels: tuple[int, ...] = (32, 64, 128, 128)
    strides: tuple[int, ...] = (2, 2, 2, 1)
    groups: int = 8  # GroupNorm groups
    pooling: str = "spatial_softmax"  # or "mean" (global average pooling)
    keypoints: int = 64
    camera_conditioning: bool = True
    width: int = 256
    hidden: int = 512
    head_layers: int = 2
    text_encoder: str = "minilm"  # "minilm" or "hash" (tests)
    text_dim: int = 384
    text_length: int = 32
    view_dropout: float = 0.1  # chance of hiding a view from the pooling (one always stays)
    random_shift: int = 4  # pixels of random image translation during training
    loss: str = "l1"  # "l1" or "mse" on the pose vector
    gripper_weight: float = 1.0
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    log_every: int = 20
    save_every: int = 500

    def __post_init__(self) -> None:
        for name in ("image_size", "num_views", "chunk", "groups", "keypoints", "width",
                     "hidden", "head_layers", "text_dim", "text_length", "log_every",
                     "save_every"):  # fmt: skip
            if int(getattr(self, name)) < 1:
                raise ValueError(f"BCConfig.{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if not self.channels or len(self.channels) != len(self.strides):
            raise ValueError("BCConfig.channels and strides need the same (non-zero) length")
        if any(c % self.groups for c in self.channels):
            raise ValueError(
                f"every channel count {self.channels} must divide by groups={self.groups}"
            )
        if self.image_size % math.prod(self.strides):
            raise ValueError(
                f"image_size {self.image_size} must divide by the product of strides {self.strides}"
            )
        if self.pooling not in ("spatial_softmax", "mean"):
            raise ValueError(f"pooling must be 'spatial_softmax' or 'mean', got {self.pooling!r}")
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"loss must be 'l1' or 'mse', got {self.loss!r}")
        if self.text_encoder not in ("minilm", "hash"):
            raise ValueError(f"text_encoder must be 'minilm' or 'hash', got {self.text_encoder!r}")
        if not 0.0 <= self.view_dropout < 1.0 or self.random_shift < 0:
            raise ValueError("view_dropout must lie in [0, 1) and random_shift be >= 0")

    @classmethod
    def tiny(cls) -> BCConfig:
        """The CPU baseline: 64 x 64 views, MiniLM instructions (about 1.1M weights)."""
        return cls()

    @classmethod
    def debug(cls) -> BCConfig:
        """Tests and smoke runs: 32 x 32 views, about 25k weights, hash text."""
        return cls(image_size=32, channels=(8, 16, 16, 16), strides=(2, 2, 1, 1), groups=4,
                   keypoints=8, width=32, hidden=64, text_encoder="hash", text_dim=16,
                   text_length=8, warmup_steps=0, lr=1e-3, log_every=1, save_every=5)  # fmt: skip

    @classmethod
    def preset(cls, name: str, **overrides) -> BCConfig:
        return replace(lookup(BC_PRESETS, name, "BC"), **overrides)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> BCConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown BCConfig fields {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# --- inputs ---------------------------------------------------------------------------
def camera_features(K: torch.Tensor, world_to_camera: torch.Tensor, height: int, width: int):
    """K (..., 3, 3), world_to_camera (..., 4, 4) of (height x width) images -> (..., 16)."""
    intr = torch.stack([K[..., 0, 0] / width, K[..., 1, 1] / height,
                        K[..., 0, 2] / width, K[..., 1, 2] / height], -1)  # fmt: skip
    rot = world_to_camera[..., :3, :3].flatten(-2)  # (..., 3, 3) -> (..., 9)
    return torch.cat([intr, rot, world_to_camera[..., :3, 3]], -1).float()


BC_PRESETS: dict[str, BCConfig] = {"tiny": BCConfig.tiny(), "debug": BCConfig.debug()}


def pool_text(tokens: torch.Tensor) -> torch.Tensor:
    """(B, L, D) token embeddings, zero at padding -> (B, D) mean over the real tokens."""
    real = (tokens.abs().sum(-1, keepdim=True) > 0).float()  # (B, L, 1)
    return (tokens * real).sum(1) / real.sum(1).clamp(min=1.0)


class InstructionEmbedder:
    """Instruction strings -> (B, text_dim) pooled embeddings, cached per string."""

    def __init__(self, config: BCConfig):
        from actionimages.model.text import build_text_encoder

        self.encoder = build_text_encoder(config.text_encoder, config.text_dim, config.text_length)
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, instructions: Sequence[str]) -> torch.Tensor:
        missing = [s for s in dict.fromkeys(instructions) if s not in self.cache]
        if missing:
            for s, e in zip(missing, pool_text(self.encoder.encode(missing))):
                self.cache[s] = e
        return torch.stack([self.cache[s] for s in instructions])


# --- network --------------------------------------------------------------------------
class SpatialSoftmax(nn.Module):
    """(N, K, h, w) maps -> (N, 2K): each map's softmax-weighted mean (x, y) in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        att = torch.softmax(x.flatten(2) / self.log_temperature.exp(), -1)  # (N, K, h*w)
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device)  # pixel centres
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        ex = (att * gx.reshape(1, 1, h * w)).sum(-1)  # (h, w) -> (1, 1, h*w) grid
        ey = (att * gy.reshape(1, 1, h * w)).sum(-1)
        return torch.cat([ex, ey], -1)


class ImageEncoder(nn.Module):
    """(N, 3, S, S) images in [-1, 1] -> (N, width) features."""

    def __init__(self, c: BCConfig):
        super().__init__()
        layers, c_in = [], 3
        for ch, s in zip(c.channels, c.strides):
            layers += [nn.Conv2d(c_in, ch, 3, s, 1), nn.GroupNorm(c.groups, ch), nn.SiLU()]
            c_in = ch
        self.convs = nn.Sequential(*layers)
        if c.pooling == "spatial_softmax":
            self.pool = nn.Sequential(nn.Conv2d(c_in, c.keypoints, 1), SpatialSoftmax())
            self.out = nn.Linear(2 * c.keypoints, c.width)
        else:
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.out = nn.Linear(c_in, c.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.pool(self.convs(x)))


class BCNet(nn.Module):
    """The policy network; see the module docstring."""

    def __init__(self, config: BCConfig):
        super().__init__()
        c = self.config = config
        self.encoder = ImageEncoder(c)
        self.camera = nn.Linear(CAMERA_DIM, c.width) if c.camera_conditioning else None
        self.view_mlp = nn.Sequential(nn.SiLU(), nn.Linear(c.width, c.width), nn.SiLU())
        self.proprio = nn.Linear(POSE_DIM, c.width)
        self.text = nn.Linear(c.text_dim, c.width)
        head, d = [], 3 * c.width
        for _ in range(c.head_layers):
            head += [nn.Linear(d, c.hidden), nn.SiLU()]
            d = c.hidden
        head.append(nn.Linear(d, c.chunk * POSE_DIM))
        nn.init.zeros_(head[-1].weight)  # start by predicting "stay" (residual output)
        nn.init.zeros_(head[-1].bias)
        self.head = nn.Sequential(*head)
        self.register_buffer("position_mean", torch.zeros(3))
        self.register_buffer("position_std", torch.ones(3))

    def set_stats(self, mean, std) -> None:
        """Position statistics (3,) each, metres; std is floored at 1 mm."""
        self.position_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.position_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-3))

    def encode_pose(self, position, rotation, gripper) -> torch.Tensor:
        """position (..., 3), rotation (..., 3, 3), gripper (...) -> (..., 10)."""
        pos = (position - self.position_mean) / self.position_std
        return torch.cat([pos, matrix_to_rot6d(rotation), gripper[..., None] * 2 - 1], -1)

    def decode_pose(self, x: torch.Tensor):
        """(..., 10) -> position (..., 3), rotation (..., 3, 3), gripper (...) in [0, 1]."""
        position = x[..., :3] * self.position_std + self.position_mean
        rotation = nearest_rotation(rot6d_to_matrix(x[..., 3:9]))
        return position, rotation, ((x[..., 9] + 1) / 2).clamp(0.0, 1.0)

    def forward(self, images, cameras, proprio, text, view_mask=None) -> torch.Tensor:
        """Predicted pose vectors (B, chunk, 10) of the next ``chunk`` steps.

        Args:
            images: (B, V, S, S, 3) in [-1, 1].
            cameras: (B, V, 16) from :func:`camera_features`.
            proprio: (B, 10) current pose vector (:meth:`encode_pose`).
            text: (B, text_dim) pooled instruction embedding.
            view_mask: (B, V) bool, False hides a view (default: all visible).
        """
        B, V, H, W, _ = images.shape
        x = images.permute(0, 1, 4, 2, 3).reshape(
            B * V, 3, H, W
        )  # (B, V, H, W, 3) -> (BV, 3, H, W)
        f = self.encoder(x).reshape(B, V, -1)  # (BV, width) -> (B, V, width)
        if self.camera is not None:
            f = f + self.camera(cameras)
        f = self.view_mlp(f)
        w = images.new_ones(B, V, 1) if view_mask is None else view_mask[..., None].to(f.dtype)
        fused = (f * w).sum(1) / w.sum(1).clamp(min=1.0)  # mean over the visible views
        h = torch.cat([fused, self.proprio(proprio), self.text(text)], -1)
        delta = self.head(h).reshape(
            B, self.config.chunk, POSE_DIM
        )  # (B, chunk*10) -> (B, chunk, 10)
        return proprio[:, None] + delta


def load_bc(directory: str | Path) -> tuple[BCNet, dict]:
    """A trained :class:`BCNet` (eval mode) and its ``train_info.json`` (or {})."""
    from safetensors.torch import load_file

    d = Path(directory)
    for name in ("config.json", "model.safetensors"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d}: no {name}; is this a train-bc output folder?")
    meta = json.loads((d / "config.json").read_text())
    if meta.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{d}/config.json is not a behaviour-cloning checkpoint")
    model = BCNet(BCConfig.from_dict(meta["config"]))
    model.load_state_dict(load_file(str(d / "model.safetensors")))
    info = d / "train_info.json"
    return model.eval(), json.loads(info.read_text()) if info.is_file() else {}


# --- policy ---------------------------------------------------------------------------
def fit_view(image: np.ndarray, camera, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) uint8 + its Camera -> (S, S, 3) in [-1, 1] and (16,) camera features.

    Scales the image to cover S x S and crops the centre, as the training clips do.
    """
    from actionimages.data.sampler import resize_frames

    H, W = image.shape[:2]
    scale = max(size / H, size / W)
    h, w = max(size, round(H * scale)), max(size, round(W * scale))
    top, left = (h - size) // 2, (w - size) // 2
    x = resize_frames(image[None], h, w)[0, top : top + size, left : left + size]  # (S, S, 3)
    cam = camera.resized(h, w).cropped(top, left, size, size)
    K, E = torch.tensor(cam.K), torch.tensor(cam.world_to_camera)  # copies: writable
    return x.float() / 127.5 - 1.0, camera_features(K, E, size, size)


class BCPolicy:
    """Closed-loop policy: predicts a chunk, executes its first ``execute`` poses, repeats."""

    def __init__(self, model: BCNet, views: Sequence[str] = ("front", "left_shoulder"),
                 execute: int = 4, device: str = "cpu"):  # fmt: skip
        if not views:
            raise ValueError("BCPolicy needs at least one view")
        if not 1 <= execute <= model.config.chunk:
            raise ValueError(f"execute must lie in [1, {model.config.chunk}], got {execute}")
        self.model = model.to(device).eval()
        self.config, self.views, self.execute, self.device = (
            model.config,
            tuple(views),
            execute,
            device,
        )
        self.text = InstructionEmbedder(self.config)
        self.queue: deque = deque()

    @classmethod
    def load(cls, directory: str | Path, **kwargs) -> BCPolicy:
        return cls(load_bc(directory)[0], **kwargs)

    def reset(self) -> None:
        self.queue.clear()

    def select_action(self, obs: dict):
        if not self.queue:
            self.queue.extend(self.predict(obs)[: self.execute])
        return self.queue.popleft()

    @torch.no_grad()
    def predict(self, obs: dict) -> list:
        """All ``chunk`` predicted :class:`~actionimages.sim.action.Action` s for ``obs``."""
        from actionimages.sim.action import Action

        for key in ("images", "cameras", "ee_position", "ee_rotation", "gripper", "instruction"):
            if key not in obs:
                raise ValueError(f"observation has no {key!r}; BCPolicy needs a simulator obs")
        missing = [v for v in self.views if v not in obs["images"] or v not in obs["cameras"]]
        if missing:
            raise ValueError(
                f"observation lacks view(s) {missing} (it has {sorted(obs['images'])}); "
                "make the env with these cameras or pass views= to BCPolicy"
            )
        ims, cams = [], []
        for v in self.views:
            img = np.asarray(obs["images"][v])
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"view {v!r}: expected an (H, W, 3) uint8 image, got "
                                 f"{img.shape} {img.dtype}")  # fmt: skip
            x, c = fit_view(img, obs["cameras"][v], self.config.image_size)
            ims.append(x)
            cams.append(c)
        m, dev = self.model, self.device
        pose = m.encode_pose(
            torch.as_tensor(np.asarray(obs["ee_position"]), dtype=torch.float32, device=dev),
            torch.as_tensor(np.asarray(obs["ee_rotation"]), dtype=torch.float32, device=dev),
            torch.tensor(float(obs["gripper"]), device=dev),
        )
        out = m(torch.stack(ims)[None].to(dev), torch.stack(cams)[None].to(dev),
                pose[None].to(dev), self.text([obs["instruction"]]).to(dev))  # fmt: skip
        pos, rot, grip = (t[0].double().cpu().numpy() for t in m.decode_pose(out))
        return [Action(pos[i], rot[i], float(grip[i])) for i in range(len(pos))]
