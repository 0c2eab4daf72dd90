"""Optional learned action head (paper Table 3, "w/ action head"; issue 6): the model.

Its configuration is :mod:`actionimages.model.action_head_config`; its training loop
:func:`actionimages.train.action_head.fit_action_head`.

A small network that reads the action images the world model generates for V views,
each with its Plücker ray map, and regresses every frame's 7-DoF action: position (3),
rotation as 6-D (axes e_x, e_z), gripper (1). The learned alternative to the
training-free geometric decoder (:func:`actionimages.codec.decoder.decode_action_images`).

Per view and frame a shared CNN sees image + upsampled ray map (3 + 6 channels); K
spatial-softmax attention maps pool its features, the rays and the pixel coordinates.
Views are fused by mean and max (any V), a temporal convolution mixes neighbouring
frames, and an MLP gives the 10 numbers. With ``triangulate`` the K pooled rays are also
intersected across views (a fixed least-squares step) and fed to the MLP.

Frames: the Plücker maps are in the camera frame of view 0 at frame 0 and the head sees
nothing else about the cameras, so it predicts in that frame (world coordinates are not
observable from its input); :meth:`ActionHead.predict` converts to world with
``world_to_camera[0, 0]`` (:func:`reference_to_world`), as the decoder reports.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from actionimages.data.atomic import atomic_write_bytes
from actionimages.geometry.rotations import rot6d_to_matrix
from actionimages.model.action_head_config import ActionHeadConfig

OUTPUTS = 10  # position 3 + rotation 6 (e_x, e_z) + gripper 1
SHORTCUT_GAIN = 10.0
AXIS_UNIT = 0.1  # metres: the codec's default axis length, the scale of the point offsets
ATTENTION_GAIN = 10.0  # softmax(10 x) of a [-1, 1] blob image: the peak outweighs the rest


def _rigid(world_to_camera0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    E = torch.as_tensor(world_to_camera0)
    if E.shape[-2:] != (4, 4):
        raise ValueError(f"world_to_camera0 must have shape (..., 4, 4), got {tuple(E.shape)}")
    return E[..., :3, :3], E[..., :3, 3]


def reference_to_world(position, rotation, world_to_camera0):
    """Pose (..., T, 3), (..., T, 3, 3) in the camera frame of world_to_camera0 (..., 4, 4)
    (the sampler's ``world_to_camera[0, 0]``) -> the same pose in world coordinates."""
    R, t = _rigid(world_to_camera0)
    # x_cam = R x_world + t, so x_world = R^T (x_cam - t); in row-vector form (x - t) @ R.
    return (position - t[..., None, :]) @ R, R.transpose(-1, -2)[..., None, :, :] @ rotation


def world_to_reference(position, rotation, world_to_camera0):
    """Inverse of :func:`reference_to_world`: world pose (..., T, 3), (..., T, 3, 3) -> camera frame."""
    R, t = _rigid(world_to_camera0)
    return position @ R.transpose(-1, -2) + t[..., None, :], R[..., None, :, :] @ rotation


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(min(8, cout), cout), nn.SiLU())  # fmt: skip


def check_inputs(images: torch.Tensor, plucker: torch.Tensor) -> None:
    """ValueError unless images (B, V, T, H, W, 3) and plucker (B, V, T, h, w, 6) match."""
    shapes = f"images {tuple(images.shape)}, plucker {tuple(plucker.shape)}"
    if images.ndim != 6 or images.shape[-1] != 3 or plucker.ndim != 6 or plucker.shape[-1] != 6:
        raise ValueError(f"need images (B, V, T, H, W, 3) and plucker (B, V, T, h, w, 6), got {shapes}")  # fmt: skip
    if images.shape[:3] != plucker.shape[:3]:
        raise ValueError(f"images and plucker must agree on (B, V, T), got {shapes}")
    if min(images.shape) == 0 or plucker.shape[3] > images.shape[3] or plucker.shape[4] > images.shape[4]:  # fmt: skip
        raise ValueError(f"need non-empty images at least as large as the ray maps, got {shapes}")
    if not (images.is_floating_point() and plucker.is_floating_point()):
        raise ValueError(f"images and plucker must be floating point, got {images.dtype}, {plucker.dtype}")  # fmt: skip
    if not (torch.isfinite(images).all() and torch.isfinite(plucker).all()):
        raise ValueError("images or plucker contain NaN or inf")


