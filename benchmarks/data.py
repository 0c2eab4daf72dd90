"""Data-loader benchmark (issue 4): clips/s at 2 views x 41 frames x 256 px.

    .venv/bin/python benchmarks/data.py            # full run, prints a Markdown section
    .venv/bin/python benchmarks/data.py --quick    # fewer samples

Two datasets are measured: the real RLBench sample imported to LeRobot v3 (128 px
AV1 video, upscaled to 256), and a synthetic one recorded at 256 px (AV1, closer to
what a 256 px training set costs to decode). For each: the sampler alone
(``num_workers=0``), through a DataLoader with 2 workers (all this machine's cores),
and without rendering action images (``render_actions=False``, for a trainer that
renders them on its GPU), plus where one sample's time goes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from actionimages.data.lerobot import LeRobotDataset, LeRobotWriter
from actionimages.data.rlbench import import_rlbench
from actionimages.data.sampler import ClipConfig, ClipSampler, clip_loader
from actionimages.data.synthetic import synthetic_episode

ROOT = Path(__file__).resolve().parents[1]
RLBENCH = Path(os.environ.get("ACTIONIMAGES_RLBENCH", ROOT.parent / "shared" / "data" / "rlbench"))


def rate(sampler: ClipSampler, n: int, workers: int) -> float:
    """Samples per second over ``n`` items (after one warm-up item, or once the workers
    have delivered their first item, so start-up is not counted)."""
    if workers == 0:
        sampler[10_000]
        t0 = time.perf_counter()
        for i in range(n):
            sampler[i]
        return n / (time.perf_counter() - t0)
    loader = clip_loader(sampler, batch_size=1, num_workers=workers)  # fork server
    it = iter(loader)
    next(it)  # workers started and warm
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    return n / (time.perf_counter() - t0)


def breakdown(sampler: ClipSampler, n: int) -> dict[str, float]:
    """Mean milliseconds per sample for each stage, timed separately."""
    from actionimages.codec.encoder import encode_action_images
    from actionimages.data.sampler import resize_frames

    cfg = sampler.config
    times: dict[str, list[float]] = {"read + decode video": [], "resize + crop + scale": [],
                                     "render action images": [], "whole sample": []}  # fmt: skip
    for i in range(n):
        d, k, rng = sampler.pick(i)
        ds = sampler.datasets[d]
        idx, _ = sampler.frame_indices(ds, k, rng)
        views, _ = sampler.choose_views(ds, k, rng)
        t0 = time.perf_counter()
        ep = ds.read_episode(k, cameras=list(dict.fromkeys(views)), frames=idx)
        t1 = time.perf_counter()
        out = torch.empty(len(views), cfg.num_frames, cfg.height, cfg.width, 3)
        for j, v in enumerate(views):
            x = resize_frames(ep.images[v], cfg.height, cfg.width)
            torch.mul(x, 1 / 127.5, out=out[j]).sub_(1.0)
        t2 = time.perf_counter()
        cams = [[c.resized(cfg.height, cfg.width) for c in ep.cameras[v]] for v in views]
        encode_action_images(ep.position, ep.rotation, ep.gripper, cams)
        t3 = time.perf_counter()
        sampler.clip(d, k, np.random.default_rng(i))
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[key].append(dt * 1000)
    return {k: float(np.mean(v)) for k, v in times.items()}


def synthetic_dataset(root: Path, episodes: int = 4) -> Path:
    with LeRobotWriter(root, fps=20) as w:  # default config: AV1, key frame every 8
        for s in range(episodes):
            w.add_episode(synthetic_episode(num_frames=100, size=256, seed=s, fps=20,
                                            views=("front", "left", "right")))  # fmt: skip
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = 4 if args.quick else 12
    cfg = ClipConfig.default()  # 2 views x 41 frames x 256 px at 10 fps
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-"))
    sets = {}
    if RLBENCH.exists():
        import_rlbench(RLBENCH, tmp / "rlbench", log=lambda s: None)
        sets["RLBench sample (128 px AV1 -> 256)"] = tmp / "rlbench"
    sets["synthetic (256 px AV1)"] = synthetic_dataset(tmp / "synthetic")

    rows, parts = [], {}
    for name, root in sets.items():
        ds = LeRobotDataset(root)
        sampler = ClipSampler([ds], cfg)
        no_render = ClipSampler([ds], replace(cfg, render_actions=False))
        r0 = rate(sampler, n, 0)
        print(f"{name}: {r0:.2f}/s without workers", file=sys.stderr, flush=True)
        r2 = rate(sampler, n, 2)
        print(f"{name}: {r2:.2f}/s with 2 workers", file=sys.stderr, flush=True)
        r2n = rate(no_render, n, 2)
        rows.append(f"| {name} | {r0:.2f} | {r2:.2f} | {r2n:.2f} |")
        parts[name] = breakdown(sampler, max(3, n // 3))
        print(rows[-1], flush=True)

    stamp = datetime.date.today().isoformat()
    cpu = platform.processor() or platform.machine()
    print(f"\n## Data\n\nDevice: {os.cpu_count()}-core CPU ({cpu}), shared; "
          f"`torch.set_num_threads(1)` per process; {stamp}. `benchmarks/data.py`, "
          f"{n} samples per cell, clip = 2 views x 41 frames x 256 x 256 at 10 fps, float32.\n")  # fmt: skip
    print(
        "| dataset | samples/s, no workers | samples/s, 2 workers | 2 workers, no action images |"
    )
    print("|---|---|---|---|")
    print("\n".join(rows))
    print("\nWhere one sample's time goes (ms, no workers):\n")
    keys = list(next(iter(parts.values())))
    print("| dataset | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, p in parts.items():
        print(f"| {name} | " + " | ".join(f"{p[k]:.0f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
