"""Block-causal attention over chunks, and a KV cache for chunk-by-chunk inference (issue 11).

The first part of DreamZero's autoregressive mode (Sec. 3.1, Algorithm 2) on this
project's packed sequences. A packed sequence holds 2V clips (video and action of every
view) of F latent frames each; **chunk 0** is latent frame 0 of every clip (the current observation) and **chunk c
>= 1** latent frames 1 + (c - 1) K .. c K (4 K control steps). Attention is block-causal: a token attends to its own chunk and to earlier chunks.

    mask = block_causal_mask(num_clips, frames_per_clip, K, tokens_per_frame)   # (L, L) bool
    full = transformer(x, t, ctx, camera=cam, attention_mask=mask)             # recompute all
    cache = KVCache(num_layers)
    for c in range(num_chunks(F, K)):                                          # chunk by chunk
        out_c = transformer.forward_tokens(x, t, ctx, chunk_tokens(c, ...), cache, camera=cam)

``forward_tokens`` runs the blocks on the chosen tokens only: their self-attention reads
the cached keys and values of every earlier chunk plus their own, and (``write=True``)
appends their own to the cache. Everything else in a block acts token by token, so the
chunked pass equals the masked full pass (a test checks max |diff| <= 1e-5 in float32).
Rotary positions are the full sequence's, sliced, so they are the same in both.

Teacher forcing (Algorithm 1) runs one pass over [clean copy; noisy copy] of the sequence
with :func:`teacher_forcing_mask` and ``rotary_repeat=2``; a test checks that its noisy
outputs equal cached inference with the clean chunks in the cache. The loss in this mode
is ``WorldActionModel.loss`` (``ModelConfig.chunk_frames`` > 0), chunk-by-chunk sampling
is :mod:`actionimages.infer.chunked`, and the closed loop that writes real observations
into the cache is :mod:`actionimages.policy.autoregressive`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def chunk_of_frame(frames_per_clip: int, chunk_frames: int) -> torch.Tensor:
    """(F,) chunk index of each latent frame of a clip: frame 0 alone, then K frames a chunk.

    Chunk 0 is the current observation (one source frame: the latent codecs' first frame
    stands alone), chunk c >= 1 holds latent frames 1 + (c - 1) K .. c K, i.e. 4 K control
    steps of video and actions. So F - 1 must be a multiple of K.
    """
    if chunk_frames < 1 or (frames_per_clip - 1) % chunk_frames:
        raise ValueError(
            f"frames_per_clip - 1 = {frames_per_clip - 1} must be a multiple of chunk_frames "
            f"{chunk_frames} (chunk 0 is latent frame 0 alone)"
        )
    f = torch.arange(frames_per_clip)
    return torch.where(f == 0, 0, 1 + (f - 1) // chunk_frames)


def num_chunks(frames_per_clip: int, chunk_frames: int) -> int:
    """Chunks of a clip of F latent frames: 1 + (F - 1) / K."""
    return int(chunk_of_frame(frames_per_clip, chunk_frames)[-1]) + 1


def chunk_of_packed_frame(num_clips: int, frames_per_clip: int, chunk_frames: int) -> torch.Tensor:
    """(num_clips F,) chunk index of every packed latent frame (clip order of ``packing``)."""
    return chunk_of_frame(frames_per_clip, chunk_frames).repeat(num_clips)


def chunk_of_tokens(
    num_clips: int, frames_per_clip: int, chunk_frames: int, tokens_per_frame: int
) -> torch.Tensor:
    """(L,) chunk index of every token of a packed sequence (token order: frame, h, w)."""
    c = chunk_of_packed_frame(num_clips, frames_per_clip, chunk_frames)  # (2VF,)
    return c.repeat_interleave(tokens_per_frame)  # (L,)


def block_causal_mask(
    num_clips: int, frames_per_clip: int, chunk_frames: int, tokens_per_frame: int,
    window: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """(L, L) bool, True where query token i may attend to key token j (chunk_j <= chunk_i).

    ``window``: also chunk_j >= chunk_i - window (a sliding context of the ``window``
    previous chunks, what a :class:`KVCache` with ``window`` keeps).
    """
    c = chunk_of_tokens(num_clips, frames_per_clip, chunk_frames, tokens_per_frame)
    mask = c[None, :] <= c[:, None]
    if window is not None:
        mask &= c[None, :] >= c[:, None] - window
    return mask


def chunk_tokens(
    chunk: int, num_clips: int, frames_per_clip: int, chunk_frames: int, tokens_per_frame: int
) -> torch.Tensor:
    """(n,) positions of chunk ``chunk``'s tokens in the packed sequence, in sequence order."""
    c = chunk_of_tokens(num_clips, frames_per_clip, chunk_frames, tokens_per_frame)
    return torch.nonzero(c == chunk).flatten()