def axes_to_matrix(axes: torch.Tensor) -> torch.Tensor:
    """(..., 6) = (e_x, e_z) -> rotation (..., 3, 3) by Gram-Schmidt, e_z kept exactly.

    Zhou et al.'s 6-D rotation with the columns action images encode: both layouts put their
    extra points along e_x and e_z, which the points give linearly (e_y needs a cross product)."""
    # Gram-Schmidt fails only on exactly collinear columns; a tiny nudge avoids that.
    nudge = torch.tensor([0.0, 0, 1, 1, 0, 0], dtype=axes.dtype, device=axes.device)  # e_z, e_x
    m = rot6d_to_matrix(torch.cat([axes[..., 3:], axes[..., :3]], -1) + 1e-6 * nudge)
    return m[..., [1, 2, 0]]  # columns (e_z, e_x, e_z x e_x = e_y) -> (e_x, e_y, e_z)


def intersect_rays(rays: torch.Tensor, ridge: float = 1e-4) -> torch.Tensor:
    """Least-squares intersection (B, T, K, 3) of the pooled rays (B, V, T, K, 6) of V views.

    A weighted mean of one camera's Plücker vectors (d, c x d) is (d', c x d'), d' the mean
    direction: a ray of that camera once scaled to unit d. The ridge keeps parallel rays
    (or V = 1) finite, pulling towards the reference origin."""
    n = rays[..., :3].norm(dim=-1, keepdim=True).clamp_min(1e-6)
    d, m = rays[..., :3] / n, rays[..., 3:] / n
    foot = torch.linalg.cross(d, m, dim=-1)  # closest point of each ray to the origin
    eye = torch.eye(3, dtype=rays.dtype, device=rays.device)
    proj = eye - d[..., :, None] * d[..., None, :]  # (B, V, T, K, 3, 3) onto the normal plane
    return torch.linalg.solve(proj.sum(1) + ridge * eye, (proj @ foot[..., None]).sum(1))[..., 0]


