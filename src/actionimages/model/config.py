"""Named model configurations (frozen dataclasses, no YAML).

A :class:`ModelConfig` holds the diffusers ``WanTransformer3DModel`` arguments plus what
this project adds on top (the camera branch, the latent codec and the text encoder it
expects). Four presets:

    debug            tests: 2 layers, dim 32, 4 latent channels, a hash text encoder
    tiny             the default CPU model: 4 layers, dim 128, patch-PCA latents, MiniLM text
    wan2.2-ti2v-5b   Wan2.2-TI2V-5B sizes (diffusers config of Wan-AI/Wan2.2-TI2V-5B-Diffusers)
    wan2.1-i2v-14b   Wan2.1-I2V-14B sizes (diffusers config of Wan-AI/Wan2.1-I2V-14B-480P-Diffusers)

    cfg = ModelConfig.preset("tiny")
    cfg = ModelConfig.preset("tiny", num_layers=2)   # any field can be overridden
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from actionimages._presets import lookup

CAMERA_ENCODERS = ("token", "frame_pooled")
FRAME_DELTAS = ("none", "video", "all")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build the unified world action model.

    Backbone fields are the diffusers ``WanTransformer3DModel`` arguments of the same name.

    Camera fields:
        camera_encoder: "token" (this project's default: Plücker maps pooled to the token
            grid, one linear map per block) or "frame_pooled" (the authors' release layout:
            each latent frame's camera features pooled to ``camera_pool`` and projected to
            one vector per frame; kept so their checkpoint converts one to one).
        camera_channels: channels of the camera map the encoder is given per latent frame.
            "token": 6 Plücker channels x ``temporal_factor`` stacked source frames.
        camera_subgrid: "token" only; each token sees an s x s grid of pooled camera values.
        camera_pool: "frame_pooled" only; (channels, height, width) of the adaptive pooling.

    Data-side fields (what the model expects, checked by the trainer):
        latent_codec: the latent autoencoder ("pca" fitted here, "wan2.1-vae", "wan2.2-vae").
        temporal_factor, spatial_factor: its compression (frames 1 + 4k -> 1 + k).
        text_encoder: "hash" (tests), "minilm" (offline default), "umt5" (real Wan).
        text_length: tokens per prompt (Wan's UMT5: 512).
        image_encoder: "clip" for weights with Wan 2.1 I2V's CLIP image branch (``image_dim``
            set): each view's first frame through a CLIP vision tower
            (:mod:`actionimages.model.image_encoder`); None otherwise.
        timestep_per_token: per-token timesteps (B, L), as Wan 2.2 takes them (visible frames
            at t = 0). False for Wan 2.1, trained with one timestep per sample: it gets the
            predicted frames' t and learns which frames are given from its mask channels.
        action_representation: "image" (action images through the codec: this project) or
            "vector" (10-D action vectors written into latent frames: the low-dimensional
            baseline of issue 7, see :mod:`actionimages.model.action_vector`).
        first_action_prob: in training, the probability that frame 0 of the action clips
            (the current end-effector pose, known at planning time) is given as a visible
            condition (SPEC 4, beyond the paper; :mod:`actionimages.model.masking`). 0 is the
            paper's setting; > 0 means callers may give the current pose, and the policy does.
        frame_deltas: which clips diffuse their frames 1.. as differences from their frame
            0 (:func:`actionimages.model.packing.to_frame_deltas`) rather than as plain
            latents: "none", "video" or "all". For models trained from scratch; pretrained
            Wan weights expect plain latents, so the Wan presets keep "none".

    Mode:
        chunk_frames: 0 (default) is the bidirectional model: every token attends to every
            other. K >= 1 is the autoregressive (chunked) mode of DreamZero (issue 11,
            :mod:`actionimages.model.causal`): chunk 0 is latent frame 0 of every clip, chunk
            c >= 1 the next K latent frames (4 K control steps) of every view's video and
            action clip; attention is block-causal, training is teacher-forced (each chunk
            its own t, against clean copies of the earlier chunks) and sampling goes chunk
            by chunk against a KV cache. The weights are the same, so either mode's
            checkpoint initialises the other. Needs per-token timesteps.
    """

    name: str = "custom"
    # --- diffusers WanTransformer3DModel ---
    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_attention_heads: int = 4
    attention_head_dim: int = 32
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 384
    freq_dim: int = 256
    ffn_dim: int = 256
    num_layers: int = 4
    cross_attn_norm: bool = True
    qk_norm: str | None = "rms_norm_across_heads"
    eps: float = 1e-6
    image_dim: int | None = None
    added_kv_proj_dim: int | None = None
    rope_max_seq_len: int = 1024
    pos_embed_seq_len: int | None = None
    # --- camera branch ---
    camera_encoder: str = "token"
    camera_channels: int = 24
    camera_subgrid: int = 2
    camera_pool: tuple[int, int, int] = (48, 16, 16)
    # --- what the data side must provide ---
    latent_codec: str = "pca"
    temporal_factor: int = 4
    spatial_factor: int = 8
    text_encoder: str = "minilm"
    text_length: int = 32
    image_encoder: str | None = None
    timestep_per_token: bool = True
    # --- how actions enter the sequence ---
    action_representation: str = "image"
    first_action_prob: float = 0.0
    frame_deltas: str = "none"
    chunk_frames: int = 0

    def __post_init__(self) -> None:
        if self.camera_encoder not in CAMERA_ENCODERS:
            raise ValueError(
                f"camera_encoder must be one of {CAMERA_ENCODERS}, got {self.camera_encoder!r}"
            )
        if self.attention_head_dim % 2 or self.attention_head_dim < 6:
            raise ValueError("attention_head_dim must be even and >= 6 (3-D rotary embedding)")
        if self.in_channels < self.out_channels:
            raise ValueError(
                "in_channels must be >= out_channels (extra inputs are condition channels)"
            )
        if self.camera_encoder == "token" and self.camera_channels != 6 * self.temporal_factor:
            raise ValueError(
                f"camera_channels must be 6 Plücker channels x temporal_factor = {6 * self.temporal_factor} "
                f"for the token camera encoder, got {self.camera_channels}"
            )
        if self.action_representation not in ("image", "vector"):
            raise ValueError(
                f"action_representation must be 'image' or 'vector', got {self.action_representation!r}"
            )
        if self.frame_deltas not in FRAME_DELTAS:
            raise ValueError(
                f"frame_deltas must be one of {FRAME_DELTAS}, got {self.frame_deltas!r}"
            )
        if not 0.0 <= self.first_action_prob <= 1.0:
            raise ValueError(f"first_action_prob must be in [0, 1], got {self.first_action_prob}")
        if (self.image_dim is None) != (self.image_encoder is None):
            raise ValueError(
                f"image_dim ({self.image_dim}) and image_encoder ({self.image_encoder!r}) go "
                "together: weights with a CLIP image branch need image_encoder='clip'"
            )
        if self.image_encoder not in (None, "clip"):
            raise ValueError(f"image_encoder must be None or 'clip', got {self.image_encoder!r}")
        if self.chunk_frames < 0:
            raise ValueError(
                f"chunk_frames must be 0 (bidirectional) or >= 1, got {self.chunk_frames}"
            )
        if self.chunk_frames and (
            not self.timestep_per_token or self.condition_channels or self.patch_size[0] != 1
        ):
            raise ValueError(
                "the autoregressive mode (chunk_frames > 0) needs per-token timesteps, no I2V "
                "condition channels and a temporal patch size of 1"
            )
        if min(self.patch_size) < 1 or self.num_layers < 1:
            raise ValueError("patch_size entries and num_layers must be >= 1")

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def condition_channels(self) -> int:
        """Extra input channels (Wan I2V: 4 mask + 16 clean-latent channels); 0 otherwise."""
        return self.in_channels - self.out_channels

    def wan_kwargs(self) -> dict[str, Any]:
        """Arguments for ``WanTransformer3DModel(**kwargs)``."""
        keys = ("patch_size", "num_attention_heads", "attention_head_dim", "in_channels",
                "out_channels", "text_dim", "freq_dim", "ffn_dim", "num_layers", "cross_attn_norm",
                "qk_norm", "eps", "image_dim", "added_kv_proj_dim", "rope_max_seq_len",
                "pos_embed_seq_len")  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        for k in ("patch_size", "camera_pool"):
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        if "codec" in d:  # folders written before the latent codec had its own name
            d["latent_codec"] = d.pop("codec")
        if isinstance(d.get("frame_deltas"), bool):  # folders written while it was a flag
            d["frame_deltas"] = "all" if d["frame_deltas"] else "none"
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**d)

    def replace(self, **overrides: Any) -> ModelConfig:
        return dataclasses.replace(self, **overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        return lookup(PRESETS, name, "model").replace(**overrides)


PRESETS: dict[str, ModelConfig] = {
    "debug": ModelConfig(
        name="debug", num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=32, ffn_dim=64, num_layers=2, camera_channels=24, latent_codec="pca",
        text_encoder="hash", text_length=8,
    ),
    "tiny": ModelConfig(
        name="tiny", num_attention_heads=4, attention_head_dim=32, in_channels=16, out_channels=16,
        text_dim=384, freq_dim=64, ffn_dim=512, num_layers=4, latent_codec="pca", text_encoder="minilm",
        text_length=32,
    ),
    # The default CPU model: the tiny backbone given the current pose as frame 0 of the
    # action clips 3 times in 4 (the policy always knows it; the other quarter keeps the
    # paper's setting trained), video diffused as frame deltas, action images as they are.
    "tiny-state": ModelConfig(
        name="tiny-state", num_attention_heads=4, attention_head_dim=32, in_channels=16,
        out_channels=16, text_dim=384, freq_dim=64, ffn_dim=512, num_layers=4, latent_codec="pca",
        text_encoder="minilm", text_length=32, first_action_prob=0.75, frame_deltas="video",
    ),
    # Its low-dimensional-action baseline: the same with actions as 10-D vectors.
    "tiny-state-lowdim": ModelConfig(
        name="tiny-state-lowdim", num_attention_heads=4, attention_head_dim=32, in_channels=16,
        out_channels=16, text_dim=384, freq_dim=64, ffn_dim=512, num_layers=4, latent_codec="pca",
        text_encoder="minilm", text_length=32, first_action_prob=0.75, frame_deltas="video",
        action_representation="vector",
    ),
    # The autoregressive tiny model (issue 11): the default's backbone and data framing,
    # block-causal over chunks of one latent frame (4 control steps), teacher-forced.
    "tiny-ar": ModelConfig(
        name="tiny-ar", num_attention_heads=4, attention_head_dim=32, in_channels=16, out_channels=16,
        text_dim=384, freq_dim=64, ffn_dim=512, num_layers=4, latent_codec="pca", text_encoder="minilm",
        text_length=32, chunk_frames=1,
    ),
    # Issue 7's baseline: the tiny backbone with actions as 10-D vectors in latent frames.
    "tiny-lowdim": ModelConfig(
        name="tiny-lowdim", num_attention_heads=4, attention_head_dim=32, in_channels=16,
        out_channels=16, text_dim=384, freq_dim=64, ffn_dim=512, num_layers=4, latent_codec="pca",
        text_encoder="minilm", text_length=32, action_representation="vector",
    ),
    # Sizes from the diffusers transformer/config.json of Wan-AI/Wan2.2-TI2V-5B-Diffusers.
    "wan2.2-ti2v-5b": ModelConfig(
        name="wan2.2-ti2v-5b", num_attention_heads=24, attention_head_dim=128, in_channels=48,
        out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30,
        camera_encoder="token", camera_channels=24, latent_codec="wan2.2-vae", temporal_factor=4,
        spatial_factor=16, text_encoder="umt5", text_length=512,
    ),
    # Sizes from the diffusers transformer/config.json of Wan-AI/Wan2.1-I2V-14B-480P-Diffusers:
    # 36 input channels = 16 noisy latents + 4 mask + 16 clean conditioning latents, and the
    # CLIP image branch (image_dim 1280, added K/V projections of width 5120).
    "wan2.1-i2v-14b": ModelConfig(
        name="wan2.1-i2v-14b", num_attention_heads=40, attention_head_dim=128, in_channels=36,
        out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40,
        image_dim=1280, added_kv_proj_dim=5120, image_encoder="clip", timestep_per_token=False,
        camera_channels=24, latent_codec="wan2.1-vae",
        temporal_factor=4, spatial_factor=8, text_encoder="umt5", text_length=512,
    ),
}  # fmt: skip
