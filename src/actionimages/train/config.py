"""Training configurations: one frozen dataclass, named presets, no YAML.

    cfg = TrainConfig.preset("tiny", data=("data/sim",), steps=2000)
    cfg = cfg.replace(model=cfg.model.replace(num_layers=6))   # configs hold configs
    actionimages train --preset tiny --data data/sim --steps 2000 --set model.num_layers=6

Presets:
    debug   tests: debug model, 2 x 9 frames at 64 x 64, 4 steps
    tiny-state  models/tiny-state: the current pose given as action frame 0, video as frame
            deltas, 3.2 s clips at 2.5 fps, action frames weighted 4x, timestep shift 6
    tiny-state-lowdim  its baseline with actions as 10-D vectors
    tiny    the earlier default (10 fps clips, no pose given); tiny-lowdim its baseline
    paper   the authors' recipe (paper Sec. 4, SPEC 4): Wan2.2-TI2V-5B, lr 5e-7 after 1000
            warm-up steps then constant, clip 1.0, bf16, batch 1 per GPU, 100k steps,
            85/5/5/5 tasks, mixture Bridge 0.2 / RLBench 0.5 / DROID 0.3. Its clip is the
            paper's 2 views x 41 frames but at 256 x 256, not the paper's 512 x 512 (a
            quarter of the tokens; ``ClipConfig.default``).

The task mix: each clip draws its task from ``task_ratios`` renormalised over the tasks
it allows (a clip without actions allows only video_only), so a data mixture with
video-only sources realises more video_only than configured (about 24% instead of 5%
under the paper's mixture). ``task_mix="exact"`` corrects for that: with a fraction f of
video-only clips, labelled clips draw video_only with (r_vo - f) / (1 - f) and the other
tasks with r_k / (1 - f). The trainer logs the realised ratios (``task_ratio/*``) every
``log_every`` steps either way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from actionimages._presets import lookup
from actionimages.clips import ClipConfig
from actionimages.model.config import ModelConfig
from actionimages.model.masking import PAPER_TASK_RATIOS


@dataclass(frozen=True)
class TrainConfig:
    """All knobs of one training run.

    Attributes (groups):
        model: the :class:`~actionimages.model.config.ModelConfig` (a preset name is
            accepted and looked up, as in ``TrainConfig(model="tiny")``).
        wan_path: diffusers Wan transformer folder to start from (None: random init).
        latent_codec_path: patch-PCA file or Wan VAE folder (None with latent codec "pca":
            fit one on the data).
        text_path: text encoder folder (umt5), or None for the offline encoders.
        image_encoder_path: CLIP vision folder for weights with an image branch (Wan 2.1 I2V).
        data, data_weights: LeRobot v3 dataset folders and mixture weights.
        max_episodes: train on the first this many episodes of each dataset (None: all).
        clip: the data sampler's :class:`~actionimages.clips.ClipConfig` (or a preset
            name: "debug", "long", "default"). The model folder records it for inference.
        task_ratios: joint / action_to_video / video_to_action / video_only weights.
        task_mix: "per_clip" (each clip renormalises ``task_ratios`` over the tasks it
            allows) or "exact" (the ratios of fully labelled clips are corrected for the
            fraction of video-only clips, estimated on the first 64 clips, so that the
            realised mix equals ``task_ratios``; see the module docstring).
        prompt_dropout: probability of replacing the instruction by "" (classifier-free guidance).
        timestep_shift: flow shift s, sigma = s u / (1 + (s - 1) u) (1 = no shift).
        timestep_sampling: "uniform" or "logit_normal" for u, or "flash" (DreamZero's
            decoupled noise: video noise level ~ Beta(3, 1), mostly noisy, i.e. DreamZero's
            t = 1 - Beta(3, 1) with t = 1 clean; action level uniform and shifted).
        action_loss_weight: weight of action frames in the loss relative to video frames.
        blob_loss_weight: weight of the auxiliary localisation loss (:mod:`actionimages.model.
            blob_loss`: where the implied clean action images put their blobs); 0 = off.
        lr, warmup_steps, weight_decay, betas, grad_clip: AdamW, linear warm-up then constant.
        ema_decay: keep an EMA of the weights (None = off).
        mixed_precision: "no" or "bf16" (GPU); gradient_checkpointing: recompute blocks.
        log_every, save_every, sample_every: in steps (0 = never); sample_steps: Euler steps.
        report_to: "tensorboard", "wandb" (when installed), "all" or "none".
        num_threads: torch CPU threads (None: torch's default). On a small shared CPU, 1 is
            several times faster than oversubscribed OpenMP threads and leaves a core to the loader.
    """

    name: str = "tiny"
    # Frozen configs, so one shared default instance is safe.
    model: ModelConfig = ModelConfig.preset("tiny")  # noqa: RUF009
    wan_path: str | None = None
    latent_codec_path: str | None = None
    text_path: str | None = None
    image_encoder_path: str | None = None
    data: tuple[str, ...] = ()
    data_weights: tuple[float, ...] | None = None
    max_episodes: int | None = None
    clip: ClipConfig = ClipConfig.debug()  # noqa: RUF009
    output_dir: str = "runs/tiny"
    steps: int = 2000
    batch_size: int = 2
    num_workers: int = 0
    task_ratios: tuple[float, float, float, float] = PAPER_TASK_RATIOS
    task_mix: str = "per_clip"
    prompt_dropout: float = 0.1
    timestep_shift: float = 1.0
    timestep_sampling: str = "uniform"
    action_loss_weight: float = 1.0
    blob_loss_weight: float = 0.0
    lr: float = 3e-4
    warmup_steps: int = 50
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    ema_decay: float | None = None
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    seed: int = 0
    log_every: int = 10
    save_every: int = 500
    sample_every: int = 0
    sample_steps: int = 10
    guidance: float = 1.0
    report_to: str = "tensorboard"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        # Preset names are a shorthand; the config itself always holds config objects.
        if isinstance(self.model, str):
            object.__setattr__(self, "model", ModelConfig.preset(self.model))
        if isinstance(self.clip, str):
            object.__setattr__(self, "clip", ClipConfig.preset(self.clip))
        if not isinstance(self.model, ModelConfig) or not isinstance(self.clip, ClipConfig):
            raise TypeError("model and clip must be a ModelConfig / ClipConfig or a preset name")
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError("steps must be >= 0 and batch_size >= 1")
        if self.task_mix not in ("per_clip", "exact"):
            raise ValueError(f"task_mix must be per_clip or exact, got {self.task_mix!r}")
        if len(self.task_ratios) != 4 or min(self.task_ratios) < 0 or sum(self.task_ratios) <= 0:
            raise ValueError(f"task_ratios must be 4 non-negative weights, got {self.task_ratios}")
        if not 0 <= self.prompt_dropout <= 1:
            raise ValueError(f"prompt_dropout must be in [0, 1], got {self.prompt_dropout}")
        if self.timestep_sampling not in ("uniform", "logit_normal", "flash"):
            raise ValueError(
                "timestep_sampling must be uniform, logit_normal or flash, got "
                f"{self.timestep_sampling!r}"
            )
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(
                f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}"
            )
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.action_loss_weight <= 0:
            raise ValueError(f"action_loss_weight must be > 0, got {self.action_loss_weight}")
        if not self.blob_loss_weight >= 0:
            raise ValueError(f"blob_loss_weight must be >= 0, got {self.blob_loss_weight}")
        numbers = {"lr": self.lr, "weight_decay": self.weight_decay, "grad_clip": self.grad_clip,
                   "timestep_shift": self.timestep_shift, "action_loss_weight": self.action_loss_weight,
                   "blob_loss_weight": self.blob_loss_weight}  # fmt: skip
        bad = [k for k, v in numbers.items() if not math.isfinite(v)]
        if bad:
            raise ValueError(f"not a finite number: {', '.join(bad)}")
        if not 0 < self.lr <= 1:  # AdamW: anything above 1 diverges at once
            raise ValueError(f"lr must lie in (0, 1], got {self.lr}")
        if self.grad_clip < 0 or self.warmup_steps < 0:
            raise ValueError("grad_clip and warmup_steps must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, as in ``ModelConfig``.

        Folders written before configs held configs store ``model`` and ``clip`` as preset
        names and ``codec_path`` under its old name; those still load.
        """
        d = dict(d)
        if "codec_path" in d:
            d["latent_codec_path"] = d.pop("codec_path")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        for k in ("data", "data_weights", "task_ratios", "betas"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        if isinstance(d.get("model"), dict):
            d["model"] = ModelConfig.from_dict(d["model"])
        if isinstance(d.get("clip"), dict):
            d["clip"] = ClipConfig.from_dict(d["clip"])
        return cls(**d)

    def replace(self, **overrides: Any) -> TrainConfig:
        return dataclasses.replace(self, **overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        return lookup(PRESETS, name, "training").replace(**overrides)


PRESETS: dict[str, TrainConfig] = {
    "debug": TrainConfig(
        name="debug", model=ModelConfig.preset("debug"), clip=ClipConfig.preset("debug"), output_dir="runs/debug", steps=4, batch_size=2,
        lr=1e-3, warmup_steps=2, log_every=1, save_every=0, report_to="none", num_threads=1,
    ),
    # The shipped default model (models/tiny/MODEL_CARD.md): one CPU thread, about 20 min.
    # Noise levels shifted towards high noise (shift 6), chosen on validation clips
    # (BENCHMARKS.md, "Issue 15: the default recipe"); the first 224 episodes (make data).
    "tiny": TrainConfig(
        name="tiny", data=("data/sim-train",), max_episodes=224, steps=3000, batch_size=8, lr=5e-4,
        warmup_steps=100, ema_decay=0.995, save_every=250, num_threads=1, timestep_shift=6.0,
    ),
    # The tiny run with the current pose given (model "tiny-state"), action frames
    # weighted 4x from the start, and noise levels shifted towards high noise (shift 6:
    # chosen on validation episodes, BENCHMARKS.md "Issue 15: ablation").
    "tiny-state": TrainConfig(
        name="tiny-state", model=ModelConfig.preset("tiny-state"), clip=ClipConfig.preset("long"), data=("data/sim-train",), steps=3000,
        batch_size=8, lr=1e-3, warmup_steps=100, ema_decay=0.995, save_every=250, num_threads=1,
        action_loss_weight=4.0, timestep_shift=6.0, output_dir="runs/tiny-state",
    ),
    "tiny-state-lowdim": TrainConfig(
        name="tiny-state-lowdim", model=ModelConfig.preset("tiny-state-lowdim"), clip=ClipConfig.preset("long"), data=("data/sim-train",),
        steps=3000, batch_size=8, lr=1e-3, warmup_steps=100, ema_decay=0.995, save_every=250, num_threads=1,
        action_loss_weight=4.0, output_dir="runs/tiny-state-lowdim",
    ),
    # The autoregressive counterpart of "tiny" (issue 11): the same data (the first 224
    # episodes), clip, steps and optimiser, with model "tiny-ar" (teacher-forced chunks).
    # Shift 1, as the default had when models/tiny-ar was trained.
    "tiny-ar": TrainConfig(
        name="tiny-ar", model=ModelConfig.preset("tiny-ar"), data=("data/sim-train",), max_episodes=224,
        steps=2000, batch_size=8, lr=5e-4, warmup_steps=100, ema_decay=0.995, save_every=250,
        num_threads=1, output_dir="runs/tiny-ar",
    ),
    # Issue 7's low-dimensional-action baseline: the same run with model "tiny-lowdim".
    "tiny-lowdim": TrainConfig(
        name="tiny-lowdim", model=ModelConfig.preset("tiny-lowdim"), data=("data/sim-train",), max_episodes=224,
        steps=3000, batch_size=8, lr=5e-4, warmup_steps=100, ema_decay=0.995, save_every=250, num_threads=1,
        timestep_shift=6.0, output_dir="runs/tiny-lowdim",
    ),
    "paper": TrainConfig(
        name="paper", model=ModelConfig.preset("wan2.2-ti2v-5b"), clip=ClipConfig.preset("default"), output_dir="runs/paper", steps=100_000,
        batch_size=1, num_workers=4, lr=5e-7, warmup_steps=1000, grad_clip=1.0, weight_decay=0.0,
        mixed_precision="bf16", gradient_checkpointing=True, timestep_shift=5.0, prompt_dropout=0.05,
        save_every=1000, sample_every=1000, sample_steps=50, guidance=7.5,
        data=("data/bridge", "data/rlbench", "data/droid"), data_weights=(0.2, 0.5, 0.3),
    ),
}  # fmt: skip
