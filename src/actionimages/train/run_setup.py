"""What a training run starts from: its latent codec, an old run to set aside, the task mix.

Kept apart from the loop (:mod:`actionimages.train.trainer`): these run once, before the
first step, and each decides something a resumed run must not change.
"""

from __future__ import annotations

from pathlib import Path

import torch

from actionimages.model.config import ModelConfig
from actionimages.train.checkpoint import latest_checkpoint
from actionimages.train.config import TrainConfig


def training_latent_codec(cfg: TrainConfig, dataset=None):
    """The run's latent codec: given, kept from the run folder, or fitted on the data.

    A resumed run always keeps the codec it was trained with (even if the data has grown
    since); refitting one under existing checkpoints would change the latent space they
    learnt, so that is an error.
    """
    from actionimages.model.factory import load_latent_codec

    mc = cfg.model
    if mc.latent_codec.startswith("wan") or cfg.latent_codec_path:
        return load_latent_codec(mc, cfg.latent_codec_path)
    kept = run_latent_codec_file(cfg.output_dir)
    if kept.is_file():
        return load_latent_codec(mc, kept)
    if latest_checkpoint(cfg.output_dir) is not None:
        raise FileNotFoundError(
            f"{cfg.output_dir} has checkpoints but no latent_codec.safetensors; it cannot be "
            "refitted for a resumed run. Pass the run's codec with --latent-codec-path, or start "
            "a new run"
        )
    if dataset is None:
        raise ValueError("no latent_codec_path and no dataset to fit the PCA latent codec on")
    return fit_pca_codec(dataset, mc, clips=min(len(dataset), 64))


def video_only_fraction(dataset, clips: int = 64) -> float:
    """Fraction of the first ``clips`` items that allow only video_only (no actions or cameras)."""
    n = min(len(dataset), clips)
    only = sum(bool(~torch.as_tensor(dataset[i]["tasks"])[:3].any()) for i in range(n))
    return only / max(n, 1)


def set_aside_old_run(run_dir: Path) -> Path | None:
    """Start a run over without losing the old one: a folder with checkpoints or a latent
    codec is renamed to ``<name>.old-<date>-<time>`` (and said so); returns the new name."""
    import datetime
    import os

    if not run_dir.is_dir() or not (
        latest_checkpoint(run_dir) or any(run_dir.glob("*.safetensors"))
    ):
        return None
    if os.environ.get("LOCAL_RANK", "0") != "0":  # one process moves it
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    run_dir.rename(aside)
    print(f"--no-resume: the old run in {run_dir} was moved to {aside}; starting over")
    return aside


def run_latent_codec_file(run_dir: str | Path) -> Path:
    """Where a run keeps its latent codec (runs written before the rename: codec.safetensors)."""
    run_dir = Path(run_dir)
    old = run_dir / "codec.safetensors"
    return old if old.is_file() else run_dir / "latent_codec.safetensors"


def fit_pca_codec(dataset, mc: ModelConfig, clips: int = 64):
    """Fit the patch-PCA codec on the video and action clips of the first ``clips`` items."""
    from actionimages.model.latent import PatchPCACodec

    def videos():
        for i in range(clips):
            item = dataset[i]
            pair = torch.cat(
                [torch.as_tensor(item["video"]), torch.as_tensor(item["actions"])]
            )  # (2V, T, H, W, 3)
            yield pair.permute(0, 4, 1, 2, 3).float()  # (2V, 3, T, H, W)

    return PatchPCACodec(mc.out_channels, mc.temporal_factor, mc.spatial_factor).fit(videos())
