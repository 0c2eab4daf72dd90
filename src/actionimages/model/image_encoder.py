"""Wan 2.1 I2V's image condition: CLIP vision tokens of each view's first frame.

Wan2.1-I2V-14B conditions its cross-attention on the penultimate hidden states of a CLIP
ViT-H/14 (257 tokens of width 1280 for a 224 x 224 image), computed once from the
conditioning frame and placed before the text tokens. Here every view's current frame
is encoded and the views' tokens are concatenated, (B, V N, D), so each view's
appearance reaches every token.

    enc = CLIPImageEncoder.from_folder("Wan2.1-I2V-14B-480P-Diffusers/image_encoder")
    tokens = enc.encode(frames)        # (N, 3, H, W) in [-1, 1] -> (N, 257, 1280)

The folder is a transformers ``CLIPVisionModel`` (``config.json`` + weights), with its
``preprocessor_config.json`` beside it or one level up (``image_processor/``) when the
pipeline folder has one; OpenAI CLIP's normalisation is the fallback.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# OpenAI CLIP's image normalisation (the statistics its ViTs were trained with).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPImageEncoder(nn.Module):
    """Frozen CLIP vision tower -> penultimate-layer tokens (what Wan 2.1 I2V reads)."""

    def __init__(self, model: nn.Module, mean=CLIP_MEAN, std=CLIP_STD) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.image_size = int(model.config.image_size)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @classmethod
    def from_folder(cls, path: str | Path) -> CLIPImageEncoder:
        from transformers import CLIPVisionModel

        path = Path(path)
        if (path / "image_encoder" / "config.json").is_file():
            path = path / "image_encoder"
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a CLIP vision folder (config.json + weights, e.g. a Wan I2V "
                "pipeline's image_encoder/)"
            )
        model = CLIPVisionModel.from_pretrained(path, local_files_only=True)
        mean, std = CLIP_MEAN, CLIP_STD
        for pre in (path / "preprocessor_config.json", path.parent / "image_processor" / "preprocessor_config.json"):  # fmt: skip
            if pre.is_file():
                cfg = json.loads(pre.read_text())
                mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
                break
        return cls(model, mean, std)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [-1, 1] -> (N, tokens, hidden) penultimate hidden states."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) in [-1, 1], got {tuple(images.shape)}")
        x = (images.float() + 1) / 2  # [0, 1]
        # CLIP's processor resizes the short side and centre-crops; the model's clips are
        # square already, so a bicubic resize to the tower's size is the same thing.
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic",
                          align_corners=False, antialias=True).clamp(0, 1)  # fmt: skip
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        out = self.model(
            pixel_values=x.to(next(self.model.parameters()).dtype), output_hidden_states=True
        )
        return out.hidden_states[-2]
