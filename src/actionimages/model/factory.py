"""One factory for the world action model, used by training and by inference alike.

    wam = build_world_action_model(ModelConfig.preset("tiny"), "runs/tiny/latent_codec.safetensors")
    wam = build_world_action_model(mc, PatchPCACodec.fit(videos))           # a codec object
    wam = build_world_action_model(mc, "Wan2.2-VAE/", wan_path="Wan2.2-TI2V-5B-Diffusers/transformer")

It assembles the three parts of :class:`~actionimages.model.wam.WorldActionModel`: the
transformer (fresh from the config, or pretrained Wan weights checked against it), the
frozen latent codec (a patch-PCA file or a diffusers Wan VAE folder, as the config's
``latent_codec`` names) and the frozen text encoder. Where the latent codec comes from
(fitted on a dataset, found in a run folder) is the caller's business: the trainer and
the loader differ there and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from actionimages.model.config import ModelConfig
from actionimages.model.wam import WorldActionModel


def load_latent_codec(config: ModelConfig, path: str | Path | None) -> nn.Module:
    """The latent codec ``config.latent_codec`` names, read from ``path``, with a clear error."""
    from actionimages.model.latent import PatchPCACodec, WanVAECodec

    wan = config.latent_codec.startswith("wan")
    if path is None or not Path(path).exists():
        need = (
            "a diffusers Wan VAE folder" if wan else "a patch-PCA file (latent_codec.safetensors)"
        )
        raise FileNotFoundError(
            f"model {config.name!r} needs its latent codec, {need}: {path or 'none given'}"
        )
    return WanVAECodec.from_folder(path) if wan else PatchPCACodec.load(path)


def build_transformer(config: ModelConfig, wan_path: str | Path | None = None) -> nn.Module:
    """A fresh transformer, or Wan weights from ``wan_path`` that must match ``config``."""
    from actionimages.model.transformer import ActionImagesWanTransformer

    if not wan_path:
        return ActionImagesWanTransformer.from_model_config(config)
    camera = {"camera_encoder": config.camera_encoder, "camera_channels": config.camera_channels,
              "camera_subgrid": config.camera_subgrid, "camera_pool": config.camera_pool}  # fmt: skip
    transformer = ActionImagesWanTransformer.from_wan_pretrained(wan_path, **camera)

    def listed(d):  # JSON gives lists where the frozen config holds tuples
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    wanted = listed(config.wan_kwargs())
    loaded = listed({k: transformer.config[k] for k in wanted})
    if loaded != wanted:
        diff = {k: (loaded[k], wanted[k]) for k in wanted if loaded[k] != wanted[k]}
        raise ValueError(
            f"{wan_path} does not match model preset {config.name!r}: (folder, preset) {diff}"
        )
    return transformer


def build_world_action_model(
    config: ModelConfig,
    latent_codec: nn.Module | str | Path | None,
    wan_path: str | Path | None = None,
    text_path: str | Path | None = None,
    image_encoder_path: str | Path | None = None,
) -> WorldActionModel:
    """Transformer + latent codec (an object or its file / folder) + text (+ image) encoder."""
    from actionimages.model.text import CachedTextEncoder, build_text_encoder

    if not isinstance(latent_codec, nn.Module):
        latent_codec = load_latent_codec(config, latent_codec)
    text = CachedTextEncoder(
        build_text_encoder(config.text_encoder, config.text_dim, config.text_length, text_path)
    )
    image = None
    if config.image_encoder == "clip":
        from actionimages.model.image_encoder import CLIPImageEncoder

        if image_encoder_path is None:
            raise FileNotFoundError(
                f"model {config.name!r} has a CLIP image branch: give its CLIP vision folder "
                "(image_encoder_path / --image-encoder-path, e.g. a Wan I2V pipeline's image_encoder/)"
            )
        image = CLIPImageEncoder.from_folder(image_encoder_path)
        if image.dim != config.image_dim:
            raise ValueError(
                f"{image_encoder_path}: CLIP gives {image.dim}-wide tokens, the model expects "
                f"image_dim={config.image_dim}"
            )
    transformer = build_transformer(config, wan_path)
    return WorldActionModel(config, transformer, latent_codec, text, image_encoder=image)
