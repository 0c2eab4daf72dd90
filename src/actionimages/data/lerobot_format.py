"""The LeRobot v3.0 on-disk layout, and how an :class:`Episode` maps onto its features.

Layout (all paths relative to the dataset root)::

    meta/info.json                      codebase_version "v3.0", fps, features, path templates
    meta/stats.json                     per feature: min, max, mean, std, count
    meta/tasks.parquet                  task (the instruction, pandas index) -> task_index
    meta/episodes/chunk-XXX/file-YYY.parquet   one row per episode (see below)
    data/chunk-XXX/file-YYY.parquet     one row per frame, many episodes per file
    videos/<video_key>/chunk-XXX/file-YYY.mp4  many episodes per file, back to back

Per-frame features written by this package (``names`` are stored in info.json):

    observation.state   (8,) float64  [x, y, z, qx, qy, qz, qw, gripper] end-effector pose
                        in the world frame (metres, SciPy xyzw quaternion with w >= 0) and
                        openness in [0, 1], 1 = open.
    action              (8,) float64  same layout: the pose and gripper commanded for the
                        NEXT frame, i.e. observation.state of frame t + 1 (the last frame
                        repeats its own state).
    observation.images.<cam>   video  (H, W, 3)
    observation.cameras.<cam>.intrinsics       (9,)  float64  K, row-major, OpenCV
    observation.cameras.<cam>.world_to_camera  (16,) float64  [R|t; 0 0 0 1], row-major
                        (SPEC convention). Per frame so a wrist camera can move; all NaN
                        in an episode that has no calibration for that view.
    timestamp (float32), frame_index, episode_index, index, task_index (int64)

Episode rows carry LeRobot's columns (episode_index, tasks, length, data/*, videos/*,
dataset_from_index, dataset_to_index, meta/episodes/*, stats/*) plus two of ours:
``actionimages/task`` (short task name) and ``actionimages/extra`` (JSON).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from actionimages.data.episode import Episode
from actionimages.geometry.camera import Camera
from actionimages.geometry.rotations import matrix_to_quat_xyzw, quat_xyzw_to_matrix

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"

STATE = "observation.state"
ACTION = "action"
IMAGE_PREFIX = "observation.images."
CAMERA_PREFIX = "observation.cameras."
POSE_NAMES = ["x", "y", "z", "qx", "qy", "qz", "qw", "gripper"]
K_NAMES = [f"k{i}{j}" for i in range(3) for j in range(3)]
E_NAMES = [f"e{i}{j}" for i in range(4) for j in range(4)]
TASK_NAME_COLUMN = "actionimages/task"
EXTRA_COLUMN = "actionimages/extra"
# Per-episode content checksum of the frame table (our own column, as the two above; a
# dataset LeRobot wrote has none and is read unchecked).
CHECKSUM_COLUMN = "actionimages/sha256"

INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def image_key(camera: str) -> str:
    return IMAGE_PREFIX + camera


def intrinsics_key(camera: str) -> str:
    return f"{CAMERA_PREFIX}{camera}.intrinsics"


def extrinsics_key(camera: str) -> str:
    return f"{CAMERA_PREFIX}{camera}.world_to_camera"


def build_features(image_sizes: dict[str, tuple[int, int]], calibrated: bool) -> dict[str, dict]:
    """The ``features`` dict of info.json for views ``{cam: (H, W)}``."""
    pose = {"dtype": "float64", "shape": [8], "names": list(POSE_NAMES)}
    features: dict[str, dict] = {STATE: dict(pose), ACTION: {**pose, "names": list(POSE_NAMES)}}
    for cam, (h, w) in image_sizes.items():
        features[image_key(cam)] = {
            "dtype": "video",
            "shape": [int(h), int(w), 3],
            "names": ["height", "width", "channels"],
            "info": None,  # filled from the first encoded file (see probe_video)
        }
    if calibrated:
        for cam in image_sizes:
            features[intrinsics_key(cam)] = {"dtype": "float64", "shape": [9], "names": K_NAMES}
            features[extrinsics_key(cam)] = {"dtype": "float64", "shape": [16], "names": E_NAMES}
    features.update({k: dict(v) for k, v in INDEX_FEATURES.items()})
    return features


def video_keys(features: dict[str, dict]) -> list[str]:
    return [k for k, f in features.items() if f.get("dtype") == "video"]


def image_keys(features: dict[str, dict]) -> list[str]:
    """Views stored in the data parquet as encoded images (LeRobot ``dtype: "image"``)."""
    return [k for k, f in features.items() if f.get("dtype") == "image"]


def arrow_type(feature: dict) -> pa.DataType:
    """Arrow column type of a non-video feature (shape [1] -> scalar, (n,) -> fixed list)."""
    dtype = {"bool": "bool_", "string": "string"}.get(feature["dtype"], feature["dtype"])
    base = getattr(pa, dtype)()
    shape = list(feature["shape"])
    if shape == [1]:
        return base
    if len(shape) != 1:
        raise ValueError(f"only scalar and 1-D features are supported, got shape {shape}")
    return pa.list_(base, shape[0])


def data_schema(features: dict[str, dict]) -> pa.Schema:
    return pa.schema([(k, arrow_type(f)) for k, f in features.items() if f["dtype"] != "video"])


def column_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A parquet column -> (N,) or (N, n) array (works for list and fixed-size-list columns)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if (
        pa.types.is_list(column.type)
        or pa.types.is_fixed_size_list(column.type)
        or (pa.types.is_large_list(column.type))
    ):
        n = len(column)
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(n, -1) if n else flat.reshape(0, 0)  # (N * n,) -> (N, n)
    return column.to_numpy(zero_copy_only=False)


# --- Episode <-> columns --------------------------------------------------------------


def pose_state(position: np.ndarray, rotation: np.ndarray, gripper: np.ndarray) -> np.ndarray:
    """(T, 3), (T, 3, 3), (T,) -> (T, 8) [x, y, z, qx, qy, qz, qw, g]."""
    quat = matrix_to_quat_xyzw(np.asarray(rotation, dtype=np.float64))  # (T, 4), w >= 0
    return np.concatenate([position, quat, np.asarray(gripper)[:, None]], axis=1)


def state_to_pose(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 8) -> position (T, 3), rotation (T, 3, 3), gripper (T,). NaN rows stay NaN."""
    state = np.asarray(state, dtype=np.float64)
    quat = state[:, 3:7]
    ok = np.isfinite(quat).all(axis=1) & (np.linalg.norm(np.nan_to_num(quat), axis=1) > 1e-12)
    rotation = np.full((len(state), 3, 3), np.nan)
    if ok.any():
        rotation[ok] = quat_xyzw_to_matrix(quat[ok])
    return state[:, :3].copy(), rotation, state[:, 7].copy()


