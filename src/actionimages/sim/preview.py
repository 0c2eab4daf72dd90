"""Figures of the benchmark: one frame of every task from every view."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def task_frames(
    tasks: Sequence[str], cameras: Sequence[str], size: int, *, split: str = "train", seed: int = 0
) -> np.ndarray:
    """(len(tasks), len(cameras), size, size, 3) uint8: each task's first frame per view.

    Task ``i`` uses episode seed ``seed + i``, so the rows also show the variation.
    """
    from actionimages.sim.env import make_env

    rows = []
    for i, task in enumerate(tasks):
        with make_env(task, tuple(cameras), size, split=split) as env:
            obs = env.reset(seed=seed + i)
            rows.append(np.stack([obs["images"][c] for c in cameras]))
    return np.stack(rows)


def task_grid(
    tasks: Sequence[str],
    cameras: Sequence[str],
    size: int,
    out: str | Path,
    *,
    split: str = "train",
    seed: int = 0,
) -> Path:
    """Write a labelled PNG grid (rows: tasks, columns: views) and return its path."""
    from PIL import Image, ImageDraw

    frames = task_frames(tasks, cameras, size, split=split, seed=seed)
    n, v = frames.shape[:2]
    label_w, label_h = 110, 16
    canvas = np.full((label_h + n * size, label_w + v * size, 3), 255, dtype=np.uint8)
    for i in range(n):
        for j in range(v):
            y, x = label_h + i * size, label_w + j * size
            canvas[y : y + size, x : x + size] = frames[i, j]
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for j, cam in enumerate(cameras):
        draw.text((label_w + j * size + 4, 2), cam, fill=(0, 0, 0))
    for i, task in enumerate(tasks):
        draw.text((4, label_h + i * size + size // 2 - 6), task, fill=(0, 0, 0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out
