"""Training the behaviour-cloning baseline: ``train_bc`` (``actionimages baseline train-bc``).

Each sample is a clip from :class:`~actionimages.data.sampler.ClipSampler` with
``chunk + 1`` frames at 10 fps: frame 0 is the observation, the measured poses of frames
1..chunk are the targets (the pose measured at t + 1 is what the command at t reached).
Frames past an episode's end (``frame_valid`` False) are left out of the loss.

Output folder (all files replaced atomically, so a crash leaves the previous save):

    config.json        {"kind", "version", "config": BCConfig}
    model.safetensors  weights and the position statistics; metadata "step"
    optimizer.pt       AdamW state (torch.save; read back with weights_only=True)
    stats.json         position mean/std over the training frames
    train_info.json    step, samples seen, wall time, speed, data, last loss
    log.jsonl          one line per ``log_every`` steps

Running again with the same folder resumes from its step; ``steps`` is the total.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from actionimages.baselines.bc import (
    CHECKPOINT_KIND,
    BCConfig,
    BCNet,
    InstructionEmbedder,
    camera_features,
)
from actionimages.data.atomic import atomic_write_bytes


def position_stats(datasets) -> dict:
    """Mean and std (3,) of the end-effector position over every frame of ``datasets``."""
    from actionimages.data.lerobot_format import STATE

    chunks = []
    for ds in datasets:
        if not ds.has_pose_layout:
            continue
        for k in range(ds.num_episodes):
            chunks.append(np.asarray(ds.read_columns(k)[STATE], dtype=np.float64)[:, :3])
    pos = np.concatenate(chunks) if chunks else np.zeros((0, 3))  # (N, 3)
    pos = pos[np.isfinite(pos).all(1)]
    if len(pos) == 0:
        raise ValueError("the training data has no end-effector poses to clone")
    return {"mean": pos.mean(0).tolist(), "std": pos.std(0).tolist(), "frames": len(pos)}


def random_shift(images: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each view (B, V, H, W, 3) by a random whole number of pixels, edges repeated.

    The camera features are left as they are: the shift then also stands for small
    calibration errors.
    """
    B, V, H, W, _ = images.shape
    x = images.reshape(B * V, H, W, 3).permute(0, 3, 1, 2)  # (B, V, H, W, 3) -> (BV, 3, H, W)
    shift = torch.randint(-pixels, pixels + 1, (B * V, 2), generator=generator).float()
    theta = torch.zeros(B * V, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2], theta[:, 1, 2] = shift[:, 0] * 2 / W, shift[:, 1] * 2 / H
    grid = F.affine_grid(theta, [B * V, 3, H, W], align_corners=False)
    x = F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(B, V, H, W, 3)  # (BV, 3, H, W) -> (B, V, H, W, 3)


def batch_loss(model: BCNet, batch: dict, embed: InstructionEmbedder,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:  # fmt: skip
    """Masked chunk loss of one sampler batch; ``generator`` turns on the augmentations.

    Returns the scalar loss and per-part mean absolute errors (normalised units).
    """
    c = model.config
    video = batch["video"]  # (B, V, T, H, W, 3)
    B, V, T, H, W, _ = video.shape
    if T < c.chunk + 1:
        raise ValueError(f"clips have {T} frames; the model needs chunk + 1 = {c.chunk + 1}")
    images = video[:, :, 0].float()  # (B, V, H, W, 3)
    view_mask = None
    if generator is not None:
        if c.random_shift:
            images = random_shift(images, c.random_shift, generator)
        r = torch.rand(B, V, generator=generator)
        view_mask = r >= c.view_dropout
        view_mask[torch.arange(B), r.argmax(1)] = True  # one view always stays
    cams = camera_features(batch["K"][:, :, 0], batch["world_to_camera"][:, :, 0], H, W)
    poses = model.encode_pose(batch["position"], batch["rotation"], batch["gripper"])  # (B, T, 10)
    target = poses[:, 1 : c.chunk + 1]
    valid = batch["frame_valid"][:, 1 : c.chunk + 1].float()  # (B, chunk)
    valid = valid * batch["tasks"][:, 2:3].float()  # clips without poses teach nothing
    pred = model(images, cams, poses[:, 0], embed(list(batch["instruction"])), view_mask)
    diff = pred - target  # (B, chunk, 10)
    err = diff.abs() if c.loss == "l1" else diff.square()
    weight = torch.ones(10)
    weight[9] = c.gripper_weight
    per_frame = (err * weight).sum(-1) / weight.sum()  # (B, chunk)
    n = valid.sum().clamp(min=1.0)
    loss = (per_frame * valid).sum() / n
    with torch.no_grad():
        mae = diff.abs() * valid[..., None]
        parts = {"position": float(mae[..., :3].sum() / (3 * n)),
                 "rotation": float(mae[..., 3:9].sum() / (6 * n)),
                 "gripper": float(mae[..., 9].sum() / n)}  # fmt: skip
    return loss, parts


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def save_bc(out: Path, model: BCNet, optimizer, step: int, stats: dict, info: dict) -> None:
    """Write the folder described in the module docstring; train_info.json goes last."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / "model.safetensors",
                       save(state, metadata={"kind": CHECKPOINT_KIND, "step": str(step)}))  # fmt: skip
    buf = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, buf)
    atomic_write_bytes(out / "optimizer.pt", buf.getvalue())
    _write_json(out / "config.json",
                {"kind": CHECKPOINT_KIND, "version": 1, "config": model.config.to_dict()})  # fmt: skip
    _write_json(out / "stats.json", {"position": stats})
    _write_json(out / "train_info.json", info)


def _resume(out: Path, model: BCNet, optimizer, config: BCConfig) -> tuple[int, dict, dict]:
    """Load weights/optimizer from ``out``: (step, stats, previous train_info)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    meta = json.loads((out / "config.json").read_text())
    if meta.get("kind") != CHECKPOINT_KIND or meta.get("config") != config.to_dict():
        raise ValueError(
            f"{out} holds a run with a different config; pass a new --out or the same preset"
        )
    model.load_state_dict(load_file(str(out / "model.safetensors")))
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        step = int(f.metadata()["step"])
    opt_file = out / "optimizer.pt"
    if opt_file.is_file():
        saved = torch.load(opt_file, weights_only=True)
        if saved["step"] == step:  # a crash between the two writes leaves them apart
            optimizer.load_state_dict(saved["optimizer"])
    stats = json.loads((out / "stats.json").read_text())["position"]
    info_file = out / "train_info.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    return step, stats, info


def make_optimizer(model: BCNet, config: BCConfig) -> torch.optim.AdamW:
    # No weight decay on norms, biases and the spatial-softmax temperature.
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": rest, "weight_decay": 0.0}]  # fmt: skip
    return torch.optim.AdamW(groups, lr=config.lr)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # parallelism comes from the workers


def _loader(dataset, indices: range, batch_size: int, num_workers: int):
    """Batches of ``dataset[i]`` for i in ``indices``, in order.

    Workers start from a fork server with single-threaded BLAS, for the reasons given
    in :func:`actionimages.data.sampler.clip_loader`.
    """
    if num_workers:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=indices, num_workers=num_workers,
        worker_init_fn=_one_thread, multiprocessing_context="forkserver" if num_workers else None,
        drop_last=True,
    )  # fmt: skip


