"""Learned action head vs the geometric decoder (issue 6, deliverable 3).

    .venv/bin/python benchmarks/action_head.py                 # train + evaluate, writes docs/results/action_head.md
    .venv/bin/python benchmarks/action_head.py --steps 20 --clips-per-episode 1 --no-write   # smoke run

Trains two tiny :class:`ActionHead` variants for the same number of steps on ground-truth
action images of the training dataset (half of the clips sent through the PCA latent
codec): with the fixed ray-intersection step, and the plain CNN + MLP. Then decodes
held-out clips with both and with the training-free geometric decoder
(``decode_action_images(method="triangulate")``). Each on (a) unseen in-domain episodes
and (b) episodes filmed from held-out camera poses, for clean action images and for
images round-tripped through the PCA codec (what the world model's latents can express).
Errors are per valid frame: position (mm), rotation (deg), gripper (absolute, 0-1).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import time
from pathlib import Path

import numpy as np
import torch

from actionimages.codec.decoder import decode_action_images
from actionimages.codec.roundtrip import markdown_table
from actionimages.data.sampler import ClipConfig, ClipSampler, cameras_of
from actionimages.geometry.rotations import geodesic_angle
from actionimages.model.action_head import ActionHead, ActionHeadConfig
from actionimages.model.latent import PatchPCACodec
from actionimages.train.action_head import codec_round_trip, collate, fit_action_head

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"intersect": ("learned head (ray intersection)", True),
            "plain": ("learned head (CNN + MLP only)", False)}  # fmt: skip
HEADER = ["split", "images", "decoder", "pos median (mm)", "pos p95 (mm)", "rot median (deg)",
          "rot p95 (deg)", "grip median", "grip p95", "frames", "failed clips"]  # fmt: skip


def load_or_fit_codec(path: Path, train_dir: str) -> tuple[PatchPCACodec, str]:
    """The tiny model's PCA codec if the training run wrote one, else one fitted here."""
    if path.is_file():
        return PatchPCACodec.load(path), str(
            path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        )
    from actionimages.model.config import ModelConfig
    from actionimages.train.trainer import fit_pca_codec

    sampler = ClipSampler(
        [train_dir], dataclasses.replace(ClipConfig.debug(), seed=99, samples_per_epoch=64)
    )
    codec = fit_pca_codec(sampler, ModelConfig.preset("tiny"), clips=64)
    return (
        codec,
        "fitted here: tiny preset sizes (16 ch, 4x8x8 patches), 64 clips of video + actions",
    )


def eval_clips(data_dir: str, clips_per_episode: int, seed: int) -> tuple[list[dict], int]:
    """Deterministic clips (``clips_per_episode`` random windows/view pairs per episode), episodes."""
    sampler = ClipSampler([data_dir], dataclasses.replace(ClipConfig.debug(), seed=seed))
    n = sampler.datasets[0].num_episodes
    items = []
    for k in range(n):
        for j in range(clips_per_episode):
            items.append(sampler.clip(0, k, np.random.default_rng((seed, k, j))))
    return items, n


def errors(pos, rot, grip, item) -> np.ndarray:
    """(T_valid, 3) per-frame [position mm, rotation deg, |gripper|] of a (T, ...) prediction."""
    valid = item["frame_valid"].numpy()
    dp = np.linalg.norm(
        np.asarray(pos, dtype=np.float64) - item["position"].double().numpy(), axis=-1
    )
    dr = np.degrees(
        geodesic_angle(np.asarray(rot, dtype=np.float64), item["rotation"].double().numpy())
    )
    dg = np.abs(np.asarray(grip, dtype=np.float64) - item["gripper"].double().numpy())
    return np.stack([dp * 1000, dr, dg], -1)[valid]


def evaluate(heads: dict[str, ActionHead], codec, items: list[dict]) -> dict[tuple[str, str], tuple[np.ndarray, int]]:  # fmt: skip
    """{(images, decoder): (errors (N, 3), failed clips)} for clean / PCA images."""
    out = {}
    batch = collate(items)
    for kind in ("clean", "PCA round trip"):
        images = batch["actions"]  # (B, V, T, H, W, 3) in [-1, 1]
        if kind != "clean":
            images = torch.cat([codec_round_trip(codec, images[i : i + 16]) for i in range(0, len(images), 16)])  # fmt: skip
        for name, head in heads.items():
            pos, rot, grip = head.predict(images, batch["plucker"], batch["world_to_camera"][:, 0, 0])  # fmt: skip
            out[kind, name] = (np.concatenate([errors(pos[i], rot[i], grip[i], it) for i, it in enumerate(items)]), 0)  # fmt: skip
        geo, failed = [], 0
        for i, it in enumerate(items):
            cams = [cameras_of(it, v) for v in range(images.shape[1])]
            try:
                d = decode_action_images((images[i].double() + 1) / 2, cams, method="triangulate")
            except ValueError:  # a point seen in fewer than two views in every frame
                failed += 1
                continue
            geo.append(errors(d.position, d.rotation, d.gripper, it))
        out[kind, "geometric (triangulate)"] = (
            np.concatenate(geo) if geo else np.zeros((0, 3)),
            failed,
        )
    return out


