"""Flow-matching math: noise levels, the flow shift, the noising step and its target.

Training draws sigma per sample (:func:`sample_sigmas`), noises the clean latents with
:func:`add_noise` and regresses the velocity v = eps - x; the sampling pipeline walks the
same sigmas from 1 to 0. Kept in ``model`` so the model's loss and the pipeline share it
and ``model`` never imports ``train``.
"""

from __future__ import annotations

import torch


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


def flash_sigmas(
    batch: int, shift: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """DreamZero's decoupled noise (Flash, Sec. 3.2, A.5.5): (video, action) sigmas, (batch,) each.

    DreamZero writes t = 1 for clean data and draws the video's t as 1 - Beta(3, 1): mostly
    noisy video. Here sigma is the noise level (sigma = 1 - t, 1 = pure noise), so the
    video's sigma is Beta(3, 1) itself (mean 0.75) and the action's uniform (shifted like
    the rest): the model learns to read clean actions out of a barely denoised video
    context, which one-step action sampling needs. Beta(3, 1) has the CDF x^3, so it is
    drawn as u^(1/3) with the run's own generator.
    """
    video = torch.rand(batch, generator=generator) ** (1 / 3)
    action = shift_sigma(torch.rand(batch, generator=generator), shift)
    return video.clamp(1e-4, 1 - 1e-4), action.clamp(1e-4, 1 - 1e-4)


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
