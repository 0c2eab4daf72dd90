"""Shared machinery for importing other LeRobot v3 datasets (the DROID and Bridge ports).

Each importer turns episode ``k`` of a source :class:`LeRobotDataset` into an
:class:`Episode` in SPEC conventions; :func:`import_port` runs it over the dataset,
writes the result with :class:`LeRobotWriter` and resumes an interrupted import (the
source episode index is kept in ``Episode.extra["source_episode"]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from actionimages.data.episode import Episode
from actionimages.data.lerobot_reader import LeRobotDataset


def feature_names(feature: dict) -> list[str]:
    """A feature's ``names`` as a flat list (LeRobot ports use lists or {"axes": [...]})."""
    names = feature.get("names")
    if isinstance(names, dict):
        names = next(iter(names.values()), None)
    return [str(n) for n in names] if isinstance(names, list) else []


def column(cols: dict[str, np.ndarray], key: str, width: int | None = None) -> np.ndarray:
    """A required per-frame column as float64 (T,) or (T, width)."""
    if key not in cols:
        raise ValueError(f"source dataset has no feature {key!r} (found: {sorted(cols)})")
    x = np.asarray(cols[key], dtype=np.float64)
    if width is not None:
        x = x.reshape(len(x), -1)  # (T,) or (T, n) -> (T, n)
        if x.shape[1] != width:
            raise ValueError(f"feature {key!r} has {x.shape[1]} values per frame, expected {width}")
    return x


def episode_strings(cols: dict[str, np.ndarray], keys: tuple[str, ...]) -> dict[str, str]:
    """Per-episode constants that ports repeat on every frame (building, date, ...)."""
    return {k: str(cols[k][0]) for k in keys if k in cols and len(cols[k])}


def instruction_of(ds: LeRobotDataset, k: int, cols: dict[str, np.ndarray]) -> str:
    tasks = ds.episodes[k].get("tasks") or []
    if tasks:
        return str(tasks[0])
    if "task_index" in cols and len(ds.tasks):
        return ds.tasks[int(cols["task_index"][0])]
    return ""


def import_port(
    src: str | Path,
    dst: str | Path,
    convert: Callable[[LeRobotDataset, int], Episode],
    *,
    robot_type: str,
    calibrated: bool,
    config=None,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Convert episodes 0..limit-1 of ``src`` with ``convert`` and append them to ``dst``."""
    from actionimages.data.lerobot_writer import LeRobotWriter

    source = LeRobotDataset(src)
    done: set[int] = set()
    if (Path(dst) / "meta" / "info.json").is_file():
        for row in LeRobotDataset(dst).episodes:
            extra = json.loads(row.get("actionimages/extra") or "{}")
            if extra.get("source") == str(Path(src).resolve()):
                done.add(int(extra["source_episode"]))
    n = source.num_episodes if limit is None else min(limit, source.num_episodes)
    added = 0
    with LeRobotWriter(dst, fps=source.fps, robot_type=robot_type, config=config,
                       calibrated=calibrated) as writer:  # fmt: skip
        for k in range(n):
            if k in done:
                log(f"skip source episode {k} (already imported)")
                continue
            episode = convert(source, k)
            episode.extra.update(source=str(Path(src).resolve()), source_episode=k)
            index = writer.add_episode(episode)
            added += 1
            views = ", ".join(sorted(episode.cameras)) or "none: video-only"
            log(
                f"episode {index} <- source {k}: {episode.num_frames} frames, calibrated views: {views}"
            )
    return added