def row(split: str, key: tuple[str, str], errs: np.ndarray, failed: int) -> list[str]:
    if not len(errs):
        return [split, *key, *["-"] * 6, "0", str(failed)]
    med, p95 = np.median(errs, 0), np.percentile(errs, 95, axis=0)
    return [split, *key, f"{med[0]:.1f}", f"{p95[0]:.1f}", f"{med[1]:.2f}", f"{p95[1]:.2f}",
            f"{med[2]:.3f}", f"{p95[2]:.3f}", str(len(errs)), str(failed)]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", default="/work/data/sim-train")
    p.add_argument("--indomain", default="/work/data/sim-indomain")
    p.add_argument("--heldout-cams", default="/work/data/sim-heldout-cams")
    p.add_argument("--codec", type=Path, default=ROOT / "runs/tiny/codec.safetensors")
    p.add_argument("--steps", type=int, default=350)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--clips-per-episode", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--head-dir", type=Path, default=ROOT / "outputs/action_head")
    p.add_argument("--variants", default="intersect,plain",
                   help="heads to train: intersect (triangulate=True), plain (CNN + MLP only)")  # fmt: skip
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args()
    torch.set_num_threads(1)

    codec, codec_note = load_or_fit_codec(args.codec, args.train)
    heads, notes = {}, []
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
        name, triangulate = VARIANTS[variant]
        t0 = time.perf_counter()
        head, losses = fit_action_head(
            ActionHeadConfig.tiny(triangulate=triangulate), [args.train], args.head_dir / variant,
            steps=args.steps, batch_size=args.batch_size, seed=args.seed, degrade=codec,
        )  # fmt: skip
        minutes = (time.perf_counter() - t0) / 60
        heads[name] = head
        notes.append(f"  - {name}: `ActionHeadConfig.tiny(triangulate={triangulate})`, "
                     f"{sum(p.numel() for p in head.parameters()):,} parameters, {minutes:.1f} min, "
                     f"loss {losses[0]:.3f} -> {np.mean(losses[-20:]):.3f} (mean of the last 20 steps)")  # fmt: skip
        print(notes[-1])

    rows, counts = [], {}
    for split, data in (("in-domain (unseen seeds)", args.indomain),
                        ("held-out camera poses", args.heldout_cams)):  # fmt: skip
        items, counts[split] = eval_clips(data, args.clips_per_episode, seed=1000 + args.seed)
        for key, (errs, failed) in evaluate(heads, codec, items).items():
            rows.append(row(split, key, errs, failed))
    table = markdown_table(HEADER, rows)
    print(table)
    if args.no_write:
        return

    n_train = ClipSampler([args.train]).datasets[0].num_episodes
    cpu = platform.processor() or platform.machine()
    doc = f"""# Learned action head vs geometric decoder

Generated by `benchmarks/action_head.py` on {datetime.date.today()}; CPU ({cpu}), torch
{torch.__version__}, 1 thread, on a machine shared with other training runs.

- Heads, each trained {args.steps} steps x batch {args.batch_size} ({args.steps * args.batch_size} clips of 2 random
  views x 9 frames at 64 x 64, 10 fps; half of them through the PCA codec) on {args.train}
  ({n_train} episodes, training split), same seed:
{chr(10).join(notes)}
- PCA codec: {codec_note}.
- Evaluation: {args.clips_per_episode} clips per episode (random window and view pair, seeded), errors
  over the valid frames of every clip. In-domain: {args.indomain} ({counts["in-domain (unseen seeds)"]}
  episodes, `--split in_domain`). Held-out cameras: {args.heldout_cams}
  ({counts["held-out camera poses"]} episodes, `--split zero_shot_cameras`).
- The geometric decoder gets each view's calibrated cameras and no training; the heads
  get the same views' Plücker ray maps (relative to view 0, frame 0) and predict in
  that frame, converted to world with `world_to_camera[0, 0]`. "ray intersection": the
  head's attention-pooled rays are intersected across views by a fixed least-squares
  step whose points feed the MLP (position as a residual); "CNN + MLP only": the
  network must learn that geometry itself.
- "failed clips": clips the geometric decoder rejected (a point located in fewer than
  two views at every step); their frames are left out of its statistics.
- Clean images are drawn by the same encoder the geometric decoder inverts, so its zero
  error there holds by construction; the PCA rows are the comparison that matters.

{table}
"""
    out = ROOT / "docs/results/action_head.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
