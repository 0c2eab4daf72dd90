"""Latent codecs: pixels (B, 3, T, H, W) in [-1, 1] <-> latents (B, C, F, h, w), one interface.

Both compress time causally like Wan's VAE: frame 0 alone, then groups of
``temporal_factor`` frames, so T = 1 + 4k frames give F = 1 + k latent frames, and
space by ``spatial_factor``. Latents are normalised per channel (zero mean, unit std)
so the diffusion noise has the right scale.

    WanVAECodec.from_folder(path)     diffusers AutoencoderKLWan (Wan 2.1: 16 ch / 8x, Wan 2.2: 48 ch / 16x)
    PatchPCACodec.fit(videos, ...)    no pretrained weights: PCA of space-time patches, fitted in
                                      seconds on a CPU; the default codec of the tiny model

PCA is the best linear codec in squared error for its size; it has no decoder network
to train, which is what makes the tiny model runnable end to end on a laptop CPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class LatentCodec(nn.Module):
    """Interface: ``encode`` / ``decode`` plus the compression factors."""

    latent_channels: int
    temporal_factor: int
    spatial_factor: int

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(F, h, w) of a (T, H, W) clip, with a clear error for sizes the codec cannot take."""
        tf, sf = self.temporal_factor, self.spatial_factor
        if (frames - 1) % tf or height % sf or width % sf:
            raise ValueError(
                f"clip (T={frames}, H={height}, W={width}) needs T = 1 + {tf}k and H, W multiples of {sf}"
            )
        return 1 + (frames - 1) // tf, height // sf, width // sf

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _check_video(video: torch.Tensor) -> None:
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"video must be (B, 3, T, H, W) in [-1, 1], got {tuple(video.shape)}")
    if not torch.isfinite(video).all():
        raise ValueError("video contains NaN or inf")


class PatchPCACodec(LatentCodec):
    """Linear codec on (3, tf, p, p) space-time patches, components from PCA.

    Buffers: ``mean`` (D,), ``basis`` (D, C) orthonormal columns, ``std`` (C,) with
    D = 3 * tf * p * p.
    """

    def __init__(
        self, latent_channels: int = 16, temporal_factor: int = 4, spatial_factor: int = 8
    ):
        super().__init__()
        self.latent_channels, self.temporal_factor, self.spatial_factor = (
            latent_channels,
            temporal_factor,
            spatial_factor,
        )
        D = 3 * temporal_factor * spatial_factor**2
        if latent_channels > D:
            raise ValueError(f"latent_channels {latent_channels} exceeds the patch size {D}")
        self.register_buffer("mean", torch.zeros(D))
        self.register_buffer("basis", torch.eye(D)[:, :latent_channels].clone())
        self.register_buffer("std", torch.ones(latent_channels))

    # --- patches ----------------------------------------------------------------------
    def patches(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, F, h, w, D): frame 0 repeated tf times, then groups of tf frames."""
        B, _, T, H, W = video.shape
        F_, h, w = self.latent_shape(T, H, W)
        tf, p = self.temporal_factor, self.spatial_factor
        x = torch.cat(
            [video[:, :, :1].expand(B, 3, tf, H, W), video[:, :, 1:]], dim=2
        )  # (B, 3, tf*F, H, W)
        x = x.reshape(B, 3, F_, tf, h, p, w, p)  # (B, 3, F, tf, h, p, w, p)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, F, h, w, 3, tf, p, p)
        return x.reshape(B, F_, h, w, -1)  # (B, F, h, w, D)

    def unpatch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, h, w, D) -> (B, 3, T, H, W); frame 0 is the mean of its tf copies."""
        B, F_, h, w, _ = x.shape
        tf, p = self.temporal_factor, self.spatial_factor
        x = x.reshape(B, F_, h, w, 3, tf, p, p).permute(
            0, 4, 1, 5, 2, 6, 3, 7
        )  # (B, 3, F, tf, h, p, w, p)
        x = x.reshape(B, 3, F_ * tf, h * p, w * p)  # (B, 3, tf*F, H, W)
        return torch.cat(
            [x[:, :, :tf].mean(2, keepdim=True), x[:, :, tf:]], dim=2
        )  # (B, 3, T, H, W)

    # --- codec ------------------------------------------------------------------------
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, C, F, h, w) normalised latents."""
        _check_video(video)
        x = self.patches(video.to(self.basis.dtype))  # (B, F, h, w, D)
        z = (x - self.mean) @ self.basis / self.std  # (B, F, h, w, C)
        return z.permute(0, 4, 1, 2, 3).contiguous()  # (B, C, F, h, w)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, F, h, w) -> (B, 3, T, H, W) clamped to [-1, 1]."""
        return self.decode_linear(latents).clamp(-1.0, 1.0)

    def decode_linear(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, F, h, w) -> (B, 3, T, H, W), not clamped: linear, so losses on pixels
        (``model.blob_loss``) have a gradient everywhere."""
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"latents must be (B, {self.latent_channels}, F, h, w), got {tuple(latents.shape)}"
            )
        z = latents.to(self.basis.dtype).permute(0, 2, 3, 4, 1)  # (B, F, h, w, C)
        x = (z * self.std) @ self.basis.T + self.mean  # (B, F, h, w, D)
        return self.unpatch(x)

    @torch.no_grad()
    def fit(self, videos: Iterable[torch.Tensor]) -> PatchPCACodec:
        """Fit mean, basis and per-channel std on (B, 3, T, H, W) clips (one pass, float64)."""
        D = self.mean.numel()
        n, s, ss = 0, torch.zeros(D, dtype=torch.float64), torch.zeros(D, D, dtype=torch.float64)
        for video in videos:
            _check_video(video)
            x = self.patches(video.double()).reshape(-1, D)  # (N, D)
            n, s, ss = n + x.shape[0], s + x.sum(0), ss + x.T @ x
        if n < 2:
            raise ValueError("fit needs at least one clip")
        mean = s / n
        cov = ss / n - torch.outer(mean, mean)  # (D, D)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        order = evals.argsort(descending=True)[: self.latent_channels]
        basis = evecs[:, order]  # (D, C)
        std = evals[order].clamp_min(1e-12).sqrt()  # latent std along each component
        self.mean.copy_(mean.float())
        self.basis.copy_(basis.float())
        self.std.copy_(std.float())
        self.explained_variance = float(evals[order].sum() / evals.sum().clamp_min(1e-12))
        return self

    # --- files ------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write atomically (temporary name, then rename): a killed run never leaves half a file."""
        import os

        path = Path(path)
        meta = {"latent_channels": self.latent_channels, "temporal_factor": self.temporal_factor,
                "spatial_factor": self.spatial_factor}  # fmt: skip
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp),
                  metadata={"codec": "patch-pca", "config": json.dumps(meta)})  # fmt: skip
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> PatchPCACodec:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no PCA codec file (write one with PatchPCACodec.fit(...).save(path))"
            )
        with safe_open(str(path), "pt") as f:
            meta = json.loads(f.metadata()["config"])
        codec = cls(**meta)
        codec.load_state_dict(load_file(str(path)))
        return codec


