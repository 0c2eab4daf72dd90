"""Write :class:`Episode` objects to a LeRobot v3.0 dataset, one atomic commit per episode.

    with LeRobotWriter(root, fps=20, robot_type="panda") as writer:
        start = writer.num_episodes         # episodes already on disk (resume)
        writer.add_episode(episode)         # all of it, or none of it

Episodes are appended to the newest data/video file until it would exceed the size
limit, then a new file starts (LeRobot's rule). Reopening an existing dataset appends
to it; features (views, image sizes, calibration) are fixed by the first episode.
See :mod:`actionimages.data.lerobot_format` for the feature layout and
:mod:`actionimages.data.atomic` for what a crash leaves behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from actionimages.data import lerobot_format as fmt
from actionimages.data.atomic import Transaction, recover
from actionimages.data.episode import Episode
from actionimages.data.stats import (
    aggregate_stats,
    array_stats,
    image_stats,
    stats_from_json,
    stats_to_json,
)
from actionimages.data.video import VideoConfig, concat_videos, encode_video, probe_video

MB = 1024 * 1024


@dataclass(frozen=True)
class WriterConfig:
    """Storage settings (the size limits and chunking are LeRobot's ``info.json`` keys)."""

    video: VideoConfig = field(default_factory=VideoConfig)
    chunks_size: int = 1000
    data_files_size_in_mb: int = 100
    video_files_size_in_mb: int = 200

    @classmethod
    def default(cls) -> WriterConfig:
        return cls()

    @classmethod
    def lerobot(cls) -> WriterConfig:
        """LeRobot's recorder defaults (AV1 with a key frame every 2 frames)."""
        return cls(video=VideoConfig.lerobot())

    @classmethod
    def debug(cls) -> WriterConfig:
        """Tiny file limits so every episode starts new files: exercises file rollover."""
        return cls(video=VideoConfig.h264(), chunks_size=2, data_files_size_in_mb=1,
                   video_files_size_in_mb=1)  # fmt: skip


class LeRobotWriter:
    """Creates a LeRobot v3.0 dataset at ``root``, or reopens one to append episodes.

    Args:
        root: dataset folder (created if missing; must be empty or a dataset).
        fps: frame rate; required for a new dataset, checked against an existing one.
        robot_type: stored in info.json (e.g. "panda").
        config: :class:`WriterConfig` (video codec, file size limits).
        calibrated: store per-frame camera features. Default: whether the first
            episode has cameras. Later episodes without cameras get NaN columns.
    """

    def __init__(
        self,
        root: str | Path,
        fps: float | None = None,
        robot_type: str | None = None,
        config: WriterConfig | None = None,
        calibrated: bool | None = None,
    ):
        self.root = Path(root)
        self._explicit_config = config is not None
        self.config = config or WriterConfig()
        self._calibrated = calibrated
        self.recovered = None
        info_path = self.root / fmt.INFO_PATH
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"{self.root} is a file, not a dataset folder")
        if (self.root / "meta").is_dir():
            self.recovered = recover(self.root)
        if info_path.is_file():
            self._load(fps)
        else:
            leftovers = (
                [p for p in self.root.rglob("*") if p.is_file()] if self.root.exists() else []
            )
            if leftovers:
                raise ValueError(
                    f"{self.root} holds files but no {fmt.INFO_PATH}; it is not a LeRobot dataset. "
                    "Choose an empty or new folder."
                )
            if fps is None or not fps > 0:
                raise ValueError(f"a new dataset needs a positive fps, got {fps}")
            self.info: dict = {}
            self.fps = float(fps)
            self.robot_type = robot_type
            self.tasks: list[str] = []
            self.last: dict | None = None  # the newest committed episode row
            self.stats: dict = {}

    # --- state ----------------------------------------------------------------------
    def _load(self, fps: float | None) -> None:
        from actionimages.data.lerobot_reader import load_episode_rows, load_tasks

        self.info = json.loads((self.root / fmt.INFO_PATH).read_text())
        if self.info.get("codebase_version") != fmt.CODEBASE_VERSION:
            raise ValueError(
                f"{self.root} is LeRobot {self.info.get('codebase_version')}; only "
                f"{fmt.CODEBASE_VERSION} can be appended to"
            )
        self.fps = float(self.info["fps"])
        if fps is not None and abs(float(fps) - self.fps) > 1e-6:
            raise ValueError(f"{self.root} is recorded at {self.fps} fps, not {fps}")
        self.robot_type = self.info.get("robot_type")
        self._match_video_config()
        self.tasks = load_tasks(self.root)
        rows = load_episode_rows(self.root, self.info["total_episodes"])
        self.last = rows[-1] if rows else None
        stats_path = self.root / fmt.STATS_PATH
        self.stats = (
            stats_from_json(json.loads(stats_path.read_text())) if stats_path.is_file() else {}
        )

    def _match_video_config(self) -> None:
        """Appended videos must be encoded like the existing ones (they are remuxed)."""
        infos = [
            f.get("info") or {} for f in self.info["features"].values() if f["dtype"] == "video"
        ]
        if not infos or "video.codec" not in infos[0]:
            return
        codec, pix_fmt = infos[0]["video.codec"], infos[0].get("video.pix_fmt", "yuv420p")
        video = self.config.video
        if (video.codec, video.pix_fmt) == (codec, pix_fmt):
            return
        if self._explicit_config:
            raise ValueError(
                f"{self.root} stores {codec}/{pix_fmt} video; the config asks for "
                f"{video.codec}/{video.pix_fmt}. Appended episodes must use the same encoding."
            )
        if codec not in ("av1", "h264"):
            raise ValueError(f"{self.root} stores {codec} video; only av1/h264 can be appended")
        video = video.with_codec(codec)
        self.config = replace(self.config, video=replace(video, pix_fmt=pix_fmt))

    @property
    def num_episodes(self) -> int:
        """Complete episodes on disk (an interrupted one never counts)."""
        return int(self.info.get("total_episodes", 0))

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing is held open between episodes; kept for symmetry with ``with``."""

    # --- adding an episode ----------------------------------------------------------
    def add_episode(self, episode: Episode) -> int:
        """Append ``episode`` atomically; returns its episode index."""
        # A new dataset's features come from its first episode, but only once it is saved.
        info = self.info or self._new_info(episode)
        self._check(episode, info)
        self.root.mkdir(parents=True, exist_ok=True)
        txn = Transaction(self.root)
        scratch = Path(tempfile.mkdtemp(prefix=".episode-", suffix=".tmp", dir=self.root))
        try:
            row, info, tasks, stats = self._stage(episode, txn, scratch, info)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        # In-memory state changes only once the episode is on disk.
        self.last, self.info, self.tasks, self.stats = row, info, tasks, stats
        return row["episode_index"]

    def _new_info(self, episode: Episode) -> dict:
        sizes = {cam: frames.shape[1:3] for cam, frames in episode.images.items()}
        calibrated = episode.has_cameras if self._calibrated is None else self._calibrated
        return {
            "codebase_version": fmt.CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": self.config.chunks_size,
            "data_files_size_in_mb": self.config.data_files_size_in_mb,
            "video_files_size_in_mb": self.config.video_files_size_in_mb,
            "fps": int(self.fps) if self.fps.is_integer() else self.fps,
            "splits": {},
            "data_path": fmt.DATA_PATH,
            "video_path": fmt.VIDEO_PATH if sizes else None,
            "features": fmt.build_features(sizes, calibrated),
        }

    def _check(self, ep: Episode, info: dict) -> None:
        features = info["features"]
        views = [k[len(fmt.IMAGE_PREFIX) :] for k in fmt.video_keys(features)]
        if sorted(ep.images) != sorted(views):
            raise ValueError(
                f"episode has views {sorted(ep.images)}; this dataset stores {sorted(views)}"
            )
        for cam in views:
            want = tuple(features[fmt.image_key(cam)]["shape"][:2])
            if ep.images[cam].shape[1:3] != want:
                raise ValueError(
                    f"view {cam!r} has {ep.images[cam].shape[1:3]} images; the dataset stores {want}: "
                    "resize the episode first"
                )
        for cam, cams in ep.cameras.items():
            if cam not in ep.images:
                raise ValueError(f"camera {cam!r} has calibration but no images")
            if fmt.intrinsics_key(cam) not in features:
                raise ValueError(
                    f"episode calibrates {cam!r} but the dataset was created without camera "
                    "features; create it with LeRobotWriter(..., calibrated=True)"
                )
            if any((c.height, c.width) != ep.images[cam].shape[1:3] for c in cams):
                raise ValueError(f"camera {cam!r}: calibration image size differs from its images")
        if abs(float(ep.fps) - self.fps) > 1e-6:
            raise ValueError(f"episode is at {ep.fps} fps; the dataset is at {self.fps} fps")
        if ep.num_frames < 1:
            raise ValueError("episode has no frames")
        for name, arr in (
            ("position", ep.position),
            ("rotation", ep.rotation),
            ("gripper", ep.gripper),
        ):
            finite = np.isfinite(arr)
            if not (finite.all() or (~finite).all()):
                raise ValueError(
                    f"episode {name} is partly NaN/inf; use all-finite values, or all NaN for an "
                    "episode without actions (video-only)"
                )

    def _next_file(
        self, info: dict, prefix: str, relative_template: str, key: str | None, add_mb: float
    ):
        """(chunk, file, append?) for new content of ``add_mb`` under a size limit."""
        limit = info[
            "video_files_size_in_mb" if prefix.startswith("videos/") else "data_files_size_in_mb"
        ]
        if self.last is None or f"{prefix}/chunk_index" not in self.last:
            return 0, 0, False
        chunk, file = self.last[f"{prefix}/chunk_index"], self.last[f"{prefix}/file_index"]
        path = self.root / relative_template.format(
            video_key=key, chunk_index=chunk, file_index=file
        )
        if path.is_file() and path.stat().st_size / MB + add_mb < limit:
            return chunk, file, True
        file += 1
        if file >= info["chunks_size"]:
            chunk, file = chunk + 1, 0
        return chunk, file, False

    def _stage(
        self, ep: Episode, txn: Transaction, scratch: Path, info: dict
    ) -> tuple[dict, dict, list, dict]:
        """Write every new file version into ``txn``; returns the state after commit."""
        index = self.num_episodes
        start = int(self.last["dataset_to_index"]) if self.last else 0
        T = ep.num_frames
        info = json.loads(json.dumps(info))  # deep copy: self.info changes only on commit
        features = info["features"]
        tasks = self.tasks if ep.instruction in self.tasks else [*self.tasks, ep.instruction]
        task_index = tasks.index(ep.instruction)

        # 1. Frame table -> data parquet (appended to the newest file if it has room).
        cols = fmt.episode_columns(ep, features)
        cols.update({
            "timestamp": (np.arange(T) / self.fps).astype(np.float32),
            "frame_index": np.arange(T, dtype=np.int64),
            "episode_index": np.full(T, index, dtype=np.int64),
            "index": np.arange(start, start + T, dtype=np.int64),
            "task_index": np.full(T, task_index, dtype=np.int64),
        })  # fmt: skip
        schema = fmt.data_schema(features)
        arrays = []
        for name in schema.names:
            value = np.asarray(cols[name])
            if value.ndim == 2:  # (T, n) -> fixed-size list column
                arrays.append(
                    pa.FixedSizeListArray.from_arrays(pa.array(value.reshape(-1)), value.shape[1])
                )
            else:
                arrays.append(pa.array(value))
        table = pa.Table.from_arrays(arrays, schema=schema)
        checksum = fmt.episode_checksum(table)
        est_mb = table.nbytes / MB
        d_chunk, d_file, append = self._next_file(info, "data", fmt.DATA_PATH, None, est_mb)
        rel = fmt.DATA_PATH.format(chunk_index=d_chunk, file_index=d_file)
        if append:
            old = pq.read_table(self.root / rel)
            old = old.filter(pa.compute.less(old["index"], start))  # drop any uncommitted rows
            table = pa.concat_tables([old.cast(schema), table])
        pq.write_table(table, txn.path_for(rel))

        row: dict = {"episode_index": index, "tasks": [ep.instruction], "length": T,
                     "data/chunk_index": d_chunk, "data/file_index": d_file,
                     "dataset_from_index": start, "dataset_to_index": start + T}  # fmt: skip
        ep_stats = {k: array_stats(cols[k]) for k in schema.names}

        # 2. One MP4 per view: encode the episode, then append it to the newest file.
        for cam, frames in ep.images.items():
            key = fmt.image_key(cam)
            mine = scratch / f"{cam}.mp4"
            encode_video(mine, frames, self.fps, self.config.video)
            v_chunk, v_file, append = self._next_file(
                info, f"videos/{key}", fmt.VIDEO_PATH, key, mine.stat().st_size / MB
            )
            rel = fmt.VIDEO_PATH.format(video_key=key, chunk_index=v_chunk, file_index=v_file)
            staged = txn.path_for(rel)
            if append:
                from_ts = concat_videos([self.root / rel, mine], staged)[1]
            else:
                shutil.move(mine, staged)
                from_ts = 0.0
            if features[key].get("info") is None:
                features[key]["info"] = probe_video(staged)
            row.update({f"videos/{key}/chunk_index": v_chunk, f"videos/{key}/file_index": v_file,
                        f"videos/{key}/from_timestamp": float(from_ts),
                        f"videos/{key}/to_timestamp": float(from_ts) + T / self.fps})  # fmt: skip
            ep_stats[key] = image_stats(frames)

        # 3. Episode row (+ stats) -> meta/episodes; tasks, stats, info.
        for feat, stats in ep_stats.items():
            for name, value in stats.items():
                row[f"stats/{feat}/{name}"] = np.asarray(value).tolist()
        row[fmt.TASK_NAME_COLUMN] = ep.task
        row[fmt.EXTRA_COLUMN] = fmt.to_json(ep.extra)
        row[fmt.CHECKSUM_COLUMN] = checksum
        self._stage_episode_row(row, txn, info)
        if len(tasks) > len(self.tasks) or not (self.root / fmt.TASKS_PATH).is_file():
            pq.write_table(fmt.tasks_table(tasks), txn.path_for(fmt.TASKS_PATH))
        stats = aggregate_stats([self.stats, ep_stats]) if self.stats else ep_stats
        txn.write_bytes(fmt.STATS_PATH, json.dumps(stats_to_json(stats), indent=2).encode())
        info.update(total_episodes=index + 1, total_frames=start + T, total_tasks=len(tasks),
                    splits={"train": f"0:{index + 1}"})  # fmt: skip
        txn.write_bytes(fmt.INFO_PATH, json.dumps(info, indent=4).encode())
        return row, info, tasks, stats

    def _stage_episode_row(self, row: dict, txn: Transaction, info: dict) -> None:
        est_mb = len(json.dumps(row, default=str)) / MB
        chunk, file, append = self._next_file(
            info, "meta/episodes", fmt.EPISODES_PATH, None, est_mb
        )
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = chunk, file
        rel = fmt.EPISODES_PATH.format(chunk_index=chunk, file_index=file)
        rows = []
        if append:
            old = pq.read_table(self.root / rel).to_pylist()
            rows = [r for r in old if r["episode_index"] < row["episode_index"]]
        pq.write_table(pa.Table.from_pylist([*rows, row]), txn.path_for(rel))
