"""The training loop: AdamW + warm-up, clipping, EMA, checkpoints, logs, sample videos.

Runs as a plain process (CPU or one GPU) or under ``accelerate launch`` (DDP, FSDP,
DeepSpeed; configs in ``configs/accelerate/``). Reproducible by construction: the batch
of step s holds sample numbers (s * world + rank) * B + i of the dataset, and step s's
tasks, noise levels, noise and prompt dropout come from a generator seeded by (seed,
step, rank), so "train 4 steps" and "train 2, save, resume, train 2" give the same
weights bit for bit (a test checks it).

    trainer = Trainer(TrainConfig.preset("tiny", data=("data/sim",)))
    trainer.train()
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from actionimages.model.factory import build_world_action_model
from actionimages.model.masking import TASKS, exact_mix_ratios, sample_tasks
from actionimages.model.wam import WorldActionModel
from actionimages.train.checkpoint import load_checkpoint, save_checkpoint
from actionimages.train.config import TrainConfig
from actionimages.train.run_setup import (  # noqa: F401  (fit_pca_codec: re-exported)
    fit_pca_codec,
    run_latent_codec_file,
    set_aside_old_run,
    training_latent_codec,
    video_only_fraction,
)
from actionimages.train.schedule import warmup_constant


class NonFiniteLossError(ArithmeticError):
    """Training stopped at the first NaN/inf loss or gradient (nothing was saved from it)."""


class _BySampleNumber(Dataset):
    """Sample number n -> item n % len of epoch n // len (the data sampler draws per (epoch, index))."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, n: int):
        size = len(self.dataset)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(n // size)
        return self.dataset[n % size]


class _StepSampler(Sampler):
    """Sample numbers of steps start, start + 1, ... for one rank."""

    def __init__(self, start_step: int, batch_size: int, world: int, rank: int):
        self.start, self.batch, self.world, self.rank = start_step, batch_size, world, rank

    def __iter__(self):
        for step in itertools.count(self.start):
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)


