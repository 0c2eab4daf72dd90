"""Reading the metric networks' local weight files (LPIPS, I3D) without unpickling code."""

from __future__ import annotations

from pathlib import Path

import torch


def read_state_dict(path: str | Path, missing_message: str) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a .safetensors or .pth/.pt/.bin file.

    ``.pth`` files are read with ``torch.load(weights_only=True)``; a ``{"state_dict": ...}``
    wrapper is unwrapped. ``missing_message`` says how to get the file when it is absent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {missing_message}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix not in (".pth", ".pt", ".bin"):
        raise ValueError(f"{path}: expected a .safetensors or .pth/.pt file")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return dict(obj)
