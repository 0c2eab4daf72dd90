"""Tiny synthetic batches and a debug world action model (no simulator, no downloads)."""

from __future__ import annotations

import torch

from actionimages.model.config import ModelConfig
from actionimages.model.latent import PatchPCACodec
from actionimages.model.text import CachedTextEncoder, HashTextEncoder
from actionimages.model.transformer import ActionImagesWanTransformer
from actionimages.model.wam import WorldActionModel

V, T, H, W = 2, 5, 32, 32  # 2 views x 5 frames at 32 x 32 -> 2 latent frames of 4 x 4 per clip


def synthetic_batch(batch: int = 2, seed: int = 0, tasks=None, frames: int = T) -> dict:
    """A collated batch shaped like the data sampler's items (smooth random video, blob actions).

    ``frames``: T = 1 + 4 k source frames (1 + k latent frames)."""
    T = frames
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, V, 3, T, 4, 4, generator=g) * 2 - 1
    video = torch.nn.functional.interpolate(
        coarse.flatten(0, 1), size=(T, H, W), mode="trilinear"
    ).unflatten(0, (batch, V))
    yy, xx = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    centre = torch.rand(batch, V, 1, T, 2, generator=g) * 24 + 4  # (B, V, 1, T, 2) pixel (x, y)
    d2 = (xx - centre[..., 0, None, None]) ** 2 + (
        yy - centre[..., 1, None, None]
    ) ** 2  # (B, V, 1, T, H, W)
    actions = (torch.exp(-d2 / (2 * 3.0**2)) * 2 - 1).expand(batch, V, 3, T, H, W).clone()
    plucker = torch.randn(batch, V, 6, T, H // 8, W // 8, generator=g)
    allowed = torch.ones(batch, 4, dtype=torch.bool) if tasks is None else tasks
    last = (0, 1, 3, 4, 5, 2)  # the sampler's channels-last layout (B, V, T, H, W, c)
    video, actions, plucker = (x.permute(*last).contiguous() for x in (video, actions, plucker))
    return {"video": video, "actions": actions, "plucker": plucker, "tasks": allowed,
            "instruction": ["open the drawer", "push the button"][:batch] + ["stack"] * max(0, batch - 2)}  # fmt: skip


def debug_wam(seed: int = 0, **overrides) -> WorldActionModel:
    torch.manual_seed(seed)
    cfg = ModelConfig.preset("debug", **overrides)
    codec = PatchPCACodec(cfg.out_channels, cfg.temporal_factor, cfg.spatial_factor)
    b = synthetic_batch(4, seed=123)
    codec.fit(
        [torch.cat([b["video"], b["actions"]], 1).flatten(0, 1).permute(0, 4, 1, 2, 3)]
    )  # (N, 3, T, H, W)
    text = CachedTextEncoder(HashTextEncoder(cfg.text_dim, cfg.text_length))
    return WorldActionModel(cfg, ActionImagesWanTransformer.from_model_config(cfg), codec, text)
