"""Training the optional learned action head on ground-truth action images (issue 6)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from actionimages.model.action_head import ActionHead, ActionHeadConfig, world_to_reference
from actionimages.model.latent import PatchPCACodec


def collate(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack sampler items into a batch: actions (B, V, T, H, W, 3), plucker (B, V, T, h, w, 6),
    world_to_camera (B, V, T, 4, 4), position (B, T, 3), rotation (B, T, 3, 3), gripper and
    frame_valid (B, T). Frames of clips without actions count as invalid."""
    keys = ("actions", "plucker", "world_to_camera", "position", "rotation", "gripper")
    batch = {k: torch.stack([it[k] for it in items]).float() for k in keys}
    has_actions = torch.stack([it["tasks"][0] for it in items])  # (B,) joint task allowed
    batch["frame_valid"] = torch.stack([it["frame_valid"] for it in items]) & has_actions[:, None]
    return batch


def codec_round_trip(codec: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, V, T, H, W, 3) in [-1, 1] -> the same after ``codec.decode(codec.encode(.))``."""
    B, V, T, H, W, _ = images.shape
    x = images.reshape(B * V, T, H, W, 3).permute(0, 4, 1, 2, 3)  # (B*V, 3, T, H, W)
    with torch.no_grad():
        y = codec.decode(codec.encode(x))
    return y.permute(0, 2, 3, 4, 1).reshape(B, V, T, H, W, 3).to(images.dtype)


def fit_action_head(config: ActionHeadConfig, data_dirs: Sequence[str | Path], out: str | Path,
                    steps: int, batch_size: int = 8, seed: int = 0,
                    degrade: str | Path | nn.Module | None = None, *, clip=None,
                    progress: bool = True) -> tuple[ActionHead, list[float]]:  # fmt: skip
    """Train a head on ground-truth action images of ``data_dirs`` and save it to ``out``.

    ``degrade``: a latent codec (or ``PatchPCACodec`` file) that a share
    ``config.degrade_fraction`` of the clips is round-tripped through, so the head also
    sees the blur and ringing of images that came out of the world model's latents.
    ``clip``: ``ClipConfig`` (default ``ClipConfig.debug()``: 2 views x 9 frames at 64 x 64);
    its seed and length are set from ``seed`` and ``steps``. Returns the head (eval mode)
    and the loss of every step.
    """
    from actionimages.data.sampler import ClipConfig, ClipSampler  # lazy: video readers

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    codec = PatchPCACodec.load(degrade) if isinstance(degrade, str | Path) else degrade
    torch.manual_seed(seed)
    clip = dataclasses.replace(clip or ClipConfig.debug(), seed=seed, samples_per_epoch=steps * batch_size)  # fmt: skip
    sampler = ClipSampler(list(data_dirs), clip)
    head = ActionHead(config)
    first = collate([sampler[i] for i in range(batch_size)])
    # Normalise positions with the first batch: one isotropic scale keeps the loss a
    # distance in metres, the mean saves the output bias a long walk to ~1 m depth.
    pos, _ = world_to_reference(first["position"], first["rotation"], first["world_to_camera"][:, 0, 0])  # fmt: skip
    pos = pos[first["frame_valid"]]  # (N, 3)
    head.position_mean.copy_(pos.mean(0) if len(pos) else head.position_mean)
    head.position_scale.fill_(float(pos.std(0, correction=0).norm().clamp_min(0.01)) if len(pos) else 1.0)  # fmt: skip
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = min(50, max(1, steps // 10))

    def lr_factor(i: int) -> float:  # linear warm-up, then cosine decay to 0
        done = (i - warmup) / max(1, steps - warmup)
        return (i + 1) / warmup if i < warmup else 0.5 * (1 + math.cos(math.pi * done))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    coins = torch.Generator().manual_seed(seed + 1)
    losses: list[float] = []
    bar = tqdm(range(steps), desc="action head", disable=not progress, mininterval=5)
    for step in bar:
        batch = first if step == 0 else collate([sampler[step * batch_size + i] for i in range(batch_size)])  # fmt: skip
        if codec is not None and config.degrade_fraction > 0:
            pick = torch.rand(batch_size, generator=coins) < config.degrade_fraction  # (B,)
            if bool(pick.any()):
                batch["actions"][pick] = codec_round_trip(codec, batch["actions"][pick])
        loss, parts = head.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}", **{k: f"{v:.3f}" for k, v in parts.items()}, refresh=False)  # fmt: skip
    head.eval()
    degrade_name = type(degrade).__name__ if isinstance(degrade, nn.Module) else degrade
    head.save(out, {"data": [str(d) for d in data_dirs], "steps": steps, "batch_size": batch_size,
                    "seed": seed, "degrade": None if degrade is None else str(degrade_name),
                    "clip": dataclasses.asdict(clip), "final_loss": losses[-1]})  # fmt: skip
    return head, losses