class Trainer:
    """One training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, dataset: Dataset | None = None, wam: WorldActionModel | None = None,
                 resume: bool = True, preview=None):  # fmt: skip
        from accelerate import Accelerator

        self.cfg = cfg
        self.run_dir = Path(cfg.output_dir)
        if not resume:
            set_aside_old_run(self.run_dir)
        trackers = _trackers(cfg.report_to)
        self.accelerator = Accelerator(mixed_precision=cfg.mixed_precision, log_with=trackers or None,
                                       project_dir=str(self.run_dir))  # fmt: skip
        torch.manual_seed(cfg.seed)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.model_config = wam.config if wam is not None else cfg.model
        self.dataset = dataset if dataset is not None else _build_dataset(cfg)
        if wam is None:
            wam = build_world_action_model(self.model_config, training_latent_codec(cfg, self.dataset),
                                           cfg.wan_path, cfg.text_path, cfg.image_encoder_path)  # fmt: skip
        self.wam = wam
        self.task_ratios, self.keep_video_only = tuple(cfg.task_ratios), 1.0
        if cfg.task_mix == "exact":
            self.video_only_fraction = video_only_fraction(self.dataset)
            self.task_ratios, self.keep_video_only = exact_mix_ratios(
                cfg.task_ratios, self.video_only_fraction
            )
        # Sample previews are drawn by the inference pipeline (the one sampler), which sits
        # above training: the caller hands in ``preview(wam, batch, cfg) -> (video, actions)``
        # (``actionimages train`` passes ``infer.pipeline.preview_sample``).
        self.preview = preview
        self.wam.latent_codec.to(self.accelerator.device)
        transformer = self.wam.transformer
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        self.params = [p for p in transformer.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
        )
        # Stepped by hand once per optimiser step (accelerate's wrapper would step it once per process).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_constant(cfg.warmup_steps)
        )
        self.wam.transformer, self.optimizer = self.accelerator.prepare(transformer, self.optimizer)
        self.ema = None
        if cfg.ema_decay is not None:
            self.ema = {
                n: p.detach().float().clone()
                for n, p in self.unwrapped.named_parameters()
                if p.requires_grad
            }
        self.step = 0
        if self.accelerator.is_main_process:  # the codec goes to disk before any checkpoint
            self.run_dir.mkdir(parents=True, exist_ok=True)
            codec_file = run_latent_codec_file(self.run_dir)
            if hasattr(self.wam.latent_codec, "save") and not codec_file.exists():
                self.wam.latent_codec.save(codec_file)
        if resume:
            self.resume()
        if trackers and self.accelerator.is_main_process:
            flat = {
                k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                for k, v in cfg.to_dict().items()
            }
            self.accelerator.init_trackers(cfg.name, config=flat)

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.wam.transformer)

    # --- data -------------------------------------------------------------------------
    def batches(self, start_step: int):
        acc = self.accelerator
        sampler = _StepSampler(
            start_step, self.cfg.batch_size, acc.num_processes, acc.process_index
        )
        loader = DataLoader(_BySampleNumber(self.dataset), batch_size=self.cfg.batch_size, sampler=sampler,
                            num_workers=self.cfg.num_workers)  # fmt: skip
        return iter(loader)

    def step_generator(self, step: int) -> torch.Generator:
        seed = (self.cfg.seed * 1_000_003 + step) * 1_009 + self.accelerator.process_index
        return torch.Generator().manual_seed(seed)

    # --- one step ---------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        cfg = self.cfg
        self.wam.transformer.train()
        enc = self.wam.encode_batch(batch)
        gen, tasks, keep = self.step_generator(self.step), None, None
        if cfg.task_mix == "exact":  # see exact_mix_ratios: corrected ratios, surplus dropped
            only_video = ~enc.allowed[:, :3].any(1).cpu()  # (B,)
            tasks = sample_tasks(torch.ones_like(enc.allowed.cpu()), self.task_ratios, gen)
            tasks[only_video] = TASKS.index("video_only")
            keep = ~only_video | (torch.rand(len(tasks), generator=gen) < self.keep_video_only)
        with self.accelerator.autocast():
            loss, info = self.wam.loss(enc, gen, self.task_ratios, cfg.prompt_dropout,
                                    cfg.timestep_shift, cfg.timestep_sampling,
                                    action_weight=cfg.action_loss_weight,
                                    first_action_prob=self.model_config.first_action_prob,
                                    tasks=tasks, keep=keep, blob_weight=cfg.blob_loss_weight)  # fmt: skip
        if not torch.isfinite(loss.detach()):
            raise NonFiniteLossError(self._diverged("loss", float(loss.detach())))
        self.accelerator.backward(loss)
        grad_norm = float("nan")
        if cfg.grad_clip > 0:
            grad_norm = float(self.accelerator.clip_grad_norm_(self.params, cfg.grad_clip))
            if not np.isfinite(grad_norm):
                raise NonFiniteLossError(self._diverged("gradient norm", grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            with torch.no_grad():
                for n, p in self.unwrapped.named_parameters():
                    if n in self.ema:
                        self.ema[n].lerp_(p.detach().float(), 1 - cfg.ema_decay)
        self.step += 1
        # Realised task mix (issue 13): ratios are renormalised over each clip's allowed
        # tasks, so video-only clips shift the mix away from the configured ratios.
        trained = info["tasks"].cpu() if keep is None else info["tasks"].cpu()[keep]
        counts = torch.bincount(trained, minlength=len(TASKS)).tolist()
        extra = {"blob_loss": float(info["blob"].detach())} if "blob" in info else {}
        return {
            **extra,
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "lr": self.scheduler.get_last_lr()[0],
            **{f"tasks/{name}": float(c) for name, c in zip(TASKS, counts, strict=True)},
        }

    def _diverged(self, what: str, value: float) -> str:
        return (
            f"{self.run_dir}: non-finite {what} ({value}) at step {self.step + 1} (lr "
            f"{self.scheduler.get_last_lr()[0]:.3g}); stopped without saving it. Try a lower lr, "
            "a longer warm-up or grad_clip > 0, and resume from the last checkpoint"
        )

    def train(self, until: int | None = None) -> list[dict[str, float]]:
        """Train to step ``until`` (default: cfg.steps); returns the per-step logs of this call."""
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.accelerator
        end = cfg.steps if until is None else until
        history, batches = [], self.batches(self.step)
        bar = tqdm(total=end, initial=self.step, disable=not acc.is_main_process, desc=cfg.name)
        tick, samples = time.perf_counter(), 0
        task_counts = dict.fromkeys(TASKS, 0.0)
        while self.step < end:
            batch = next(batches)
            logs = self.train_step(batch)
            samples += cfg.batch_size * acc.num_processes
            history.append({"step": self.step, **logs})
            for name in TASKS:  # counts since the last log line -> realised ratios
                task_counts[name] += logs.pop(f"tasks/{name}")
            if cfg.log_every and self.step % cfg.log_every == 0:
                total = max(sum(task_counts.values()), 1.0)
                logs.update({f"task_ratio/{k}": v / total for k, v in task_counts.items()})
                task_counts = dict.fromkeys(TASKS, 0.0)
                logs["samples_per_s"] = samples / (time.perf_counter() - tick)
                tick, samples = time.perf_counter(), 0
                acc.log({f"train/{k}": v for k, v in logs.items()}, step=self.step)
                bar.set_postfix(loss=f"{logs['loss']:.4f}")
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save()
            if (cfg.sample_every and self.step % cfg.sample_every == 0 and acc.is_main_process
                    and self.preview is not None):  # fmt: skip
                self.write_sample(batch)
            bar.update(1)
        bar.close()
        if cfg.save_every:
            self.save()
        return history

    # --- checkpoints ------------------------------------------------------------------
    def save(self) -> Path | None:
        acc = self.accelerator
        acc.wait_for_everyone()
        state = acc.get_state_dict(self.wam.transformer)  # gathers FSDP / ZeRO-3 shards
        path = None
        if acc.is_main_process:
            configs = {"model": self.model_config.to_dict(), "train": self.cfg.to_dict(),
                       "inference": self.inference_info()}  # fmt: skip
            path = save_checkpoint(
                self.run_dir, self.step, state, configs, self.optimizer, self.scheduler, self.ema
            )
        acc.wait_for_everyone()
        return path

    def resume(self) -> None:
        """Load the newest intact checkpoint; a corrupt newer one is named and skipped."""
        from actionimages.train.checkpoint import intact_checkpoints, remove_orphans

        remove_orphans(self.run_dir)
        candidates, errors = intact_checkpoints(self.run_dir), []
        for ckpt in candidates:
            try:
                self.load(ckpt)
                return
            except (ValueError, OSError, RuntimeError) as err:  # safetensors raises its own
                errors.append(f"{ckpt.name}: {err}")
                print(f"{ckpt}: unreadable checkpoint ({err}); trying an older one")
        if candidates:  # never silently start over on top of a run's checkpoints
            raise ValueError(
                f"{self.run_dir}: no readable checkpoint among {len(candidates)} ({errors[0]})"
            )

    def load(self, path: str | Path) -> None:
        info = load_checkpoint(path, self.unwrapped, self.optimizer, self.scheduler)
        self.step = int(info["step"])
        if self.ema is not None and info["ema"] is not None:
            self.ema = {k: v.to(self.accelerator.device) for k, v in info["ema"].items()}

    def inference_info(self) -> dict:
        """What a loader needs besides the model config, so inference never reads TrainConfig."""
        cfg = self.cfg
        wan = self.model_config.latent_codec.startswith("wan")
        return {
            "clip": cfg.clip.for_inference().to_dict(),
            "latent_codec_path": str(cfg.latent_codec_path) if wan else None,
            "text_path": None if cfg.text_path is None else str(cfg.text_path),
            "image_encoder_path": None
            if cfg.image_encoder_path is None
            else str(cfg.image_encoder_path),
            "sampling": {
                "steps": cfg.sample_steps,
                "guidance": cfg.guidance,
                "shift": cfg.timestep_shift,
                "scheduler": "euler",
            },
        }

    # --- sample videos ----------------------------------------------------------------
    def write_sample(self, batch: dict) -> Path:
        """Joint generation from the first frame of the batch's first item, written as MP4."""
        from actionimages.viz import overlay_action_images, tile_views, to_uint8, write_mp4

        one = {k: v[:1] for k, v in batch.items()}  # tensors and lists alike
        self.wam.transformer.eval()
        video, actions = self.preview(self.wam, one, self.cfg)  # (1, V, T, H, W, 3) in [0, 1]
        rgb = to_uint8(video[0].cpu().numpy())  # (V, T, H, W, 3)
        act = actions[0].cpu().numpy()
        frames = tile_views(
            np.concatenate([rgb, overlay_action_images(rgb, act)]), columns=rgb.shape[0]
        )
        return write_mp4(self.run_dir / "samples" / f"step-{self.step:07d}.mp4", frames, fps=10)


def _trackers(report_to: str) -> list[str]:
    import importlib.util

    wanted = {"all": ["tensorboard", "wandb"], "none": []}.get(report_to, [report_to])
    module = {"tensorboard": "tensorboard", "wandb": "wandb"}
    return [t for t in wanted if importlib.util.find_spec(module.get(t, t)) is not None]


def _build_dataset(cfg: TrainConfig):
    from actionimages.data.sampler import ClipSampler

    if not cfg.data:
        raise ValueError("no training data: pass data=(LeRobot dataset folders, ...) / --data")
    clip = cfg.clip
    weights = cfg.data_weights or (1.0,) * len(cfg.data)
    if len(weights) != len(cfg.data):
        raise ValueError(f"{len(cfg.data)} datasets but {len(weights)} weights")
    return ClipSampler(dict(zip(cfg.data, weights)), clip, cfg.max_episodes)
