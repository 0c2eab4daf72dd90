"""Convert the authors' released Action Images checkpoint into this project's model.

The release (UMass-Embodied-AGI/ActionImages) fine-tunes Wan2.2-TI2V-5B in DiffSynth-Studio's
module layout and adds, per block, a camera encoder and a projector. Its state dict uses
DiffSynth's names; ours are diffusers' names plus ``cam_encoder`` / ``projector``.

What maps one to one (same tensor, new name):

    DiffSynth                               this model (diffusers names)
    patch_embedding.*                       patch_embedding.*
    text_embedding.{0,2}.*                  condition_embedder.text_embedder.linear_{1,2}.*
    time_embedding.{0,2}.*                  condition_embedder.time_embedder.linear_{1,2}.*
    time_projection.1.*                     condition_embedder.time_proj.*
    head.head.*, head.modulation            proj_out.*, scale_shift_table
    img_emb.proj.{0,1,3,4}.*  (I2V only)    condition_embedder.image_embedder.{norm1, ff.net.0.proj, ff.net.2, norm2}.*
    blocks.i.self_attn.{q,k,v,o}.*          blocks.i.attn1.{to_q,to_k,to_v,to_out.0}.*
    blocks.i.self_attn.norm_{q,k}.weight    blocks.i.attn1.norm_{q,k}.weight
    blocks.i.cross_attn.{q,k,v,o}.*         blocks.i.attn2.{to_q,to_k,to_v,to_out.0}.*
    blocks.i.cross_attn.norm_{q,k}.weight   blocks.i.attn2.norm_{q,k}.weight
    blocks.i.cross_attn.{k_img,v_img}.*     blocks.i.attn2.{add_k_proj,add_v_proj}.*
    blocks.i.cross_attn.norm_k_img.weight   blocks.i.attn2.norm_added_k.weight
    blocks.i.norm3.*  (cross-attn norm)     blocks.i.norm2.*  (the two libraries number the norms differently)
    blocks.i.ffn.{0,2}.*                    blocks.i.ffn.net.{0.proj,2}.*
    blocks.i.modulation                     blocks.i.scale_shift_table
    blocks.i.projector.*                    blocks.i.projector.*   (same place: on the self-attention output)
    blocks.i.cam_encoder.2.*                blocks.i.cam_encoder.layers.2.*   (camera_encoder="frame_pooled")

What corresponds only with care, and is documented rather than hidden:

- Camera input. The release's encoder is AdaptiveAvgPool3d((48, 16, 16)) -> flatten ->
  Linear(12288, dim) on, per latent frame, the Wan VAE latents of the Plücker direction
  video and of the moment video divided by 3 (2 x 48 channels). ``camera_encoder=
  "frame_pooled"`` rebuilds exactly that module, and ``WorldActionModel.camera_input``
  builds that input with the configured codec. Both use (direction, origin x direction);
  the release computes rays in its datasets' extrinsics frame, we in the frame of view 0
  at frame 0, so a converted model sees camera features from a different reference frame
  until fine-tuned. Our default "token" encoder (raw Plücker pooled per token) has no
  counterpart in the release: converting into it leaves it at zero (camera branch off).
- Timesteps. The release passes one timestep per sample (visible latents replaced by clean
  values but still stamped with the sampled t); this model passes t = 0 on visible tokens.
  The weights load either way; behaviour at visible tokens differs until fine-tuned.
- Video-only clips. The release drops the action slots; this model keeps them as noise.

Anything else in the file (optimizer state, LoRA, unknown modules) is reported, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from actionimages.model.config import ModelConfig

_TOP = {
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "head.head": "proj_out",
    "patch_embedding": "patch_embedding",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
}
_BLOCK = {
    "self_attn.q": "attn1.to_q", "self_attn.k": "attn1.to_k", "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0", "self_attn.norm_q": "attn1.norm_q", "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q", "cross_attn.k": "attn2.to_k", "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0", "cross_attn.norm_q": "attn2.norm_q", "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj", "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k", "norm3": "norm2",
    "ffn.0": "ffn.net.0.proj", "ffn.2": "ffn.net.2", "projector": "projector",
    "cam_encoder.2": "cam_encoder.layers.2",
}  # fmt: skip
_PARAMS = {"head.modulation": "scale_shift_table"}
_BLOCK_PARAMS = {"modulation": "scale_shift_table"}


@dataclass
class ConversionReport:
    mapped: int = 0
    unmapped: list[str] = field(default_factory=list)
    camera_encoder: str = "token"
    notes: list[str] = field(default_factory=list)


def rename_key(key: str) -> str | None:
    """DiffSynth / release key -> this model's key, or None when it has no counterpart."""
    key = key.removeprefix("module.").removeprefix("dit.").removeprefix("pipe.dit.")
    if key in _PARAMS:
        return _PARAMS[key]
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if m:
        i, rest = m.groups()
        if rest in _BLOCK_PARAMS:
            return f"blocks.{i}.{_BLOCK_PARAMS[rest]}"
        module, _, leaf = rest.rpartition(".")
        return f"blocks.{i}.{_BLOCK[module]}.{leaf}" if module in _BLOCK else None
    module, _, leaf = key.rpartition(".")
    return f"{_TOP[module]}.{leaf}" if module in _TOP else None