class WanVAECodec(LatentCodec):
    """diffusers ``AutoencoderKLWan`` (Wan 2.1 or 2.2 VAE) with per-channel latent normalisation."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae
        cfg = vae.config
        self.latent_channels = int(cfg.z_dim)
        self.temporal_factor = int(getattr(cfg, "scale_factor_temporal", None) or 4)
        self.spatial_factor = int(getattr(cfg, "scale_factor_spatial", None) or 8)
        shape = (1, self.latent_channels, 1, 1, 1)
        self.register_buffer(
            "latent_mean", torch.tensor(cfg.latents_mean, dtype=torch.float32).view(shape)
        )
        self.register_buffer(
            "latent_std", torch.tensor(cfg.latents_std, dtype=torch.float32).view(shape)
        )

    @classmethod
    def from_folder(cls, path: str | Path, torch_dtype=None) -> WanVAECodec:
        """Load a diffusers VAE folder (``config.json`` + weights) or a pipeline folder with ``vae/``."""
        from diffusers import AutoencoderKLWan

        path = Path(path)
        if (path / "vae" / "config.json").exists():
            path = path / "vae"
        if not (path / "config.json").exists() or not any(path.glob("*.safetensors")):
            raise FileNotFoundError(
                f"{path} is not a diffusers Wan VAE folder: expected config.json and "
                "diffusion_pytorch_model.safetensors (or a pipeline folder with a vae/ subfolder)"
            )
        return cls(AutoencoderKLWan.from_pretrained(path, torch_dtype=torch_dtype))

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        _check_video(video)
        self.latent_shape(*video.shape[2:])
        dtype = next(self.vae.parameters()).dtype
        z = self.vae.encode(video.to(dtype)).latent_dist.mode().float()  # (B, C, F, h, w)
        return (z - self.latent_mean) / self.latent_std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        dtype = next(self.vae.parameters()).dtype
        z = latents.float() * self.latent_std + self.latent_mean
        return self.vae.decode(z.to(dtype)).sample.float().clamp(-1.0, 1.0)


def psnr(a: torch.Tensor, b: torch.Tensor, peak_to_peak: float = 2.0) -> float:
    """PSNR in dB of two signals with the given range ([-1, 1] -> 2)."""
    mse = (a.double() - b.double()).pow(2).mean().item()
    return (
        float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(peak_to_peak**2 / mse)).item()
    )
