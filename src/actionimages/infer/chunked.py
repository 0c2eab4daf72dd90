"""Chunk-by-chunk sampling of an autoregressive world action model (DreamZero Algorithm 2).

For a model with ``ModelConfig.chunk_frames`` K > 0 (:mod:`actionimages.model.causal`).
A :class:`ChunkSession` holds one clip's window: its conditions, the packed latents
(B, C, 2 V F, h, w) and a :class:`~actionimages.model.causal.KVCache`. Chunk by chunk:

    s = ChunkSession.start(wam, enc, states, held, guidance, empty_context)
    for c in range(s.num_chunks):
        s.denoise(c, scheduler, config)      # only chunk c's tokens, against the cache
        s.write(c)                           # chunk c, clean (t = 0), into the cache
        # ... or s.write(c, real_latents): the executed chunk's real observations and
        # poses replace what was predicted (the policy's loop, policy/autoregressive.py)

The text's cross-attention keys and values are made once per session (the cache's
``cross``). Classifier-free guidance is batched: the session runs at batch 2B, conditional
and unconditional halves each with their own cache rows. Velocity caching follows the
pipeline's rule within each chunk. ``use_cache=False`` recomputes the whole block-causal
sequence at every step instead, the reference the cache must equal (a test, 1e-5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from actionimages.model.causal import (
    KVCache,
    block_causal_mask,
    chunk_of_packed_frame,
    chunk_tokens,
    frames_of_tokens,
    num_chunks,
)
from actionimages.model.masking import UNKNOWN, VISIBLE, frame_timesteps, to_tokens
from actionimages.model.wam import EncodedBatch, WorldActionModel


@dataclass
class ChunkSession:
    """One window of autoregressive sampling (see the module docstring).

    x: (B, C, 2VF, h, w) latents in the diffusion space: clean for written chunks, the
    sample for the latest denoised chunk, the starting values (``held``) elsewhere.
    """

    wam: WorldActionModel
    enc: EncodedBatch  # batch B, or 2B ([conditional; unconditional]) with guidance
    states: torch.Tensor  # (B, 2VF) frame states of the mode
    held: torch.Tensor  # (B, C, 2VF, h, w): visible frames clean, the rest their noise
    x: torch.Tensor
    guidance: float
    cache: KVCache | None  # None: recompute everything (the reference path)
    chunk: torch.Tensor  # (2VF,) chunk of each packed frame
    written: int = 0  # chunks 0 .. written - 1 are in the cache
    calls: int = 0  # transformer passes (a batched CFG pass counts once, writes count)

    @classmethod
    def start(cls, wam: WorldActionModel, enc: EncodedBatch, states: torch.Tensor,
              held: torch.Tensor, guidance: float = 1.0, empty_context: torch.Tensor | None = None,
              use_cache: bool = True, window: int | None = None) -> ChunkSession:  # fmt: skip
        """A session over ``enc``'s clip; ``empty_context`` (B, S, D) is needed for guidance.

        ``window``: the cache keeps the last this many chunks (None: all of the clip)."""
        K = wam.config.chunk_frames
        if not K:
            raise ValueError("chunked sampling needs an autoregressive model (chunk_frames > 0)")
        if guidance != 1.0:
            if empty_context is None:
                raise ValueError("guidance needs the empty prompt's context (empty_context)")
            cat = lambda a, b: None if a is None else torch.cat([a, b])  # noqa: E731
            enc = dataclasses.replace(enc, context=torch.cat([enc.context, empty_context]),
                                      camera=cat(enc.camera, enc.camera),
                                      latents=cat(enc.latents, enc.latents))  # fmt: skip
        chunk = chunk_of_packed_frame(2 * enc.num_views, enc.frames_per_clip, K).to(held.device)
        cache = KVCache(len(wam.transformer.blocks), window) if use_cache else None
        return cls(wam, enc, states, held, held.clone(), guidance, cache, chunk)

    @property
    def num_chunks(self) -> int:
        return num_chunks(self.enc.frames_per_clip, self.wam.config.chunk_frames)

    def frames(self, c: int) -> torch.Tensor:
        """(f,) packed frame indices of chunk ``c``."""
        return torch.nonzero(self.chunk == c).flatten()

    # --- model calls ------------------------------------------------------------------
    def _tokens_per_frame(self) -> int:
        _, p_h, p_w = self.wam.config.patch_size
        return (self.x.shape[-2] // p_h) * (self.x.shape[-1] // p_w)

    def _run(self, x: torch.Tensor, sigma_frames: torch.Tensor, c: int, write: bool):
        """The transformer on chunk ``c`` of ``x`` (B, C, 2VF, h, w) at per-frame levels
        ``sigma_frames`` (B, 2VF) -> chunk c's outputs (B', C, f, h, w), B' = B or 2B."""
        wam, enc, n = self.wam, self.enc, self._tokens_per_frame()
        frames = self.frames(c)
        t = to_tokens(sigma_frames * 1000.0, n)  # (B, L)
        if self.guidance != 1.0:
            x, t = torch.cat([x, x]), torch.cat([t, t])
        self.calls += 1
        tr = wam.transformer
        if self.cache is not None:
            tokens = chunk_tokens(c, 2 * enc.num_views, enc.frames_per_clip,
                                  wam.config.chunk_frames, n).to(x.device)  # fmt: skip
            out = tr.forward_tokens(x, t, enc.context, tokens, self.cache, camera=enc.camera,
                                    write=write)  # (B', n_c, p_h p_w C)  # fmt: skip
            return frames_of_tokens(
                out, len(frames), x.shape[-2], x.shape[-1], tr.config.patch_size
            )
        mask = block_causal_mask(2 * enc.num_views, enc.frames_per_clip, wam.config.chunk_frames,
                                 n).to(x.device)  # fmt: skip
        with torch.no_grad():
            out = tr(x, t, enc.context, camera=enc.camera, attention_mask=mask)
        return out[:, :, frames]

    def _levels(self, c: int, sigma: float) -> torch.Tensor:
        """(B, 2VF) noise levels: written chunks clean (unknown frames 1), chunk c at ``sigma``."""
        B = self.states.shape[0]
        clean = (self.states == UNKNOWN).float()
        now = frame_timesteps(self.states, torch.full((B,), sigma, device=self.x.device))
        return torch.where((self.chunk == c)[None], now, clean)

    # --- Algorithm 2 --------------------------------------------------------------------
    @torch.no_grad()
    def denoise(self, c: int, scheduler, config) -> None:
        """Sample chunk ``c``'s generated frames from their noise against chunks < c.

        ``config``: the pipeline's :class:`~actionimages.infer.pipeline.SamplingConfig`
        (steps, velocity caching); ``scheduler`` a diffusers flow-matching scheduler.
        """
        if c != self.written:
            raise ValueError(
                f"chunk {c} needs chunks 0..{c - 1} in the cache; {self.written} written"
            )
        frames = self.frames(c)
        states = self.states[:, frames]  # (B, f)
        hold = ((states == VISIBLE) | (states == UNKNOWN))[:, None, :, None, None]
        held = self.held[:, :, frames]
        x_c = held.clone()
        if bool(hold.all()):  # nothing to generate (e.g. chunk 0 with the pose given)
            self.x[:, :, frames] = x_c
            return
        gen = (~hold).expand_as(x_c)
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, config.steps + 1)[:-1],
                                device=x_c.device)  # fmt: skip
        prev_v = cached_v = None
        reuse_left = 0
        for i, t in enumerate(scheduler.timesteps):
            if cached_v is not None and reuse_left > 0:
                v, reuse_left = cached_v, reuse_left - 1  # velocity cache hit: skip the model
            else:
                x = self.x.clone()
                x[:, :, frames] = x_c
                out = self._run(x, self._levels(c, float(scheduler.sigmas[i])), c, write=False)
                if self.guidance != 1.0:
                    v_cond, v_uncond = out.chunk(2)
                    out = v_uncond + self.guidance * (v_cond - v_uncond)
                v = out.to(x_c.dtype)
                if config.cache_threshold is not None and prev_v is not None:
                    cos = torch.nn.functional.cosine_similarity(
                        v[gen].flatten(), prev_v[gen].flatten(), dim=0
                    )
                    hit = min(float(cos), 1.0) > config.cache_threshold
                    reuse_left = config.cache_window if hit else 0
                prev_v = cached_v = v
            x_c = scheduler.step(v, t, x_c, return_dict=False)[0]
            x_c = torch.where(hold, held, x_c)
        self.x[:, :, frames] = x_c

    @torch.no_grad()
    def write(self, c: int, latents: torch.Tensor | None = None) -> None:
        """Put chunk ``c`` into the cache, clean (t = 0): the sample, or ``latents``
        (B, C, 2VF, h, w), whose chunk-c frames replace it (the real observations).
        Unknown frames (actions of the ``video`` mode) stay noise at t = 1."""
        if c != self.written:
            raise ValueError(f"chunk {c} cannot be written after {self.written} chunks")
        frames = self.frames(c)
        if latents is not None:
            unknown = (self.states[:, frames] == UNKNOWN)[:, None, :, None, None]
            self.x[:, :, frames] = torch.where(unknown, self.held[:, :, frames],
                                               latents[:, :, frames].to(self.x))  # fmt: skip
        if self.cache is not None:
            self._run(self.x, self._levels(-1, 0.0), c, write=True)
        self.written = c + 1


def sample_chunks(wam: WorldActionModel, enc: EncodedBatch, states: torch.Tensor,
                  held: torch.Tensor, scheduler, config, empty_context=None,
                  use_cache: bool = True) -> tuple[torch.Tensor, int]:  # fmt: skip
    """A whole clip chunk by chunk, each written back as sampled -> (x (B, C, 2VF, h, w), calls)."""
    s = ChunkSession.start(wam, enc, states, held, config.guidance, empty_context, use_cache)
    for c in range(s.num_chunks):
        s.denoise(c, scheduler, config)
        if c + 1 < s.num_chunks:
            s.write(c)
    return s.x, s.calls
