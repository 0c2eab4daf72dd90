"""Read LeRobot v3.0 datasets (ours, or any written by LeRobot) with pyarrow and PyAV.

    ds = LeRobotDataset(root)
    ds.num_episodes, ds.fps, ds.camera_names, ds.info
    ep = ds.read_episode(k)                          # Episode, every frame of every view
    ep = ds.read_episode(k, cameras=["front"], frames=np.arange(0, 40, 2))
    cols = ds.read_columns(k)                        # raw per-frame features, no video

Video is decoded lazily: only the views and frames asked for, starting at the key frame
before the first one. Frame tables are cached per data file. Datasets written by other
tools still read: if ``observation.state`` does not use this package's pose layout
(:data:`~actionimages.data.lerobot_format.POSE_NAMES`) the episode has no actions
(all-NaN poses) and the raw columns are in ``Episode.extra["columns"]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from actionimages.data import lerobot_format as fmt
from actionimages.data.episode import Episode
from actionimages.data.video import decode_frames
from actionimages.geometry.camera import Camera


def _read_parquet(path: Path) -> pa.Table:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the dataset is incomplete")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(
            f"{path} is not a readable parquet file ({err}); is it truncated?"
        ) from err


def load_info(root: Path) -> dict:
    path = Path(root) / fmt.INFO_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {root} is not a LeRobot v3 dataset (expected meta/info.json)"
        )
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err
    version = info.get("codebase_version")
    if version != fmt.CODEBASE_VERSION:
        raise ValueError(
            f"{root} is LeRobot dataset {version!r}; this reader supports {fmt.CODEBASE_VERSION!r} "
            "(convert older datasets with LeRobot's v2.1 -> v3.0 converter)"
        )
    missing = {"fps", "features", "total_episodes", "data_path"} - set(info)
    if missing:
        raise ValueError(f"{path} lacks the keys {sorted(missing)}")
    return info


def load_tasks(root: Path) -> list[str]:
    """Task strings ordered by task_index."""
    path = Path(root) / fmt.TASKS_PATH
    if not path.is_file():
        return []
    table = _read_parquet(path)
    names = table.column("task").to_pylist() if "task" in table.column_names else None
    if names is None:  # written without the pandas index: look for the index column
        names = table.column("__index_level_0__").to_pylist()
    order = np.argsort(table.column("task_index").to_numpy())
    return [names[i] for i in order]


def load_episode_rows(root: Path, total_episodes: int) -> list[dict]:
    """Episode rows 0..total_episodes-1 from meta/episodes/*/*.parquet, by episode_index."""
    files = sorted((Path(root) / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    rows: dict[int, dict] = {}
    for f in files:
        for r in _read_parquet(f).to_pylist():
            if r["episode_index"] < total_episodes:  # later rows are an unfinished commit
                rows[int(r["episode_index"])] = r
    missing = sorted(set(range(total_episodes)) - set(rows))
    if missing:
        raise ValueError(f"{root}: meta/episodes has no row for episodes {missing[:10]}")
    return [rows[i] for i in range(total_episodes)]


class LeRobotDataset:
    """A LeRobot v3.0 dataset on disk. See the module docstring."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.info = load_info(self.root)
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict] = self.info["features"]
        self.tasks = load_tasks(self.root)
        self.episodes = load_episode_rows(self.root, int(self.info["total_episodes"]))
        self.video_keys = fmt.video_keys(self.features)
        # LeRobot's "image" features (PNG bytes in the data parquet) are views too.
        self.image_keys = fmt.image_keys(self.features)
        self.camera_names = [
            k.removeprefix(fmt.IMAGE_PREFIX) for k in [*self.video_keys, *self.image_keys]
        ]
        state = self.features.get(fmt.STATE, {})
        self.has_pose_layout = list(state.get("names") or []) == fmt.POSE_NAMES
        self._tables: dict[tuple[int, int], tuple[pa.Table, np.ndarray]] = {}
        self._verified: set[int] = set()  # episodes whose checksum matched

    def __repr__(self) -> str:
        return (f"LeRobotDataset({str(self.root)!r}, episodes={self.num_episodes}, "
                f"frames={self.num_frames}, fps={self.fps:g}, views={self.camera_names})")  # fmt: skip

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(sum(r["length"] for r in self.episodes))

    @property
    def calibrated_cameras(self) -> list[str]:
        return [c for c in self.camera_names if fmt.intrinsics_key(c) in self.features]

    def _row(self, k: int) -> dict:
        if not 0 <= k < self.num_episodes:
            raise ValueError(f"episode {k} out of range: the dataset has {self.num_episodes}")
        return self.episodes[k]

    def episode_length(self, k: int) -> int:
        return int(self._row(k)["length"])

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """``meta/stats.json``: feature -> {"min", "max", "mean", "std", "count", "q01", ...}."""
        from actionimages.data.stats import stats_from_json

        path = self.root / fmt.STATS_PATH
        if not path.is_file():
            return {}
        try:
            return stats_from_json(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ValueError(f"{path} is not valid statistics JSON ({err})") from err

    def episode_stats(self, k: int) -> dict[str, dict[str, np.ndarray]]:
        """Episode ``k``'s own statistics (its ``stats/<feature>/<stat>`` columns)."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for col, value in self._row(k).items():
            if col.startswith("stats/") and value is not None:
                feature, name = col[len("stats/") :].rsplit("/", 1)
                out.setdefault(feature, {})[name] = np.asarray(value, dtype=np.float64)
        return out

    def _table(self, chunk: int, file: int) -> tuple[pa.Table, np.ndarray]:
        """A data file and its episode_index column, cached (a few files at a time)."""
        if (chunk, file) not in self._tables:
            path = self.root / self.info["data_path"].format(chunk_index=chunk, file_index=file)
            table = _read_parquet(path)
            if len(self._tables) >= 8:
                self._tables.pop(next(iter(self._tables)))
            self._tables[chunk, file] = (table, table.column("episode_index").to_numpy())
        return self._tables[chunk, file]

    def __getstate__(self) -> dict:
        # DataLoader workers get a copy without the cached tables.
        return {**self.__dict__, "_tables": {}, "_verified": set()}

    def read_columns(self, k: int, frames: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every non-video feature of episode ``k``: name -> (T, ...) array (or (N, ...))."""
        row = self._row(k)
        table, episode_index = self._table(row["data/chunk_index"], row["data/file_index"])
        rows = np.flatnonzero(episode_index == k)  # (T,) row numbers in the file
        if len(rows) != row["length"]:
            raise ValueError(
                f"episode {k}: {len(rows)} frames in its data file, {row['length']} in meta/episodes"
            )
        order = np.argsort(table.column("frame_index").to_numpy()[rows], kind="stable")
        rows = rows[order]
        all_rows = rows
        if frames is not None:
            frames = np.asarray(frames, dtype=np.int64)
            if frames.size and (frames.min() < 0 or frames.max() >= len(rows)):
                raise ValueError(f"frame indices must lie in [0, {len(rows)}) for episode {k}")
            rows = rows[frames]
        part = table.take(pa.array(rows))
        cols = {name: fmt.column_to_numpy(part.column(name)) for name in part.column_names
                if name not in self.image_keys}  # fmt: skip
        if self.has_pose_layout:  # values, not only the file's structure (issue 12)
            from actionimages.data.validate import check_camera_columns, check_pose_columns

            path = self.info["data_path"].format(
                chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
            )
            where = f"{self.root / path}, episode {k}"
            frame_numbers = np.asarray(cols["frame_index"], dtype=np.int64)
            check_pose_columns(cols, where, frame_numbers)
            check_camera_columns(cols, where, frame_numbers)
        # Last, so a value the checks above can name is named; a change they cannot see
        # (a flipped low bit) is caught here.
        if row.get(fmt.CHECKSUM_COLUMN) and k not in self._verified:  # once per episode
            if fmt.episode_checksum(table.take(pa.array(all_rows))) != row[fmt.CHECKSUM_COLUMN]:
                path = self.info["data_path"].format(
                    chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
                )
                raise ValueError(
                    f"{self.root / path}, episode {k}: frame data do not match the checksum "
                    "written with them (the file was changed or corrupted after writing)"
                )
            self._verified.add(k)
        return cols

    def read_video(self, k: int, camera: str, frames: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W, 3) uint8 frames of one view (all frames if ``frames`` is None)."""
        row = self._row(k)
        key = fmt.image_key(camera)
        if key not in self.features:
            raise ValueError(f"no view {camera!r}; the dataset has {self.camera_names}")
        if key in self.image_keys:
            return self._read_images(k, key, frames)
        idx = np.arange(row["length"]) if frames is None else np.asarray(frames, dtype=np.int64)
        if idx.size and (idx.max() >= row["length"] or idx.min() < 0):
            raise ValueError(f"frame indices must lie in [0, {row['length']}) for episode {k}")
        path = self.root / self.info["video_path"].format(
            video_key=key,
            chunk_index=row[f"videos/{key}/chunk_index"],
            file_index=row[f"videos/{key}/file_index"],
        )
        return decode_frames(path, float(row[f"videos/{key}/from_timestamp"]), idx, self.fps)

    def _read_images(self, k: int, key: str, frames: np.ndarray | None) -> np.ndarray:
        """(N, H, W, 3) uint8 frames of an image feature: encoded bytes in the data parquet."""
        import io

        from PIL import Image

        row = self._row(k)
        table, episode_index = self._table(row["data/chunk_index"], row["data/file_index"])
        rows = np.flatnonzero(episode_index == k)
        rows = rows[np.argsort(table.column("frame_index").to_numpy()[rows], kind="stable")]
        if frames is not None:
            frames = np.asarray(frames, dtype=np.int64)
            if frames.size and (frames.min() < 0 or frames.max() >= len(rows)):
                raise ValueError(f"frame indices must lie in [0, {len(rows)}) for episode {k}")
            rows = rows[frames]
        cells = table.column(key).take(pa.array(rows)).to_pylist()
        out = []
        for i, cell in zip(rows, cells, strict=True):
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            if not data:
                raise ValueError(f"{self.root}: episode {k}, row {i}, {key}: no image bytes "
                                 "(images stored only as paths are not supported)")  # fmt: skip
            try:
                out.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
            except OSError as err:
                raise ValueError(
                    f"{self.root}: episode {k}, row {i}, {key}: corrupt image ({err})"
                ) from err
        return (
            np.stack(out) if out else np.zeros((0, *self.features[key]["shape"][:2], 3), np.uint8)
        )

    def read_cameras(
        self, k: int, frames: np.ndarray | None = None, columns: dict | None = None
    ) -> dict[str, list[Camera]]:
        """Calibrated views of episode ``k``: camera name -> list of N cameras."""
        cols = columns if columns is not None else self.read_columns(k, frames)
        out = {}
        for cam in self.calibrated_cameras:
            h, w = self.features[fmt.image_key(cam)]["shape"][:2]
            cams = fmt.cameras_from_columns(cols, cam, h, w)
            if cams is not None:
                out[cam] = cams
        return out

    def read_episode(
        self,
        k: int,
        cameras: list[str] | None = None,
        frames: np.ndarray | None = None,
        load_video: bool = True,
    ) -> Episode:
        """Episode ``k`` (or the given frames of it) as an :class:`Episode`.

        Args:
            cameras: views to decode (default all); cameras of other views are dropped.
            frames: (N,) frame indices to read (default all T).
            load_video: False returns an Episode without images (poses and cameras only).
        """
        row = self._row(k)
        cols = self.read_columns(k, frames)
        N = len(cols["frame_index"])
        views = self.camera_names if cameras is None else list(cameras)
        images = {cam: self.read_video(k, cam, frames) for cam in views} if load_video else {}
        cams = {c: v for c, v in self.read_cameras(k, columns=cols).items() if c in views}
        if self.has_pose_layout and fmt.STATE in cols:
            position, rotation, gripper = fmt.state_to_pose(cols[fmt.STATE])
        else:
            position, rotation, gripper = (
                np.full((N, 3), np.nan),
                np.full((N, 3, 3), np.nan),
                np.full(N, np.nan),
            )
        extra = {}
        if row.get(fmt.EXTRA_COLUMN):
            extra = json.loads(row[fmt.EXTRA_COLUMN])
        if not self.has_pose_layout:
            extra["columns"] = cols
        tasks = row.get("tasks") or []
        instruction = tasks[0] if tasks else (self.tasks[int(cols["task_index"][0])] if N else "")
        return Episode(
            position=position,
            rotation=rotation,
            gripper=gripper,
            instruction=instruction,
            images=images,
            cameras=cams,
            fps=self.fps,
            task=row.get(fmt.TASK_NAME_COLUMN) or "",
            extra=extra,
        )