def train_bc(
    config: BCConfig,
    data_dirs: Sequence[str | Path],
    out_dir: str | Path,
    steps: int,
    batch_size: int = 16,
    seed: int = 0,
    max_minutes: float | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Train (or resume) up to ``steps`` total steps; returns the final train_info dict."""
    from tqdm import tqdm

    from actionimages.data.sampler import ClipConfig, ClipSampler

    if steps < 0 or batch_size < 1 or num_workers < 0:
        raise ValueError("steps must be >= 0, batch_size >= 1 and num_workers >= 0")
    if isinstance(data_dirs, str | Path) or not data_dirs:
        raise ValueError("data_dirs must be a non-empty list of dataset folders")
    out = Path(out_dir)
    c = config
    clips = ClipConfig(num_frames=c.chunk + 1, fps=10.0, num_views=c.num_views,
                       height=c.image_size, width=c.image_size, plucker_stride=c.image_size,
                       render_actions=False, samples_per_epoch=max(steps, 1) * batch_size,
                       seed=seed)  # fmt: skip
    sampler = ClipSampler([str(d) for d in data_dirs], clips)
    torch.manual_seed(seed)
    model = BCNet(c)
    optimizer = make_optimizer(model, c)
    if (out / "model.safetensors").is_file() and (out / "config.json").is_file():
        step, stats, info = _resume(out, model, optimizer, c)
    else:
        step, stats, info = 0, position_stats(sampler.datasets), {}
        model.set_stats(stats["mean"], stats["std"])
    out.mkdir(parents=True, exist_ok=True)
    embed = InstructionEmbedder(c)
    prior_wall = float(info.get("wall_seconds", 0.0))
    prior_samples = int(info.get("samples_seen", 0))  # the batch size may change on resume
    start_step, t0 = step, time.time()
    # Sample indices are global (step * batch_size + i), so a resumed run draws the clips
    # the uninterrupted run would have drawn.
    loader = _loader(sampler, range(step * batch_size, steps * batch_size), batch_size, num_workers)
    bar = tqdm(total=steps, initial=step, desc="train-bc", unit="step", disable=not progress)
    window: list[float] = []
    last = {}
    stopped = "steps"

    def snapshot() -> dict:
        wall = time.time() - t0
        return {
            "step": step, "steps_target": steps, "batch_size": batch_size, "seed": seed,
            "samples_seen": prior_samples + (step - start_step) * batch_size, "wall_seconds": round(prior_wall + wall, 2),
            "samples_per_second_last_run": round((step - start_step) * batch_size / max(wall, 1e-9), 3),
            "parameters": sum(p.numel() for p in model.parameters()),
            "data": [str(d) for d in data_dirs], "num_workers": num_workers,
            "last_log": last, "stopped": stopped,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }  # fmt: skip

    model.train()
    try:
        for batch in loader:
            if max_minutes is not None and time.time() - t0 > 60 * max_minutes:
                stopped = "max_minutes"
                break
            lr = c.lr * min(1.0, (step + 1) / max(c.warmup_steps, 1))
            for g in optimizer.param_groups:
                g["lr"] = lr
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
            loss, parts = batch_loss(model, batch, embed, gen)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
            optimizer.step()
            step += 1
            window.append(loss.item())
            bar.update(1)
            if step % c.log_every == 0 or step == steps:
                wall = time.time() - t0
                last = {"step": step, "loss": float(np.mean(window)), **parts, "lr": lr,
                        "wall_seconds": round(prior_wall + wall, 2),
                        "samples_per_second": round((step - start_step) * batch_size / wall, 3)}  # fmt: skip
                with open(out / "log.jsonl", "a") as f:
                    f.write(json.dumps(last) + "\n")
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                window = []
            if step % c.save_every == 0 and step < steps:
                save_bc(out, model, optimizer, step, stats, snapshot())
    except KeyboardInterrupt:
        stopped = "interrupted"
        raise
    finally:
        bar.close()
        info = snapshot()
        save_bc(out, model, optimizer, step, stats, info)
    return info
