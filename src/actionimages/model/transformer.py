"""The unified world action model: diffusers' Wan transformer with a camera branch.

``ActionImagesWanTransformer`` subclasses diffusers' ``WanTransformer3DModel``; every
upstream weight keeps its name, so diffusers-format Wan checkpoints load by name, and
each block gains two modules (see :mod:`actionimages.model.camera`):

    blocks.{i}.cam_encoder   camera map -> per-token features (last layer zero-initialised)
    blocks.{i}.projector     dim -> dim on the self-attention output (identity-initialised)

Inside a block (ReCamMaster style), with a, b, g the adaLN shift/scale/gate:

    h   = norm1(x) * (1 + b) + a + cam_encoder(camera)      # camera enters self-attention
    x   = x + g * projector(self_attn(h))
    x   = x + cross_attn(norm2(x), text);   x = x + g' * ffn(norm3(x) * (1 + b') + a')

Timesteps may be per sample (B,) or per token (B, L): visible tokens carry t = 0 and
predicted tokens the sampled t (diffusers' Wan accepts both; Wan2.2 TI2V uses the
per-token form). Several clips are packed along the frame axis by
:mod:`actionimages.model.packing`; the rotary embedding simply numbers the packed frames.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel, WanTransformerBlock
from torch import nn

from actionimages.model.camera import (
    FramePooledCameraEncoder,
    TokenCameraEncoder,
    identity_projector,
)
from actionimages.model.config import ModelConfig


class CameraWanBlock(WanTransformerBlock):
    """A Wan block whose self-attention input gets camera features and whose output a projector."""

    def __init__(self, dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim,
                 camera_encoder="token", camera_channels=24, camera_subgrid=2, camera_pool=(48, 16, 16)):  # fmt: skip
        super().__init__(dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim)
        self.camera_args = (camera_encoder, camera_channels, camera_subgrid, tuple(camera_pool))
        self.reset_camera_branch()

    def reset_camera_branch(self, device=None, dtype=None) -> None:
        """(Re)create the camera encoder (zero output) and projector (identity) on ``device``."""
        kind, channels, subgrid, pool = self.camera_args
        dim = self.scale_shift_table.shape[-1]
        if kind == "token":
            self.cam_encoder = TokenCameraEncoder(channels, dim, subgrid)
        else:
            self.cam_encoder = FramePooledCameraEncoder(dim, pool)
        self.projector = identity_projector(dim)
        self.cam_encoder.to(device=device, dtype=dtype)
        self.projector.to(device=device, dtype=dtype)

    def modulation(self, temb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """adaLN parameters: six (B, 1, D) tensors, or (B, L, D) for per-token timesteps."""
        if temb.ndim == 4:  # (B, L, 6, D): one modulation per token
            params = self.scale_shift_table.unsqueeze(0) + temb.float()  # (B, L, 6, D)
            return tuple(p.squeeze(2) for p in params.chunk(6, dim=2))
        params = self.scale_shift_table + temb.float()  # (B, 6, D)
        return params.chunk(6, dim=1)

    def forward(
        self,
        hidden_states,
        encoder_hidden_states,
        temb,
        rotary_emb,
        camera_features=None,
        grid=None,
        attention_mask=None,
        kv=None,
    ):
        """``attention_mask`` (L, L) bool: block-causal attention (:mod:`actionimages.model.causal`).
        ``kv`` = (cache, layer, write): self-attention against a KV cache (``forward_tokens``)."""
        x = hidden_states  # (B, L, D)
        shift, scale, gate, ff_shift, ff_scale, ff_gate = self.modulation(temb)

        # 1. Self-attention over every view and modality, with the camera added to its input.
        h = (self.norm1(x.float()) * (1 + scale) + shift).type_as(x)
        if camera_features is not None:
            h = h + self.cam_encoder(camera_features, grid).type_as(h)
        if kv is None:
            attn = self.projector(self.attn1(h, None, attention_mask, rotary_emb))
        else:
            from actionimages.model.causal import cached_self_attention

            cache, layer, write = kv
            attn = self.projector(
                cached_self_attention(self.attn1, h, rotary_emb, cache, layer, write)
            )
        x = (x.float() + attn * gate).type_as(x)

        # 2. Cross-attention to the text (and, for I2V weights, CLIP image) tokens.
        h = self.norm2(x.float()).type_as(x)
        if kv is None:
            x = x + self.attn2(h, encoder_hidden_states, None, None)
        else:  # the prompt's keys and values, once per cache
            from actionimages.model.causal import cached_cross_attention

            x = x + cached_cross_attention(self.attn2, h, encoder_hidden_states, kv[0], kv[1])

        # 3. Feed-forward.
        h = (self.norm3(x.float()) * (1 + ff_scale) + ff_shift).type_as(x)
        x = (x.float() + self.ffn(h).float() * ff_gate).type_as(x)
        return x


class ActionImagesWanTransformer(WanTransformer3DModel):
    """diffusers ``WanTransformer3DModel`` + per-block camera branch (see the module docstring)."""

    _no_split_modules = ["CameraWanBlock"]  # noqa: RUF012 (diffusers class attributes)
    _repeated_blocks = ["CameraWanBlock"]  # noqa: RUF012
    _cp_plan = None  # the upstream context-parallel plan assumes the upstream block signature

    @register_to_config
    def __init__(
        self,
        patch_size=(1, 2, 2),
        num_attention_heads=40,
        attention_head_dim=128,
        in_channels=16,
        out_channels=16,
        text_dim=4096,
        freq_dim=256,
        ffn_dim=13824,
        num_layers=40,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        image_dim=None,
        added_kv_proj_dim=None,
        rope_max_seq_len=1024,
        pos_embed_seq_len=None,
        camera_encoder="token",
        camera_channels=24,
        camera_subgrid=2,
        camera_pool=(48, 16, 16),
    ):
        # Build the upstream model without blocks (num_layers=0), then ours. diffusers
        # registers the config before running __init__, so the parent's call records
        # num_layers=0 over ours: record the real value again afterwards.
        super().__init__(patch_size, num_attention_heads, attention_head_dim, in_channels, out_channels,
                         text_dim, freq_dim, ffn_dim, 0, cross_attn_norm, qk_norm, eps, image_dim,
                         added_kv_proj_dim, rope_max_seq_len, pos_embed_seq_len)  # fmt: skip
        dim = num_attention_heads * attention_head_dim
        self.blocks = nn.ModuleList(
            CameraWanBlock(
                dim,
                ffn_dim,
                num_attention_heads,
                qk_norm,
                cross_attn_norm,
                eps,
                added_kv_proj_dim,
                camera_encoder,
                camera_channels,
                camera_subgrid,
                camera_pool,
            )
            for _ in range(num_layers)
        )
        self.register_to_config(num_layers=num_layers)

    # --- construction -----------------------------------------------------------------
    @classmethod
    def from_model_config(cls, cfg: ModelConfig) -> ActionImagesWanTransformer:
        """A freshly initialised model of a :class:`ModelConfig`."""
        return cls(**cfg.wan_kwargs(), camera_encoder=cfg.camera_encoder, camera_channels=cfg.camera_channels,
                   camera_subgrid=cfg.camera_subgrid, camera_pool=cfg.camera_pool)  # fmt: skip

    @classmethod
    def from_wan_pretrained(
        cls, path: str | Path, torch_dtype=None, **camera_kwargs
    ) -> ActionImagesWanTransformer:
        """Load diffusers-format Wan transformer weights and add a fresh camera branch.

        Args:
            path: a diffusers transformer folder (``config.json`` + ``*.safetensors``, sharded
                or not) or a pipeline folder with a ``transformer/`` subfolder.
            torch_dtype: dtype to load the weights in (default: as stored).
            camera_kwargs: camera_encoder / camera_channels / camera_subgrid / camera_pool.

        The upstream model loads through diffusers; ours is then built with empty (meta)
        parameters, takes the upstream tensors by name, and its camera modules are created
        and initialised explicitly: diffusers would leave modules it has no weights for on
        the meta device.
        """
        from accelerate import init_empty_weights

        folder = resolve_transformer_folder(path)
        base = WanTransformer3DModel.from_pretrained(folder, torch_dtype=torch_dtype)
        config = {k: v for k, v in base.config.items() if not k.startswith("_")}
        config.update(camera_kwargs)
        with init_empty_weights():  # parameters on meta, buffers (rotary tables) real
            model = cls(**config)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False, assign=True)
        new = [k for k in missing if ".cam_encoder." not in k and ".projector." not in k]
        if new or unexpected:
            raise ValueError(
                f"Wan weights do not match the backbone: missing {new[:5]}, unexpected {unexpected[:5]}"
            )
        ref = base.proj_out.weight
        for block in model.blocks:
            block.reset_camera_branch(device=ref.device, dtype=ref.dtype)
        return model

    def camera_state_is_initial(self) -> bool:
        """True while every camera encoder outputs zero and every projector is the identity."""
        for block in self.blocks:
            for p in block.cam_encoder.parameters():
                if p.device.type == "meta" or p.count_nonzero():
                    return False
            eye = torch.eye(block.projector.weight.shape[0], dtype=block.projector.weight.dtype)
            if (
                not torch.equal(block.projector.weight.cpu(), eye)
                or block.projector.bias.count_nonzero()
            ):
                return False
        return True

    # --- forward ----------------------------------------------------------------------
    def forward(
        self,
        hidden_states,
        timestep,
        encoder_hidden_states,
        camera=None,
        encoder_hidden_states_image=None,
        return_dict: bool = False,
        attention_kwargs=None,
        attention_mask=None,
        rotary_repeat: int = 1,
    ):
        """Predict the flow-matching velocity of a packed latent sequence.

        Args:
            hidden_states: (B, C_in, F, H, W) packed latents (plus condition channels for I2V weights).
            timestep: (B,) or (B, L) in [0, 1000], L = (F / p_t) (H / p_h) (W / p_w) tokens.
            encoder_hidden_states: (B, S, text_dim) text tokens.
            camera: (B, F / p_t, C_cam, h, w) camera map per latent frame, or None (no camera).
            encoder_hidden_states_image: (B, 257, image_dim) CLIP tokens (I2V weights only).
            attention_mask: (L, L) bool self-attention mask (True = attend), e.g. block-causal
                (:func:`actionimages.model.causal.block_causal_mask`); None = full attention.
            rotary_repeat: the sequence is this many copies of one packed sequence along the
                frame axis (teacher forcing: clean + noisy), which share its rotary positions.

        Returns:
            (B, C_out, F, H, W) velocity (a 1-tuple / ``.sample`` output when ``return_dict``).
        """
        B, C, Fr, H, W = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        if C != self.config.in_channels or Fr % p_t or H % p_h or W % p_w:
            raise ValueError(
                f"hidden_states must be (B, {self.config.in_channels}, F, H, W) with F, H, W divisible by "
                f"patch_size {tuple(self.config.patch_size)}, got {tuple(hidden_states.shape)}"
            )
        grid = (Fr // p_t, H // p_h, W // p_w)
        num_tokens = grid[0] * grid[1] * grid[2]
        if timestep.ndim == 2 and timestep.shape != (B, num_tokens):
            raise ValueError(
                f"per-token timestep must be (B, L) = ({B}, {num_tokens}), got {tuple(timestep.shape)}"
            )
        if self.config.image_dim is not None and encoder_hidden_states_image is None:
            raise ValueError(
                "these weights have a CLIP image branch: pass encoder_hidden_states_image (B, 257, 1280)"
            )

        if rotary_repeat > 1:  # teacher forcing: copies of one sequence share its positions
            cos, sin = self.rope(hidden_states[:, :, : Fr // rotary_repeat])
            rotary_emb = (cos.repeat(1, rotary_repeat, 1, 1), sin.repeat(1, rotary_repeat, 1, 1))
        else:
            rotary_emb = self.rope(hidden_states)
        x = self.patch_embedding(hidden_states)  # (B, D, f, h, w)
        x = x.flatten(2).transpose(1, 2).contiguous()  # (B, L, D), token order (f, h, w)

        per_token = timestep.ndim == 2
        temb, timestep_proj, context, context_image = self.condition_embedder(
            timestep.flatten() if per_token else timestep, encoder_hidden_states, encoder_hidden_states_image,
            timestep_seq_len=timestep.shape[1] if per_token else None,
        )  # fmt: skip
        timestep_proj = timestep_proj.unflatten(-1, (6, -1))  # (B, 6, D) or (B, L, 6, D)
        if context_image is not None:
            context = torch.concat([context_image, context], dim=1)

        # Pooling is parameter-free, so it runs once; each block applies its own projection.
        features = None if camera is None else self.blocks[0].cam_encoder.features(camera, grid)
        for block in self.blocks:
            args = (x, context, timestep_proj, rotary_emb, features, grid, attention_mask)
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, *args)
            else:
                x = block(*args)

        if temb.ndim == 3:  # (B, L, D): per-token output modulation
            shift, scale = (self.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)
            shift, scale = shift.squeeze(2), scale.squeeze(2)
        else:
            shift, scale = (self.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (self.norm_out(x.float()) * (1 + scale) + shift).type_as(x)
        x = self.proj_out(x)  # (B, L, p_t * p_h * p_w * C_out)

        x = x.reshape(B, *grid, p_t, p_h, p_w, -1)  # (B, f, h, w, p_t, p_h, p_w, C_out)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C_out, f, p_t, h, p_h, w, p_w)
        out = x.flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C_out, F, H, W)
        if return_dict:
            from diffusers.models.modeling_outputs import Transformer2DModelOutput

            return Transformer2DModelOutput(sample=out)
        return out

    @torch.no_grad()
    def forward_tokens(self, hidden_states, timestep, encoder_hidden_states, tokens, cache,
                       camera=None, write: bool = True) -> torch.Tensor:  # fmt: skip
        """Run the model on the sequence positions ``tokens`` (n,) only, against ``cache``.

        The chunked, KV-cached pass of :mod:`actionimages.model.causal`: the selected
        tokens attend to the cached keys and values and to each other; with ``write`` they
        are appended to the cache. Inputs are those of :meth:`forward` for the whole
        sequence; ``tokens`` must be whole latent frames in sequence order (a chunk), and
        only those frames are embedded, so a call costs the chunk, not the sequence.
        Rotary positions are the whole sequence's. Returns (B, n, p_h p_w C_out) token
        outputs in ``tokens`` order (:func:`tokens_of` gives the same of a full output).
        """
        from actionimages.model.causal import KVCache

        if not isinstance(cache, KVCache) or cache.num_layers != len(self.blocks):
            raise ValueError(f"cache must be a KVCache of {len(self.blocks)} layers")
        if self.config.image_dim is not None:
            raise ValueError("forward_tokens does not take the CLIP image branch (Wan 2.1 I2V) yet")
        p_t, p_h, p_w = self.config.patch_size
        H, W = hidden_states.shape[-2:]
        per_frame = (H // p_h) * (W // p_w)
        frames = torch.unique(tokens // per_frame)  # (f,) sorted
        want = (frames[:, None] * per_frame + torch.arange(per_frame)).flatten()
        if p_t != 1 or not torch.equal(want, tokens.to(want.dtype)):
            raise ValueError(
                "forward_tokens needs patch_size[0] = 1 and whole latent frames in order"
            )
        grid = (len(frames), H // p_h, W // p_w)
        cos, sin = self.rope(hidden_states)  # (1, L, 1, d) each: positions of the full sequence
        rotary = (cos[:, tokens], sin[:, tokens])
        x = (
            self.patch_embedding(hidden_states[:, :, frames]).flatten(2).transpose(1, 2)
        )  # (B, n, D)
        per_token = timestep.ndim == 2
        t = timestep[:, tokens] if per_token else timestep
        temb, timestep_proj, context, _ = self.condition_embedder(
            t.flatten() if per_token else t, encoder_hidden_states, None,
            timestep_seq_len=t.shape[1] if per_token else None,
        )  # fmt: skip
        timestep_proj = timestep_proj.unflatten(-1, (6, -1))
        features = None
        if camera is not None:
            features = self.blocks[0].cam_encoder.features(camera[:, frames], grid)
        for i, block in enumerate(self.blocks):
            x = block(x, context, timestep_proj, rotary, features, grid, None, (cache, i, write))
        if temb.ndim == 3:  # (B, n, D): per-token output modulation
            shift, scale = (self.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)
            shift, scale = shift.squeeze(2), scale.squeeze(2)
        else:
            shift, scale = (self.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (self.norm_out(x.float()) * (1 + scale) + shift).type_as(x)
        return self.proj_out(x)  # (B, n, p_h * p_w * C_out)


def tokens_of(out: torch.Tensor, patch_size) -> torch.Tensor:
    """(B, C, F, H, W) output -> (B, L, p_t p_h p_w C) tokens, the layout of ``forward_tokens``."""
    B, C, Fr, H, W = out.shape
    p_t, p_h, p_w = patch_size
    x = out.reshape(B, C, Fr // p_t, p_t, H // p_h, p_h, W // p_w, p_w)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, f, h, w, p_t, p_h, p_w, C)
    return x.reshape(B, (Fr // p_t) * (H // p_h) * (W // p_w), -1)


def resolve_transformer_folder(path: str | Path) -> Path:
    """The folder holding a diffusers Wan transformer, with a clear error when it is not one."""
    path = Path(path)
    if (path / "transformer" / "config.json").exists():
        path = path / "transformer"
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.safetensors.index.json"))
    if not (path / "config.json").exists() or not has_weights:
        raise FileNotFoundError(
            f"{path} is not a diffusers Wan transformer folder: expected config.json and "
            "diffusion_pytorch_model.safetensors (or diffusion_pytorch_model.safetensors.index.json with "
            "its shards), or a pipeline folder with a transformer/ subfolder"
        )
    return path