class ActionHead(nn.Module):
    """Action images + ray maps of V views -> per-frame 7-DoF actions (see module docstring).

    Buffers ``position_mean`` (3,), ``position_scale`` (1,): the position's normalisation
    (metres, reference frame), set from data by :func:`actionimages.train.action_head.fit_action_head`."""

    def __init__(self, config: ActionHeadConfig | None = None):
        super().__init__()
        self.config = cfg = config or ActionHeadConfig.tiny()
        w, K, D = cfg.width, cfg.keypoints, cfg.hidden
        # 9 input channels: RGB + 6 Plücker; two stride-2 stages, H x W -> H/4 x W/4.
        self.trunk = nn.Sequential(_conv(9, w, 2), _conv(w, w, 1), _conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 1))  # fmt: skip
        # Attention logits from the features and the image; maps 0-2 start as sharp softmaxes
        # of the red, green, blue channels (the encoded points), so the pooled rays mean
        # something from step 0, not only once the CNN has learned to find the blobs.
        self.attention = nn.Conv2d(2 * w, K, 1)
        self.image_gain = nn.Conv2d(3, K, 1, bias=False)
        nn.init.zeros_(self.image_gain.weight)
        with torch.no_grad():  # weight (K, 3, 1, 1): map k <- channel k for k < 3
            self.image_gain.weight[range(min(3, K)), range(min(3, K))] = ATTENTION_GAIN
        # Per keypoint: pooled features, ray (6), pixel coordinates (2); plus the mean features
        # and colour (the gripper is the blue background level).
        self.view_mlp = nn.Sequential(nn.Linear(K * (2 * w + 8) + 2 * w + 3, D), nn.SiLU(), nn.Linear(D, D))  # fmt: skip
        k, fused = cfg.temporal_kernel, 2 * D if cfg.fusion == "mean_max" else D
        self.temporal = nn.Conv1d(fused, D, k, padding=k // 2, padding_mode="replicate")
        tri = 3 * K if cfg.triangulate else 0  # the K intersected points, normalised
        self.out = nn.Sequential(nn.Linear(D + tri, D), nn.SiLU(), nn.Linear(D, OUTPUTS))
        # Linear shortcut from the points' offsets to point 0 (0.1 m units, the encoded axis
        # length) and the views' mean colour, in which rotation and gripper are nearly
        # linear. Zero at first; its input gain is a 10x learning rate for this layer.
        self.shortcut = nn.Linear(tri + 3, OUTPUTS) if cfg.triangulate else None
        for p in self.shortcut.parameters() if cfg.triangulate else ():
            nn.init.zeros_(p)
        self.register_buffer("position_mean", torch.zeros(3))
        self.register_buffer("position_scale", torch.ones(1))

    def forward(self, images: torch.Tensor, plucker: torch.Tensor) -> torch.Tensor:
        """images (B, V, T, H, W, 3) in [-1, 1], plucker (B, V, T, h, w, 6) in the frame of view 0
        at frame 0 -> raw (B, T, 10): normalised position, axes e_x and e_z, gripper."""
        check_inputs(images, plucker)
        B, V, T, H, W, _ = images.shape
        x = images.reshape(B * V * T, H, W, 3).permute(0, 3, 1, 2)  # (N, 3, H, W)
        rays = plucker.reshape(B * V * T, *plucker.shape[3:]).permute(0, 3, 1, 2).to(x.dtype)  # (N, 6, h, w)  # fmt: skip
        # Plücker values sit at block centres: bilinear, align_corners=False restores them.
        full = F.interpolate(rays, size=(H, W), mode="bilinear", align_corners=False)
        feat = self.trunk(torch.cat([x, full], 1))  # (N, 2w, h', w')
        hf, wf = feat.shape[-2:]
        # Attention at full resolution (upsampled feature logits + image), so the pooled
        # rays are not limited to the feature grid's 4-pixel cells.
        logits = F.interpolate(self.attention(feat), size=(H, W), mode="bilinear") + self.image_gain(x)  # fmt: skip
        att = logits.flatten(2).softmax(-1)  # (N, K, H*W)
        ys = torch.linspace(-1 + 1 / H, 1 - 1 / H, H, dtype=x.dtype, device=x.device)
        xs = torch.linspace(-1 + 1 / W, 1 - 1 / W, W, dtype=x.dtype, device=x.device)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0).reshape(1, 2, H * W)
        geo = torch.cat([full.flatten(2), grid.expand(len(x), 2, H * W)], 1)  # (N, 8, H*W)
        # The same weights summed over each feature cell pool the features.
        att_small = F.adaptive_avg_pool2d(att.unflatten(2, (H, W)), (hf, wf)).flatten(2) * (H * W / (hf * wf))  # (N, K, h'*w')  # fmt: skip
        pooled = torch.cat([att_small @ feat.flatten(2).transpose(1, 2), att @ geo.transpose(1, 2)], -1)  # (N, K, 2w + 8)  # fmt: skip
        v = torch.cat([pooled.flatten(1), feat.mean((2, 3)), x.mean((2, 3))], 1)  # (N, K*C + 2w + 3)  # fmt: skip
        v = self.view_mlp(v).reshape(B, V, T, -1)  # (N, D) -> (B, V, T, D)
        both = {"mean": v.mean(1), "max": v.amax(1)}  # (B, T, D) each; views are a set
        f = self.config.fusion
        fused = both[f] if f in both else torch.cat([both["mean"], both["max"]], -1)  # (B, T, 2D)
        h = F.silu(self.temporal(fused.transpose(1, 2)).transpose(1, 2))  # (B, T, D)
        if not self.config.triangulate:
            return self.out(h)  # (B, T, 10)
        K = self.config.keypoints
        pooled_rays = pooled[..., -8:-2].reshape(B, V, T, K, 6)  # (N, K, 6) -> (B, V, T, K, 6)
        metres = intersect_rays(pooled_rays)  # (B, T, K, 3)
        points = (metres - self.position_mean) / self.position_scale
        raw = self.out(torch.cat([h, points.flatten(2)], -1))  # (B, T, 10)
        # A point seen by fewer than two views lands anywhere: bound its offset.
        offsets = (
            ((metres - metres[..., :1, :]) / AXIS_UNIT).clamp(-3.0, 3.0).flatten(2)
        )  # (B, T, 3K)
        colour = x.mean((2, 3)).reshape(B, V, T, 3).mean(1)  # (N, 3) -> (B, V, T, 3) -> (B, T, 3)
        raw = raw + self.shortcut(SHORTCUT_GAIN * torch.cat([offsets, colour], -1))
        # Residual on the first point (attention starts on the red, position, blob).
        return raw + F.pad(points[..., 0, :], (0, OUTPUTS - 3))

    def decode_outputs(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw (B, T, 10) -> position (B, T, 3) reference frame, rotation (B, T, 3, 3), gripper (B, T)."""
        position = raw[..., :3] * self.position_scale + self.position_mean
        return position, axes_to_matrix(raw[..., 3:9]), raw[..., 9].clamp(0.0, 1.0)

    @torch.no_grad()
    def predict(self, images, plucker, world_to_camera0):
        """World-frame actions like the geometric decoder's: images (B, V, T, H, W, 3) in
        [-1, 1], plucker (B, V, T, h, w, 6), world_to_camera0 (B, 4, 4) of view 0 at frame 0
        -> position (B, T, 3) metres in world, rotation (B, T, 3, 3), gripper (B, T)."""
        E = torch.as_tensor(world_to_camera0)
        if E.shape != (images.shape[0], 4, 4):
            raise ValueError(f"world_to_camera0 must have shape ({images.shape[0]}, 4, 4), got {tuple(E.shape)}")  # fmt: skip
        check_inputs(images, plucker)  # before the mode switch, so a bad call leaves it alone
        mode = self.training
        raw = self.eval()(images, plucker).double()  # eval: no dropout/batch statistics
        self.train(mode)
        position, rotation, gripper = self.decode_outputs(raw)
        position, rotation = reference_to_world(position, rotation, E.double())
        return position, rotation, gripper

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a collated batch with the sampler's keys (see :func:`actionimages.train.action_head.collate`)."""
        raw = self(batch["actions"], batch["plucker"])  # (B, T, 10)
        pos, rot = world_to_reference(batch["position"], batch["rotation"], batch["world_to_camera"][:, 0, 0])  # fmt: skip
        valid = batch["frame_valid"].to(raw.dtype)  # (B, T)
        target_pos = (pos - self.position_mean) / self.position_scale

        # Per frame (B, T). Pose: Huber (position-scale units), robust to the odd large error.
        # Gripper: squared error; an L1-like loss on a 0/1 target learns the majority value.
        per_frame = {
            "position": F.smooth_l1_loss(raw[..., :3], target_pos, reduction="none", beta=0.05).sum(-1),
            "rotation": F.smooth_l1_loss(raw[..., 3:9], torch.cat([rot[..., 0], rot[..., 2]], -1), reduction="none", beta=0.05).sum(-1),
            "gripper": (raw[..., 9] - batch["gripper"]) ** 2,
        }  # fmt: skip
        means = {k: (e * valid).sum() / valid.sum().clamp_min(1.0) for k, e in per_frame.items()}
        cfg = self.config
        total = means["position"] + cfg.rotation_weight * means["rotation"] + cfg.gripper_weight * means["gripper"]  # fmt: skip
        return total, {k: float(m.detach()) for k, m in means.items()}

    def save(self, out: str | Path, training: dict[str, Any] | None = None) -> None:
        """Write ``out/model.safetensors`` and ``out/config.json``, each atomically."""
        out = Path(out)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write_bytes(out / "model.safetensors", save_safetensors(tensors, metadata={"format": "pt"}))  # fmt: skip
        meta = {"kind": "action_head", "config": dataclasses.asdict(self.config), "training": training or {}}  # fmt: skip
        atomic_write_bytes(out / "config.json", json.dumps(meta, indent=2).encode())

    @classmethod
    def load(cls, path: str | Path) -> ActionHead:
        """Load a head written by :meth:`save` from its folder."""
        path = Path(path)
        if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path}: expected config.json and model.safetensors of an action head")  # fmt: skip
        meta = json.loads((path / "config.json").read_text())
        if meta.get("kind") != "action_head":
            raise ValueError(f"{path / 'config.json'} does not describe an action head")
        head = cls(ActionHeadConfig.from_dict(meta["config"]))
        head.load_state_dict(load_safetensors((path / "model.safetensors").read_bytes()))
        head.training_info = meta.get("training", {})
        return head