def episode_columns(episode: Episode, features: dict[str, dict]) -> dict[str, np.ndarray]:
    """Per-frame arrays for every non-video, non-index feature of ``features``."""
    T = episode.num_frames
    state = pose_state(episode.position, episode.rotation, episode.gripper)  # (T, 8)
    action = np.concatenate([state[1:], state[-1:]])  # target = next frame's state
    cols = {STATE: state, ACTION: action}
    for key, feature in features.items():
        if not key.startswith(CAMERA_PREFIX):
            continue
        cam, kind = key[len(CAMERA_PREFIX) :].rsplit(".", 1)
        cams = episode.cameras.get(cam)
        if cams is None:
            cols[key] = np.full((T, feature["shape"][0]), np.nan)
        elif kind == "intrinsics":
            cols[key] = np.stack([c.K for c in cams]).reshape(T, 9)  # (T, 3, 3) -> (T, 9)
        else:
            cols[key] = np.stack([c.world_to_camera for c in cams]).reshape(T, 16)  # (T, 16)
    return cols


def cameras_from_columns(
    columns: dict[str, np.ndarray], camera: str, height: int, width: int
) -> list[Camera] | None:
    """Rebuild a view's T cameras from its two columns; None if absent or all NaN."""
    k, e = columns.get(intrinsics_key(camera)), columns.get(extrinsics_key(camera))
    if k is None or e is None or not (np.isfinite(k).all() and np.isfinite(e).all()):
        return None
    K = k.reshape(-1, 3, 3)  # (T, 9) -> (T, 3, 3)
    E = e.reshape(-1, 4, 4)  # (T, 16) -> (T, 4, 4)
    # Static cameras repeat one matrix: build each distinct camera once.
    cams: list[Camera] = []
    for t in range(len(K)):
        if cams and np.array_equal(K[t], K[t - 1]) and np.array_equal(E[t], E[t - 1]):
            cams.append(cams[-1])
        else:
            cams.append(Camera(K[t], E[t], height, width))
    return cams


def to_json(value: Any) -> str:
    """JSON for ``Episode.extra`` (arrays become lists; anything else unknown becomes str)."""

    def default(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, np.generic):
            return x.item()
        return str(x)

    return json.dumps(value, default=default)


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as pandas writes a frame indexed by ``task``.

    LeRobot reads it with ``pandas.read_parquet`` and looks tasks up by the index, so the
    pandas metadata naming ``task`` as the index column is part of the format.
    """
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode",
             "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }  # fmt: skip
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def episode_checksum(table: pa.Table) -> str:
    """SHA-256 of one episode's frame table: every column's name, dtype, shape and bytes,
    rows in frame order, columns sorted by name (so file layout and row position do not
    matter, values do)."""
    import hashlib

    order = np.argsort(table.column("frame_index").to_numpy(), kind="stable")
    table = table.take(pa.array(order))
    h = hashlib.sha256()
    for name in sorted(table.column_names):
        if name == "index":  # the global row number, assigned by the file's position
            continue
        value = np.ascontiguousarray(column_to_numpy(table.column(name)))
        h.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        h.update(value.tobytes())
    return h.hexdigest()
