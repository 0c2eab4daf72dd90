"""Reading RLBench demonstration folders (the layout RLBench's dataset generator writes).

    <task>/all_variations/episodes/episode<k>/
        low_dim_obs.pkl              pickled rlbench.demo.Demo (list of Observation)
        variation_descriptions.pkl   list of instructions
        variation_number.pkl         int
        <cam>_rgb/<i>.png            per camera, per frame

Conventions converted here (SPEC section 1):
- cameras: RLBench stores camera-to-world extrinsics and intrinsics with NEGATIVE focal
  lengths (PyRep). Flipping the camera's x and y axes turns that into OpenCV:
  ``world_to_camera = diag(-1, -1, 1, 1) @ inv(E)`` and ``K = K_rlbench @ diag(-1, -1, 1)``
  give identical pixels, now with positive focal lengths.
- poses: ``gripper_pose`` = [x, y, z, qx, qy, qz, qw] of the gripper tip, whose z axis is
  the approach direction; quaternion xyzw -> rotation matrix.
- gripper: ``gripper_open`` is already 1 = open.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from actionimages.data.episode import Episode
from actionimages.data.safe_pickle import PlainRecord, safe_load
from actionimages.geometry.camera import Camera
from actionimages.geometry.rotations import nearest_rotation, quat_xyzw_to_matrix

RLBENCH_CAMERAS = ("front", "left_shoulder", "right_shoulder", "overhead", "wrist")
RLBENCH_FPS = 20.0  # RLBench steps its simulation at 0.05 s per recorded observation


class RLBenchDemo(PlainRecord):
    """Plain-data stand-in for ``rlbench.demo.Demo``."""


class RLBenchObservation(PlainRecord):
    """Plain-data stand-in for ``rlbench.backend.observation.Observation``."""


ALLOWED = {
    ("rlbench.demo", "Demo"): RLBenchDemo,
    ("rlbench.backend.observation", "Observation"): RLBenchObservation,
}

_FLIP_XY = np.diag([-1.0, -1.0, 1.0, 1.0])


def rlbench_camera(
    extrinsics: np.ndarray, intrinsics: np.ndarray, height: int, width: int
) -> Camera:
    """Convert one RLBench/PyRep camera (cam-to-world E, negative-focal K) to OpenCV."""
    E = np.asarray(extrinsics, dtype=np.float64)
    K = np.asarray(intrinsics, dtype=np.float64)
    if E.shape != (4, 4) or K.shape != (3, 3):
        raise ValueError(
            f"RLBench camera needs 4x4 extrinsics and 3x3 intrinsics, got {E.shape}, {K.shape}"
        )
    R = nearest_rotation(E[:3, :3])  # stored in float32; re-orthonormalise
    w2c = np.eye(4)
    w2c[:3, :3] = R.T
    w2c[:3, 3] = -R.T @ E[:3, 3]
    return Camera(K @ np.diag([-1.0, -1.0, 1.0]), _FLIP_XY @ w2c, height, width)


def find_episodes(root: str | Path) -> list[Path]:
    """Episode folders under ``root`` (an episode, an ``episodes`` folder or a task folder)."""
    root = Path(root)
    if (root / "low_dim_obs.pkl").is_file():
        return [root]
    found = sorted(p.parent for p in root.rglob("low_dim_obs.pkl"))
    if not found:
        raise FileNotFoundError(f"no RLBench episode (a folder with low_dim_obs.pkl) under {root}")
    return found


def _load_png_stack(folder: Path, n: int) -> np.ndarray:
    frames = []
    for i in range(n):
        f = folder / f"{i}.png"
        if not f.is_file():
            raise FileNotFoundError(f"missing frame {f} (expected {n} frames in {folder})")
        with Image.open(f) as im:
            frames.append(np.asarray(im.convert("RGB")))
    return np.stack(frames)  # (T, H, W, 3)


def read_rlbench_episode(path: str | Path, cameras: tuple[str, ...] | None = None) -> Episode:
    """Read one RLBench episode folder into an :class:`Episode` (SPEC conventions).

    Args:
        path: the ``episode<k>`` folder.
        cameras: which cameras to load (default: every ``<cam>_rgb`` folder present).

    Returns:
        Episode with ``.position (T, 3)``, ``.rotation (T, 3, 3)``, ``.gripper (T,)``,
        ``.instruction``, ``.images[cam] (T, H, W, 3) uint8`` and ``.cameras[cam]``
        (a list of T cameras; the wrist camera moves).
    """
    path = Path(path)
    demo = safe_load(path / "low_dim_obs.pkl", ALLOWED)
    observations = getattr(demo, "_observations", None)
    if not isinstance(observations, list) or not observations:
        raise ValueError(f"{path / 'low_dim_obs.pkl'} holds no observations")
    T = len(observations)
    descriptions = (
        safe_load(path / "variation_descriptions.pkl")
        if (path / "variation_descriptions.pkl").is_file()
        else []
    )
    variation = (
        safe_load(path / "variation_number.pkl")
        if (path / "variation_number.pkl").is_file()
        else None
    )

    pose = np.stack([np.asarray(o.gripper_pose, dtype=np.float64) for o in observations])  # (T, 7)
    if pose.shape != (T, 7) or not np.isfinite(pose).all():
        raise ValueError(f"{path}: gripper_pose must be finite (T, 7) [x, y, z, qx, qy, qz, qw]")
    gripper = np.array([float(o.gripper_open) for o in observations])

    names = cameras or tuple(c for c in RLBENCH_CAMERAS if (path / f"{c}_rgb").is_dir())
    if not names:
        raise FileNotFoundError(f"{path}: no <camera>_rgb image folders")
    images, cams = {}, {}
    for name in names:
        images[name] = _load_png_stack(path / f"{name}_rgb", T)
        H, W = images[name].shape[1:3]
        misc = [o.misc for o in observations]
        key_e, key_k = f"{name}_camera_extrinsics", f"{name}_camera_intrinsics"
        if key_e not in misc[0]:
            raise ValueError(f"{path}: observation.misc has no {key_e}; cannot calibrate {name}")
        cams[name] = [rlbench_camera(m[key_e], m[key_k], H, W) for m in misc]

    return Episode(
        position=pose[:, :3],
        rotation=quat_xyzw_to_matrix(pose[:, 3:]),
        gripper=gripper,
        instruction=str(descriptions[0]) if descriptions else "",
        images=images,
        cameras=cams,
        fps=RLBENCH_FPS,
        task=path.parents[2].name if len(path.parents) > 2 else "",
        extra={"variation": variation, "descriptions": list(descriptions), "source": str(path)},
    )


def import_rlbench(
    src: str | Path,
    dst: str | Path,
    cameras: tuple[str, ...] | None = None,
    config=None,
    limit: int | None = None,
    log=print,
) -> int:
    """Convert every RLBench episode under ``src`` into the LeRobot v3 dataset ``dst``.

    Episodes already in ``dst`` (same source folder, recorded in the episode's extra)
    are skipped, so an interrupted import resumes where it stopped. Returns the number
    of episodes added.
    """
    from actionimages.data.lerobot import LeRobotDataset, LeRobotWriter

    folders = [f.resolve() for f in find_episodes(src)][:limit]
    done: set[str] = set()
    if (Path(dst) / "meta" / "info.json").is_file():
        ds = LeRobotDataset(dst)
        done = {json.loads(r.get("actionimages/extra") or "{}").get("source") for r in ds.episodes}
    added = 0
    with LeRobotWriter(dst, fps=RLBENCH_FPS, robot_type="panda", config=config) as writer:
        for folder in folders:
            if str(folder) in done:
                log(f"skip {folder} (already in {dst})")
                continue
            episode = read_rlbench_episode(folder, cameras)
            k = writer.add_episode(episode)
            added += 1
            log(f"episode {k}: {folder} ({episode.num_frames} frames, {episode.instruction!r})")
    return added
