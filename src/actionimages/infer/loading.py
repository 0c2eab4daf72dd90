"""Load a trained world action model for inference: a run, a checkpoint or a shipped model.

Three folder layouts are accepted:

    runs/tiny/                         a training run: its latest checkpoint + runs/tiny/codec.safetensors
    runs/tiny/checkpoints/step-0003000 one checkpoint (the codec is two folders up)
    models/tiny/                       a shipped model: config.json, model.safetensors, codec.safetensors

EMA weights are used when the checkpoint has them (``use_ema=True``), because the EMA
is what a diffusion model should be sampled with. Weights are read with safetensors only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from actionimages.clips import ClipConfig
from actionimages.model.config import ModelConfig
from actionimages.model.factory import build_world_action_model
from actionimages.model.wam import WorldActionModel
from actionimages.train.checkpoint import check_finite, latest_checkpoint

LATENT_CODEC_FILE = "latent_codec.safetensors"


@dataclass(frozen=True)
class InferenceInfo:
    """The "inference" section of a model folder's config.json."""

    clip: ClipConfig  # the training clip's framing, centre crop and first views
    latent_codec_path: str | None  # Wan VAE folder; None: the folder's own PCA file
    text_path: str | None  # UMT5 folder for the umt5 text encoder
    sampling: dict[str, Any]  # SamplingConfig fields
    image_encoder_path: str | None = None  # CLIP vision folder (Wan 2.1 I2V weights)

    @classmethod
    def from_config_json(cls, info: dict[str, Any], where: str | Path) -> InferenceInfo:
        if isinstance(info.get("inference"), dict):
            d = info["inference"]
            return cls(ClipConfig.from_dict(d["clip"]).for_inference(), d.get("latent_codec_path"),
                       d.get("text_path"), dict(d["sampling"]), d.get("image_encoder_path"))  # fmt: skip
        if not isinstance(info.get("train"), dict):
            raise ValueError(f"{where}/config.json lacks its 'inference' section")
        t = info["train"]  # a folder written before the section existed
        clip = t.get("clip", "debug")
        clip = ClipConfig.preset(clip) if isinstance(clip, str) else ClipConfig.from_dict(clip)
        sampling = info.get("sampling") or {
            "steps": int(t.get("sample_steps", 10)), "guidance": float(t.get("guidance", 1.0)),
            "shift": float(t.get("timestep_shift", 1.0)), "scheduler": "euler"}  # fmt: skip
        codec = t.get("latent_codec_path", t.get("codec_path"))
        return cls(
            clip.for_inference(),
            codec,
            t.get("text_path"),
            dict(sampling),
            t.get("image_encoder_path"),
        )


def resolve_model_folder(path: str | Path) -> tuple[Path, Path]:
    """(folder holding config.json + weights, codec file) for any of the layouts above."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such model. Pass a training run folder (runs/tiny), a checkpoint folder "
            "or a shipped model folder (models/tiny); train one with `actionimages train`"
        )
    if (path / "checkpoints").is_dir():  # a run folder
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise FileNotFoundError(f"{path}: training run without a finished checkpoint")
        return ckpt, _latent_codec_file(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        codec = _latent_codec_file(path)
        if not codec.is_file() and path.parent.name == "checkpoints":
            codec = _latent_codec_file(path.parent.parent)
        return path, codec
    raise FileNotFoundError(
        f"{path}: expected a run folder (with checkpoints/), or a folder with config.json and "
        "model.safetensors"
    )


def _latent_codec_file(folder: Path) -> Path:
    old = folder / "codec.safetensors"  # the name before the latent codec had its own
    return (
        old
        if old.is_file() and not (folder / LATENT_CODEC_FILE).is_file()
        else folder / LATENT_CODEC_FILE
    )


def inference_info(path: str | Path) -> InferenceInfo:
    """The model folder's clip, latent codec / text folders and default sampling settings."""
    folder, _ = resolve_model_folder(path)
    return InferenceInfo.from_config_json(json.loads((folder / "config.json").read_text()), folder)


def sampling_defaults(path: str | Path) -> dict:
    """The model's own default sampling settings (``SamplingConfig`` fields)."""
    return dict(inference_info(path).sampling)


def load_world_action_model(
    path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
) -> tuple[WorldActionModel, InferenceInfo]:
    """The model in eval mode on ``device`` and the folder's inference settings."""
    folder, codec_file = resolve_model_folder(path)
    info = json.loads((folder / "config.json").read_text())
    if "model" not in info:
        raise ValueError(f"{folder}/config.json lacks its 'model' section")
    try:
        mc = ModelConfig.from_dict(info["model"])
        extra = InferenceInfo.from_config_json(info, folder)
    except (TypeError, ValueError, KeyError) as err:  # unknown keys, bad values, a lost section
        raise ValueError(f"{folder / 'config.json'}: {err}") from None
    weights_file = folder / "ema.safetensors"
    if not (use_ema and weights_file.is_file()):
        weights_file = folder / "model.safetensors"
    try:
        state = load_file(str(weights_file))
    except Exception as err:  # safetensors raises its own error type for corrupt headers
        raise ValueError(f"{weights_file}: unreadable safetensors file ({err})") from None
    check_finite(state, str(weights_file))
    codec = extra.latent_codec_path if mc.latent_codec.startswith("wan") else codec_file
    if not mc.latent_codec.startswith("wan") and not codec_file.is_file():
        raise FileNotFoundError(
            f"{codec_file}: the model's PCA latent codec is missing (the trainer writes it next "
            "to the checkpoints; a shipped model keeps it next to model.safetensors)"
        )
    wam = build_world_action_model(
        mc, codec, text_path=extra.text_path, image_encoder_path=extra.image_encoder_path
    )
    missing, unexpected = wam.transformer.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights_file} does not match model config {mc.name!r}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return wam.to(device).eval(), extra


def export_model(run: str | Path, out: str | Path, use_ema: bool = True) -> Path:
    """Write a shipped model folder (config.json, model.safetensors, codec.safetensors) from a run.

    Only what inference needs is kept (EMA weights when present; no optimiser state), so a
    tiny model is a few MB. Files are written to a temporary folder and renamed into place.
    """
    import os
    import shutil

    from safetensors.torch import save_file

    folder, codec_file = resolve_model_folder(run)
    info = json.loads((folder / "config.json").read_text())
    weights = folder / (
        "ema.safetensors"
        if use_ema and (folder / "ema.safetensors").is_file()
        else "model.safetensors"
    )
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state = {k: v.contiguous() for k, v in load_file(str(weights)).items()}
    save_file(
        state,
        str(tmp / "model.safetensors"),
        metadata={"source": str(weights), "step": str(info.get("step"))},
    )
    extra = InferenceInfo.from_config_json(info, folder)
    inference = {"clip": extra.clip.to_dict(), "latent_codec_path": extra.latent_codec_path,
                 "text_path": extra.text_path, "image_encoder_path": extra.image_encoder_path,
                 "sampling": extra.sampling}  # fmt: skip
    (tmp / "config.json").write_text(json.dumps({"step": info.get("step"), "model": info["model"],
                                                 "train": info.get("train"), "weights": weights.name,
                                                 "inference": inference}, indent=2))  # fmt: skip
    if codec_file.is_file():
        shutil.copyfile(codec_file, tmp / LATENT_CODEC_FILE)
    if out.exists():  # keep anything else in an existing folder (e.g. its model card)
        for f in out.iterdir():
            if f.name == "codec.safetensors":  # replaced by latent_codec.safetensors
                continue
            if not (tmp / f.name).exists():
                shutil.move(str(f), tmp / f.name)
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
