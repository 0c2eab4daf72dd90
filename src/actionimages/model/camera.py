"""Camera conditioning: Plücker maps -> per-block features added to self-attention input.

Paper (supplementary Sec. 1, ReCamMaster style): every transformer block gets a camera
encoder E_c whose output is added to the (modulated, normalised) input of its
self-attention, and a projector on the self-attention output. E_c's last linear layer
starts at zero and the projector at the identity, so an untrained camera branch leaves
the pretrained backbone's output unchanged (a test checks it bit for bit).

Two encoders share one input layout, a camera map per latent frame:

    camera  (B, F, C_cam, h_cam, w_cam)   F = latent frames of the packed sequence

``TokenCameraEncoder`` (default) pools the map to the token grid with an s x s sub-grid
per token, so every token gets its own ray bundle. ``FramePooledCameraEncoder`` is the
layout of the authors' release: pool each frame's map to a fixed (C, H, W) size, flatten,
and project to one vector per frame that is broadcast over the frame's tokens.

:func:`plucker_to_latent_frames` turns a sampler's per-pixel Plücker maps into the
"token" layout (frames grouped like the video codec groups them).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TokenCameraEncoder(nn.Module):
    """(B, F, C_cam, h_cam, w_cam) -> (B, F * h_tok * w_tok, dim), one vector per token.

    The map is average-pooled to (h_tok * s, w_tok * s), each token's s x s cell is
    flattened into C_cam * s * s features (a strided patch conv, i.e. a lightweight conv
    encoder), then mapped to ``dim`` by ``proj`` (zero-initialised).
    """

    def __init__(self, camera_channels: int, dim: int, subgrid: int = 2):
        super().__init__()
        self.camera_channels, self.subgrid = camera_channels, subgrid
        self.proj = nn.Linear(camera_channels * subgrid * subgrid, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def features(self, camera: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(B, F, C, h, w) -> (B, F * h_tok * w_tok, C * s * s) pooled features (shared by blocks)."""
        B, Fr, C, _, _ = camera.shape
        f_tok, h_tok, w_tok = grid
        if Fr != f_tok or C != self.camera_channels:
            raise ValueError(
                f"camera map must be (B, {f_tok}, {self.camera_channels}, h, w) for this sequence, "
                f"got {tuple(camera.shape)}"
            )
        s = self.subgrid
        x = F.adaptive_avg_pool2d(
            camera.flatten(0, 1).float(), (h_tok * s, w_tok * s)
        )  # (B*F, C, h*s, w*s)
        x = F.pixel_unshuffle(x, s)  # (B*F, C*s*s, h_tok, w_tok)
        x = x.unflatten(0, (B, Fr)).permute(0, 1, 3, 4, 2)  # (B, F, h_tok, w_tok, C*s*s)
        return x.reshape(B, Fr * h_tok * w_tok, -1)  # (B, L, C*s*s) in token order (f, h, w)

    def forward(
        self, features: torch.Tensor, grid: tuple[int, int, int] | None = None
    ) -> torch.Tensor:
        """(B, L, C * s * s) pooled features -> (B, L, dim)."""
        return self.proj(features.to(self.proj.weight.dtype))


class FramePooledCameraEncoder(nn.Module):
    """The release's per-block encoder: (B, F, C_cam, h, w) -> one (dim,) vector per frame.

    ``pool`` is an adaptive average pool over (channels, height, width) of each frame,
    ``proj`` maps the flattened pooled map to ``dim`` (zero-initialised). Submodule
    indices 0/1/2 (pool, flatten, linear) mirror the release so its keys convert by name.
    """

    def __init__(self, dim: int, pool: tuple[int, int, int] = (48, 16, 16)):
        super().__init__()
        self.pool_size = tuple(pool)
        self.layers = nn.Sequential(
            nn.AdaptiveAvgPool3d(self.pool_size),
            nn.Flatten(start_dim=2),
            nn.Linear(math.prod(pool), dim),
        )
        nn.init.zeros_(self.layers[2].weight)
        nn.init.zeros_(self.layers[2].bias)

    def features(self, camera: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        if camera.ndim != 5 or camera.shape[1] != grid[0]:
            raise ValueError(
                f"camera map must be (B, {grid[0]}, C, h, w), got {tuple(camera.shape)}"
            )
        # AdaptiveAvgPool3d reads (B, F, C, h, w) as (N, channels=F, D=C, H, W): it pools the
        # camera channels and the image plane of every frame, frames untouched.
        return self.layers[1](self.layers[0](camera.float()))  # (B, F, prod(pool))

    def forward(self, features: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        _, h_tok, w_tok = grid
        per_frame = self.layers[2](features.to(self.layers[2].weight.dtype))  # (B, F, dim)
        # Broadcast each frame's vector over its h_tok * w_tok tokens (token order f, h, w).
        return per_frame.repeat_interleave(h_tok * w_tok, dim=1)  # (B, F * h_tok * w_tok, dim)


def identity_projector(dim: int) -> nn.Linear:
    """A dim -> dim linear layer that starts as the identity."""
    layer = nn.Linear(dim, dim)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim))
        layer.bias.zero_()
    return layer


def plucker_to_latent_frames(plucker: torch.Tensor, temporal_factor: int) -> torch.Tensor:
    """Group per-frame Plücker maps like a causal video codec groups frames.

    Args:
        plucker: (B, 6, T, h, w) with T = 1 + temporal_factor * k (a sampler's map of one clip).
        temporal_factor: frames per latent frame after the first (Wan: 4).

    Returns:
        (B, 1 + k, 6 * temporal_factor, h, w): latent frame 0 holds frame 0 repeated,
        latent frame j >= 1 holds frames 4j-3 .. 4j stacked along channels.
    """
    if plucker.ndim != 5 or plucker.shape[1] != 6:
        raise ValueError(f"plucker must be (B, 6, T, h, w), got {tuple(plucker.shape)}")
    B, _, T, h, w = plucker.shape
    tf = temporal_factor
    if (T - 1) % tf:
        raise ValueError(f"T - 1 must be a multiple of {tf}, got T = {T}")
    first = plucker[:, :, :1].expand(B, 6, tf, h, w)  # (B, 6, tf, h, w)
    x = torch.cat([first, plucker[:, :, 1:]], dim=2)  # (B, 6, tf * (1 + k), h, w)
    x = x.unflatten(2, (-1, tf))  # (B, 6, 1 + k, tf, h, w)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(B, -1, tf * 6, h, w)  # (B, 1 + k, tf * 6, h, w)
