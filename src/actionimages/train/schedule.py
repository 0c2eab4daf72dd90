"""Learning-rate and noise-level schedules, and the flow-matching noising step."""

from __future__ import annotations

import torch


def warmup_constant(warmup_steps: int):
    """LambdaLR factor: linear from 1/(w+1) to 1 over ``warmup_steps``, then 1 (paper: constant)."""

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / (warmup_steps + 1)) if warmup_steps > 0 else 1.0

    return factor


def shift_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Flow shift (SD3 / Wan): sigma = s u / (1 + (s - 1) u); s > 1 spends more steps at high noise."""
    return shift * u / (1 + (shift - 1) * u)


def sample_sigmas(
    batch: int, shift: float, sampling: str, generator: torch.Generator
) -> torch.Tensor:
    """(batch,) training noise levels in (0, 1)."""
    if sampling == "uniform":
        u = torch.rand(batch, generator=generator)
    elif sampling == "logit_normal":
        u = torch.sigmoid(torch.randn(batch, generator=generator))
    else:
        raise ValueError(f"unknown timestep sampling {sampling!r}")
    return shift_sigma(u.clamp(1e-4, 1 - 1e-4), shift)


def add_noise(
    x: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow matching: x_t = (1 - sigma) x + sigma eps and its velocity target v = eps - x.

    ``sigma`` broadcasts against ``x`` (per frame: (B, 1, F, 1, 1)).
    """
    return (1 - sigma) * x + sigma * noise, noise - x


def sampling_sigmas(steps: int, shift: float) -> torch.Tensor:
    """(steps + 1,) decreasing noise levels from 1 to 0 for the Euler sampler."""
    return shift_sigma(torch.linspace(1.0, 0.0, steps + 1), shift)
