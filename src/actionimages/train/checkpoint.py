"""Checkpoints: written atomically, resumed exactly.

A checkpoint is a folder ``<run>/checkpoints/step-0000123/``:

    model.safetensors       trainable model weights (float32 master copy)
    ema.safetensors         EMA weights (when EMA is on)
    config.json             {"step", "model": ModelConfig, "train": TrainConfig}
    optimizer.pt            AdamW state  (torch.save; read back with weights_only=True)
    scheduler.pt            LR scheduler state (same)
    rng.safetensors / rng.json   torch (CPU, CUDA), NumPy and Python RNG states

It is written into a hidden temporary folder and renamed into place, so a crash leaves
either the old set of checkpoints or the new one, never half a folder; ``latest`` is a
text file replaced the same way.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """Raise a one-line ValueError naming ``where`` and the first tensor with NaN or inf."""
    for name, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"{where}: weight {name!r} has {bad} non-finite value(s) (NaN/inf); "
                "the run diverged before this was written. Use an earlier checkpoint"
            )


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    # The legacy global NumPy RNG, because third-party data code may still draw from it.
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    tensors["numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
    py = random.getstate()
    return tensors, {
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
        "python": [py[0], list(py[1]), py[2]],
    }


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
        if states:
            torch.cuda.set_rng_state_all(states)
    kind, pos, has_gauss, gauss = meta["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))  # noqa: NPY002
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    configs: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    ema_state: dict[str, torch.Tensor] | None = None,
    keep: int | None = None,
) -> Path:
    """Write checkpoint ``step`` under ``run_dir/checkpoints`` atomically; returns its folder.

    Non-finite weights are refused (ValueError) before anything is written, so a diverged
    run can never write or promote a NaN checkpoint to ``latest``.
    """
    check_finite(model_state, f"{run_dir} step {step}")
    if ema_state is not None:
        check_finite(ema_state, f"{run_dir} step {step} (EMA)")
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in model_state.items()},
        str(tmp / "model.safetensors"),
    )
    if ema_state is not None:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in ema_state.items()},
            str(tmp / "ema.safetensors"),
        )
    (tmp / "config.json").write_text(json.dumps({"step": step, **configs}, indent=2))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if scheduler is not None:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    tensors, meta = rng_state()
    save_file(tensors, str(tmp / "rng.safetensors"))
    (tmp / "rng.json").write_text(json.dumps(meta))
    if final.exists():  # re-saving a step (e.g. after a resume): replace it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_text_atomic(root / "latest", final.name)
    if keep:
        for old in sorted(root.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.exists() and (root / pointer.read_text().strip() / "config.json").exists():
        return root / pointer.read_text().strip()
    done = sorted(p for p in root.glob("step-*") if (p / "config.json").exists())
    return done[-1] if done else None


def intact_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders of a run, newest first (``latest`` first if it is one)."""
    root = Path(run_dir) / "checkpoints"
    done = sorted((p for p in root.glob("step-*") if (p / "config.json").exists()), reverse=True)
    first = latest_checkpoint(run_dir)
    return ([first] if first else []) + [p for p in done if p != first]


def remove_orphans(run_dir: str | Path) -> list[Path]:
    """Delete ``.tmp-step-*`` folders a killed run left behind; returns what was removed."""
    root = Path(run_dir) / "checkpoints"
    orphans = sorted(root.glob(".tmp-step-*")) if root.is_dir() else []
    for o in orphans:
        shutil.rmtree(o, ignore_errors=True)
    return orphans


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore what is given from checkpoint folder ``path``; returns its config.json plus "ema"."""
    path = Path(path)
    if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
        raise FileNotFoundError(
            f"{path}: not a checkpoint (expected config.json and model.safetensors)"
        )
    info = json.loads((path / "config.json").read_text())
    if model is not None:
        try:
            weights = load_file(str(path / "model.safetensors"))
        except Exception as err:  # safetensors' own error type: name the file
            raise ValueError(
                f"{path / 'model.safetensors'} is not a readable safetensors file ({err})"
            ) from err
        check_finite(weights, str(path / "model.safetensors"))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        if unexpected or trainable & set(missing):
            raise ValueError(
                f"checkpoint does not match the model: missing {sorted(missing)[:5]}, unexpected {unexpected[:5]}"
            )
    if optimizer is not None and (path / "optimizer.pt").exists():
        optimizer.load_state_dict(
            torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        )
    if scheduler is not None and (path / "scheduler.pt").exists():
        scheduler.load_state_dict(
            torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True)
        )
    if restore_rng and (path / "rng.safetensors").exists():
        set_rng_state(
            load_file(str(path / "rng.safetensors")), json.loads((path / "rng.json").read_text())
        )
    info["ema"] = (
        load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").exists() else None
    )
    if info["ema"] is not None:
        check_finite(info["ema"], str(path / "ema.safetensors"))
    return info
