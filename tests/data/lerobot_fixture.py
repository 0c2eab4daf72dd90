"""Build small datasets laid out the way LeRobot's own recorder writes v3.0 (no lerobot).

Written independently of ``actionimages.data.lerobot_writer`` so that reading them tests
compatibility, not self-consistency. What LeRobot does and this mimics:
- float32 features with ``names`` given as lists or {"axes": [...]} dicts, tuple shapes;
- 1-D features as variable-length list columns (what older ``datasets`` writes);
- all episodes in one data file and, per view, one MP4 (AV1, yuv420p, key frame every
  2 frames) with the episodes back to back; episode rows hold from/to timestamps;
- ``meta/tasks.parquet`` written by pandas with ``task`` as the index;
- per-episode ``stats/<feature>/<stat>`` columns including quantiles q01..q99.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


def _stats(x: np.ndarray, image: bool = False) -> dict:
    x = x.reshape(len(x), -1).astype(np.float64) if not image else x
    if image:  # (T, H, W, 3) uint8 -> per channel, (3, 1, 1)
        x = x.reshape(-1, 3) / 255.0
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0),
           **{k: np.quantile(x, q, axis=0) for k, q in QUANTILES.items()}}  # fmt: skip
    if image:
        out = {k: v.reshape(3, 1, 1) for k, v in out.items()}
    out["count"] = np.array([len(x) if not image else len(x) // 1])
    return {k: np.asarray(v).tolist() for k, v in out.items()}


def _encode(path: Path, frames: np.ndarray, fps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libsvtav1", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": "30", "g": "2", "preset": "12"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def write_lerobot_style_dataset(
    root: Path, fps: int, features: dict, episodes: list[dict], robot_type: str = "test"
) -> None:
    """``episodes``: list of {"task": str, "columns": {key: (T, ...)}, "videos": {key: frames}}."""
    root = Path(root)
    tasks = list(dict.fromkeys(e["task"] for e in episodes))
    data: dict[str, list] = {}
    rows = []
    start = 0
    t0 = 0.0
    for k, ep in enumerate(episodes):
        T = len(next(iter(ep["videos"].values())))
        cols = dict(ep["columns"])
        cols.update(timestamp=np.arange(T, dtype=np.float32) / fps, frame_index=np.arange(T),
                    episode_index=np.full(T, k), index=np.arange(start, start + T),
                    task_index=np.full(T, tasks.index(ep["task"])))  # fmt: skip
        for key, value in cols.items():
            data.setdefault(key, []).extend(list(value))
        row = {"episode_index": k, "tasks": [ep["task"]], "length": T,
               "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": start, "dataset_to_index": start + T}  # fmt: skip
        for key in ep["videos"]:
            row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                        f"videos/{key}/from_timestamp": t0,
                        f"videos/{key}/to_timestamp": t0 + T / fps})  # fmt: skip
        for key, value in cols.items():
            if key in features and features[key]["dtype"] not in ("string", "bool"):
                for s, v in _stats(np.asarray(value)).items():
                    row[f"stats/{key}/{s}"] = v
        for key, frames in ep["videos"].items():
            for s, v in _stats(frames, image=True).items():
                row[f"stats/{key}/{s}"] = v
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
        rows.append(row)
        start += T
        t0 += T / fps

    arrays = {}
    for key, values in data.items():
        ft = features.get(key, {"dtype": "int64", "shape": (1,)})
        dtype = {"string": pa.string(), "bool": pa.bool_()}.get(ft["dtype"]) or pa.from_numpy_dtype(
            np.dtype(ft["dtype"])
        )
        if tuple(ft["shape"]) == (1,):
            arrays[key] = pa.array([np.asarray(v).reshape(-1)[0].item() for v in values], dtype)
        else:
            arrays[key] = pa.array([np.asarray(v).tolist() for v in values], pa.list_(dtype))
    (root / "data/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(arrays), root / "data/chunk-000/file-000.parquet")
    for key in episodes[0]["videos"]:
        frames = np.concatenate([e["videos"][key] for e in episodes])
        _encode(root / f"videos/{key}/chunk-000/file-000.mp4", frames, fps)
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "meta/episodes/chunk-000/file-000.parquet")

    # pandas.DataFrame({"task_index": ...}, index=Index(tasks, name="task")).to_parquet()
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
         "numpy_type": "int64", "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
         "metadata": None}], "pandas_version": "2.2.3"}  # fmt: skip
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}),
                   root / "meta/tasks.parquet")  # fmt: skip

    full = {}
    for key, ft in features.items():
        ft = {**ft, "shape": list(ft["shape"])}
        if ft["dtype"] == "video":
            h, w = ft["shape"][:2]
            ft["info"] = {"video.height": h, "video.width": w, "video.codec": "av1",
                          "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                          "video.fps": fps, "video.channels": 3, "has_audio": False}  # fmt: skip
        full[key] = ft
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        full[key] = {
            "dtype": "float32" if key == "timestamp" else "int64",
            "shape": [1],
            "names": None,
        }
    info = {"codebase_version": "v3.0", "robot_type": robot_type, "total_episodes": len(episodes),
            "total_frames": start, "total_tasks": len(tasks), "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": full}  # fmt: skip
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/stats.json").write_text(json.dumps({}))
