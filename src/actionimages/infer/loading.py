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
from pathlib import Path

import torch
from safetensors.torch import load_file

from actionimages.model.config import ModelConfig
from actionimages.model.wam import WorldActionModel
from actionimages.train.checkpoint import check_finite, latest_checkpoint
from actionimages.train.config import TrainConfig


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
        return ckpt, path / "codec.safetensors"
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        codec = path / "codec.safetensors"
        if not codec.is_file() and path.parent.name == "checkpoints":
            codec = path.parent.parent / "codec.safetensors"
        return path, codec
    raise FileNotFoundError(
        f"{path}: expected a run folder (with checkpoints/), or a folder with config.json and "
        "model.safetensors"
    )


def sampling_defaults(path: str | Path) -> dict:
    """The model's own default sampling settings (``SamplingConfig`` fields).

    A shipped folder stores them under "sampling" in config.json (``export_model``); a run
    or checkpoint takes them from its training config (the settings its previews used).
    """
    folder, _ = resolve_model_folder(path)
    info = json.loads((folder / "config.json").read_text())
    if isinstance(info.get("sampling"), dict):
        return dict(info["sampling"])
    t = info.get("train", {})
    return {"steps": int(t.get("sample_steps", 10)), "guidance": float(t.get("guidance", 1.0)),
            "shift": float(t.get("timestep_shift", 1.0)), "scheduler": "euler"}  # fmt: skip


def load_world_action_model(
    path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
) -> tuple[WorldActionModel, TrainConfig]:
    """The model in eval mode on ``device`` and the training config it was trained with."""
    from actionimages.model.latent import PatchPCACodec, WanVAECodec
    from actionimages.model.text import CachedTextEncoder, build_text_encoder
    from actionimages.model.transformer import ActionImagesWanTransformer

    folder, codec_file = resolve_model_folder(path)
    info = json.loads((folder / "config.json").read_text())
    if "model" not in info or "train" not in info:
        raise ValueError(f"{folder}/config.json lacks the 'model' and 'train' sections")
    mc = ModelConfig.from_dict(info["model"])
    tc = TrainConfig.from_dict(info["train"])
    transformer = ActionImagesWanTransformer.from_model_config(mc)
    weights_file = folder / "ema.safetensors"
    if not (use_ema and weights_file.is_file()):
        weights_file = folder / "model.safetensors"
    state = load_file(str(weights_file))
    check_finite(state, str(weights_file))
    missing, unexpected = transformer.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights_file} does not match model config {mc.name!r}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    if mc.codec.startswith("wan"):
        if not tc.codec_path:
            raise FileNotFoundError(f"model {mc.name} needs its Wan VAE folder (codec_path)")
        codec = WanVAECodec.from_folder(tc.codec_path)
    else:
        if not codec_file.is_file():
            raise FileNotFoundError(
                f"{codec_file}: the model's PCA codec is missing (it is written next to the "
                "checkpoints by the trainer and shipped next to model.safetensors)"
            )
        codec = PatchPCACodec.load(codec_file)
    text = CachedTextEncoder(
        build_text_encoder(mc.text_encoder, mc.text_dim, mc.text_length, tc.text_path)
    )
    wam = WorldActionModel(mc, transformer, codec, text).to(device).eval()
    return wam, tc


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
    (tmp / "config.json").write_text(json.dumps({"step": info.get("step"), "model": info["model"],
                                                 "train": info["train"], "weights": weights.name,
                                                 "sampling": sampling_defaults(run)}, indent=2))  # fmt: skip
    if codec_file.is_file():
        shutil.copyfile(codec_file, tmp / "codec.safetensors")
    if out.exists():  # keep anything else in an existing folder (e.g. its model card)
        for f in out.iterdir():
            if not (tmp / f.name).exists():
                shutil.move(str(f), tmp / f.name)
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