def infer_config(
    sd: dict[str, torch.Tensor], head_dim: int = 128, base: str | None = None
) -> ModelConfig:
    """A ModelConfig matching a release/DiffSynth state dict's shapes (heads from ``head_dim``)."""
    pe = sd["patch_embedding.weight"]  # (dim, C_in, p_t, p_h, p_w)
    dim, in_channels, patch = pe.shape[0], pe.shape[1], tuple(pe.shape[2:])
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    out_channels = sd["head.head.weight"].shape[0] // (patch[0] * patch[1] * patch[2])
    fields = {
        "patch_size": patch, "in_channels": in_channels, "out_channels": out_channels,
        "num_attention_heads": dim // head_dim, "attention_head_dim": head_dim,
        "ffn_dim": sd["blocks.0.ffn.0.weight"].shape[0], "text_dim": sd["text_embedding.0.weight"].shape[1],
        "freq_dim": sd["time_embedding.0.weight"].shape[1], "num_layers": layers,
    }  # fmt: skip
    if "img_emb.proj.1.weight" in sd:
        fields |= {"image_dim": sd["img_emb.proj.1.weight"].shape[1], "added_kv_proj_dim": dim}
    if "blocks.0.cam_encoder.2.weight" in sd:
        in_features = sd["blocks.0.cam_encoder.2.weight"].shape[1]
        pool = (48, 16, 16) if in_features == 48 * 16 * 16 else (in_features // 256, 16, 16)
        if pool[0] * 256 != in_features:
            raise ValueError(
                f"cannot infer the camera pooling size from {in_features} input features"
            )
        fields |= {"camera_encoder": "frame_pooled", "camera_pool": pool}
    cfg = ModelConfig.preset(base) if base else ModelConfig(name="release")
    return cfg.replace(**fields)


def convert_release_state_dict(
    sd: dict[str, torch.Tensor], strict: bool = True
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Rename a release state dict to this model's keys; unmapped keys raise (strict) or are reported."""
    out, report = {}, ConversionReport()
    for key, value in sd.items():
        new = rename_key(key)
        if new is None:
            report.unmapped.append(key)
            continue
        out[new] = value
        report.mapped += 1
    if strict and report.unmapped:
        raise ValueError(
            f"{len(report.unmapped)} keys have no counterpart, e.g. {report.unmapped[:5]}"
        )
    if any(".cam_encoder." in k for k in out):
        report.camera_encoder = "frame_pooled"
    else:
        report.notes.append("no camera encoder in the file: the camera branch starts at zero")
    if not any(".projector." in k for k in out):
        report.notes.append("no projector in the file: projectors start at the identity")
    return out, report


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from a .safetensors file, a torch .ckpt/.pt/.bin file, or a folder of either.

    A downloaded release folder holds ``checkpoint.ckpt`` (about 25.7 GB in fp32): torch
    files are memory-mapped (``mmap=True``), so tensors are paged in as the model takes
    them instead of being read whole first, and read with ``weights_only=True`` (no
    code in the file runs). A folder with .safetensors shards uses those.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            files = sorted(
                f for ext in ("*.ckpt", "*.pt", "*.pth", "*.bin") for f in path.glob(ext)
            )
    else:
        files = [path]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(
            f"{path}: expected a .safetensors / .ckpt file, or a folder holding .safetensors "
            "shards or a checkpoint.ckpt"
        )
    sd = {}
    for f in files:
        if f.suffix == ".safetensors":
            sd.update(load_file(str(f)))
            continue
        try:
            obj = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # a legacy (non-zip) torch file cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            obj = torch.load(f, map_location="cpu", weights_only=True)
        if isinstance(obj, dict):
            obj = obj.get("state_dict", obj.get("module", obj))
        sd.update(obj)
    return sd


def load_release_checkpoint(path: str | Path, head_dim: int = 128, torch_dtype=None):
    """Build an :class:`ActionImagesWanTransformer` from the authors' checkpoint file(s).

    Returns (model, ModelConfig, ConversionReport). Every model weight must come from the
    file except camera modules the file lacks, which keep their neutral initialisation.
    """
    from actionimages.model.transformer import ActionImagesWanTransformer

    sd = read_state_dict(path)
    cfg = infer_config(sd, head_dim)
    converted, report = convert_release_state_dict(sd)
    from accelerate import init_empty_weights

    with init_empty_weights():  # no second full-size copy: the file's tensors are used in place
        model = ActionImagesWanTransformer.from_model_config(cfg)
    missing, unexpected = model.load_state_dict(converted, strict=False, assign=True)
    backbone_missing = [k for k in missing if ".cam_encoder." not in k and ".projector." not in k]
    if backbone_missing or unexpected:
        raise ValueError(
            f"checkpoint does not fill the model: missing {backbone_missing[:5]}, unexpected {unexpected[:5]}"
        )
    ref = model.proj_out.weight
    for i, block in enumerate(model.blocks):
        if any(k.startswith(f"blocks.{i}.") for k in missing):  # camera modules the file lacks
            block.reset_camera_branch(device=ref.device, dtype=ref.dtype)
            own = {
                k.removeprefix(f"blocks.{i}."): v
                for k, v in converted.items()
                if k.startswith(f"blocks.{i}.")
            }
            block.load_state_dict({k: v for k, v in own.items() if k.startswith(("cam_encoder.", "projector."))},
                                  strict=False)  # fmt: skip
    if torch_dtype is not None:
        model.to(torch_dtype)
    return model, cfg, report