def teacher_forcing_mask(
    num_clips: int, frames_per_clip: int, chunk_frames: int, tokens_per_frame: int
) -> torch.Tensor:
    """(2L, 2L) bool mask of DreamZero's Fig. 11 over [clean copy; noisy copy] of a sequence.

    Clean tokens attend block-causally to clean tokens (what the cache will hold at
    inference); a noisy token of chunk c attends to the clean tokens of chunks < c and to
    the noisy tokens of chunk c, exactly what it sees when chunk c is denoised against the
    cache. Run with ``rotary_repeat=2`` so both copies share positions.
    """
    c = chunk_of_tokens(num_clips, frames_per_clip, chunk_frames, tokens_per_frame)
    clean_clean = c[None, :] <= c[:, None]
    noisy_clean = c[None, :] < c[:, None]
    noisy_noisy = c[None, :] == c[:, None]
    top = torch.cat([clean_clean, torch.zeros_like(clean_clean)], dim=1)
    bottom = torch.cat([noisy_clean, noisy_noisy], dim=1)
    return torch.cat([top, bottom], dim=0)


@dataclass
class KVCache:
    """Per-layer rotated keys and values, (B, S, heads, head_dim), of the tokens written so far.

    The context limit: ``window`` None keeps every chunk (memory and per-chunk time grow
    with the episode); an integer keeps the last ``window`` chunks written (a sliding
    window; equal to :func:`block_causal_mask` with the same ``window``). Each ``append``
    per layer is one chunk.
    """

    num_layers: int
    window: int | None = None
    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    cross: list = field(default_factory=list)  # per layer (k, v) of the prompt, made once

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be None or >= 1 chunk, got {self.window}")
        self.keys = [None] * self.num_layers
        self.values = [None] * self.num_layers
        self.sizes = [[] for _ in range(self.num_layers)]  # tokens per cached chunk
        self.cross = [None] * self.num_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else int(self.keys[0].shape[1])

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        old_k, old_v = self.keys[layer], self.values[layer]
        k = k if old_k is None else torch.cat([old_k, k], dim=1)
        v = v if old_v is None else torch.cat([old_v, v], dim=1)
        sizes = [
            *self.sizes[layer],
            int(k.shape[1]) - (0 if old_k is None else int(old_k.shape[1])),
        ]
        if self.window is not None and len(sizes) > self.window:
            drop = sum(sizes[: len(sizes) - self.window])
            k, v, sizes = k[:, drop:], v[:, drop:], sizes[-self.window :]
        self.keys[layer], self.values[layer], self.sizes[layer] = k, v, sizes


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Wan's rotary embedding on (B, S, heads, head_dim): pairs (2i, 2i + 1) rotated."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


def cached_self_attention(attn, h, rotary, cache: KVCache, layer: int, write: bool):
    """Self-attention of the new tokens ``h`` (B, n, D) against the cache plus themselves.

    The projections, norms and rotation are Wan's own (diffusers' ``WanAttention``
    modules); written out here because diffusers' processor has no cache.
    """
    query, key, value = attn.to_q(h), attn.to_k(h), attn.to_v(h)
    query, key = attn.norm_q(query), attn.norm_k(key)
    query, key, value = (t.unflatten(2, (attn.heads, -1)) for t in (query, key, value))
    query, key = apply_rotary(query, *rotary), apply_rotary(key, *rotary)  # (B, n, H, d)
    keys, values = key, value
    if cache.keys[layer] is not None:
        keys = torch.cat([cache.keys[layer], key], dim=1)
        values = torch.cat([cache.values[layer], value], dim=1)
    out = F.scaled_dot_product_attention(
        query.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2)
    ).transpose(1, 2)  # (B, n, H, d)
    if write:
        cache.append(layer, key, value)
    out = out.flatten(2, 3).type_as(query)
    return attn.to_out[1](attn.to_out[0](out))


def cached_cross_attention(attn, h, context, cache: KVCache, layer: int):
    """Cross-attention of ``h`` (B, n, D) to the prompt, whose keys and values are computed
    at the first chunk and reused for every later one (one prompt per episode)."""
    if cache.cross[layer] is None:
        key, value = attn.norm_k(attn.to_k(context)), attn.to_v(context)
        cache.cross[layer] = (
            key.unflatten(2, (attn.heads, -1)),
            value.unflatten(2, (attn.heads, -1)),
        )
    key, value = cache.cross[layer]
    query = attn.norm_q(attn.to_q(h)).unflatten(2, (attn.heads, -1))
    out = F.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
    ).transpose(1, 2)
    out = out.flatten(2, 3).type_as(query)
    return attn.to_out[1](attn.to_out[0](out))


def frames_of_tokens(tokens: torch.Tensor, num_frames: int, height: int, width: int,
                     patch_size) -> torch.Tensor:  # fmt: skip
    """(B, n, p_h p_w C) outputs of ``transformer.forward_tokens`` -> (B, C, f, H, W) latent frames (p_t = 1).

    The inverse of :func:`actionimages.model.transformer.tokens_of` for the ``num_frames``
    whole frames a call ran on.
    """
    B = tokens.shape[0]
    _, p_h, p_w = patch_size
    x = tokens.reshape(B, num_frames, height // p_h, width // p_w, p_h, p_w, -1)
    x = x.permute(0, 6, 1, 2, 4, 3, 5)  # (B, C, f, h, p_h, w, p_w)
    return x.reshape(B, x.shape[1], num_frames, height, width)
