"""Record the ``tests/data/lerobot_recorded/`` fixture with the real ``lerobot`` package.

Our LeRobot v3 reader (``actionimages.data.lerobot_reader``) must keep reading datasets
written by LeRobot itself. CI cannot install ``lerobot``, so this script records two tiny
datasets with LeRobot's own recorder (``LeRobotDataset.create`` -> ``add_frame`` ->
``save_episode`` -> ``finalize``) and they are committed; the test
``tests/data/test_lerobot_recorded_fixture.py`` reads them with our reader and checks the
values against the formulas below (it re-implements them, so keep the two in step).

Datasets (2 episodes each, 10 fps, every value a closed-form function of episode and
frame, so nothing depends on a random generator):

``posed/``   this package's layout, recorded as a LeRobot user would add extra features:
             ``observation.state`` / ``action`` float32 (8,) [x, y, z, qx, qy, qz, qw,
             gripper] (action = next frame's state, the last repeats), video views
             ``front`` and ``left_shoulder`` (48 x 64, AV1), and per view
             ``observation.cameras.<cam>.intrinsics`` (9,) / ``.world_to_camera`` (16,)
             float64, as our writer stores calibration.
``plain/``   a typical LeRobot arm recording: 6 joint positions (float32, names
             ``shoulder_pan.pos`` ...), one video view ``front`` (48 x 64) and one
             ``image`` view ``wrist`` (32 x 40, PNG bytes in the data parquet), no
             calibration. Our reader returns such episodes without poses and with the raw
             columns in ``Episode.extra["columns"]``.

Run (not part of the package, never imported by it)::

    python3.11 -m venv /tmp/lerobot-venv
    /tmp/lerobot-venv/bin/pip install --no-deps lerobot==0.4.4
    /tmp/lerobot-venv/bin/pip install torch==2.13.0   # the CPU build
    /tmp/lerobot-venv/bin/pip install "datasets>=4,<5" "huggingface-hub>=0.34.2,<0.36" \
        "av>=15,<16" pandas pyarrow numpy "packaging>=24.2,<26" "jsonlines>=4,<5" \
        "einops>=0.8,<0.9" draccus==0.10.0 "deepdiff>=7.0.1,<9" "termcolor>=2.4,<4" \
        "imageio>=2.34,<3" pillow "accelerate>=1.10,<2"
    /tmp/lerobot-venv/bin/python scripts/make_lerobot_fixture.py [OUT_DIR]

OUT_DIR defaults to ``tests/data/lerobot_recorded``; it is replaced whole.

torchvision stub: ``lerobot.datasets`` imports ``torchvision`` at module level, but the
recorder never calls it (only the read path does: ``transforms.ToTensor`` in
``hf_transform_to_torch`` and ``torchvision.io`` video decoding). The torchvision wheel
on PyPI links against CUDA torch libraries and does not load with the CPU torch build,
so when ``import torchvision`` fails this script puts a stub module into
``sys.modules`` before importing lerobot. Every attribute of the stub is a function that
raises when called, so it cannot change what is written; it only lets the import succeed
(``datasets`` then counts torchvision as present, which matters only for decoding). With
a working torchvision installed the real one is used. ``RECORDED_WITH.json`` in the
output says which was used.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

FPS = 10
LENGTHS = (10, 8)  # frames of episode 0 and 1
TASKS = ("put the red block in the bowl", "open the top drawer")
VIDEO_HW = (48, 64)  # non-square, so a swapped height and width shows
WRIST_HW = (32, 40)
POSE_NAMES = ["x", "y", "z", "qx", "qy", "qz", "qw", "gripper"]
K_NAMES = [f"k{i}{j}" for i in range(3) for j in range(3)]
E_NAMES = [f"e{i}{j}" for i in range(4) for j in range(4)]
JOINT_NAMES = [
    "shoulder_pan.pos",
    "shoulder_lift.pos",
    "elbow_flex.pos",
    "wrist_flex.pos",
    "wrist_roll.pos",
    "gripper.pos",
]
POSED_CAMERAS = ("front", "left_shoulder")
CAMERA_EYES = {"front": (1.2, 0.0, 0.8), "left_shoulder": (0.3, 0.9, 0.7)}
CAMERA_TARGET = (0.4, 0.0, 0.2)
CAMERA_COLOURS = {"front": (230, 60, 40), "left_shoulder": (40, 200, 90), "wrist": (50, 80, 230)}


# --- the deterministic content (the test re-implements these) ------------------------


def pose_state(episode: int, T: int) -> np.ndarray:
    """(T, 8) float32 [x, y, z, qx, qy, qz, qw, gripper], unit quaternion with w > 0."""
    t = np.arange(T, dtype=np.float64)
    pos = np.stack(
        [0.35 + 0.02 * t, -0.10 + 0.05 * episode + 0.01 * np.sin(t), 0.25 - 0.01 * t], axis=1
    )
    angle = 2.5 - 0.1 * t - 0.2 * episode  # in (0, pi): w = cos(angle / 2) > 0
    axis = np.stack([np.ones(T), 0.3 * np.cos(t + episode), 0.2 * t - 0.5], axis=1)
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    quat = np.concatenate([axis * np.sin(angle / 2)[:, None], np.cos(angle / 2)[:, None]], axis=1)
    gripper = 0.5 + 0.5 * np.cos(np.pi * t / (T - 1))  # 1 (open) -> 0 (closed)
    return np.concatenate([pos, quat, gripper[:, None]], axis=1).astype(np.float32)


def next_state_action(state: np.ndarray) -> np.ndarray:
    """Our action convention: the state of the next frame; the last frame repeats its own."""
    return np.concatenate([state[1:], state[-1:]])


def joint_state(episode: int, T: int) -> np.ndarray:
    """(T, 6) float32 joint positions (degrees, gripper in percent)."""
    t = np.arange(T, dtype=np.float64)[:, None]
    j = np.arange(6, dtype=np.float64)[None, :]
    return (10.0 * (j + 1) * np.sin(0.3 * t + 0.5 * j + episode) + 5.0 * episode).astype(np.float32)


def joint_action(episode: int, T: int) -> np.ndarray:
    return (joint_state(episode, T) + np.float32(0.5)).astype(np.float32)


def intrinsics(height: int, width: int) -> np.ndarray:
    """(3, 3) OpenCV K."""
    return np.array([[50.0, 0.0, width / 2], [0.0, 50.0, height / 2], [0.0, 0.0, 1.0]])


def world_to_camera(camera: str) -> np.ndarray:
    """(4, 4) [R t; 0 0 0 1] of a camera at CAMERA_EYES[camera] looking at CAMERA_TARGET."""
    eye, target = np.array(CAMERA_EYES[camera]), np.array(CAMERA_TARGET)
    z = (target - eye) / np.linalg.norm(target - eye)  # optical axis
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)  # image right
    y = np.cross(z, x)  # image down
    E = np.eye(4)
    E[:3, :3] = np.stack([x, y, z])  # rows: camera axes in world coordinates
    E[:3, 3] = -E[:3, :3] @ eye
    return E


def frame_image(camera: str, episode: int, t: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: a smooth gradient with a bright square that moves with t."""
    rows = np.linspace(0.0, 1.0, height)[:, None]
    cols = np.linspace(0.0, 1.0, width)[None, :]
    img = np.empty((height, width, 3))
    img[..., 0] = 40 + 60 * cols + 20 * episode
    img[..., 1] = 40 + 60 * rows
    img[..., 2] = 90 - 30 * cols
    side = height // 4
    top = (height - side) // 2
    left = 2 + (5 * t) % (width - side - 2)
    img[top : top + side, left : left + side] = CAMERA_COLOURS[camera]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# --- recording with LeRobot -------------------------------------------------------------


def _stub_torchvision() -> None:
    """Let ``import torchvision`` succeed without a working torchvision (see docstring)."""
    try:
        importlib.import_module("torchvision")
        return
    except Exception:  # not installed, or a CUDA build that cannot load here
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    def unavailable(*_args, **_kwargs):
        raise RuntimeError("torchvision stub: not available while recording the fixture")

    class Unavailable(types.ModuleType):
        def __getattr__(self, name: str):
            if name.startswith("__"):
                raise AttributeError(name)
            return unavailable

    root = Unavailable("torchvision")
    transforms = Unavailable("torchvision.transforms")
    for module in (root, transforms):
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    root.transforms = transforms
    root.__stub__ = True
    sys.modules["torchvision"] = root
    sys.modules["torchvision.transforms"] = transforms
    print("note: torchvision is stubbed (the recorder never calls it)", file=sys.stderr)


def _record(root: Path, repo_id: str, features: dict, episodes: list[list[dict]]) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset.create(
        repo_id=repo_id,
        fps=FPS,
        features=features,
        root=root,
        robot_type="fixture_arm",
        use_videos=True,
        encoder_threads=1,  # modest CPU; LeRobot's codec defaults otherwise (AV1, g=2, crf=30)
    )
    for frames in episodes:
        for frame in frames:
            ds.add_frame(frame)
        ds.save_episode(parallel_encoding=False)
    ds.finalize()


def record_posed(root: Path) -> None:
    h, w = VIDEO_HW
    features = {
        "observation.state": {"dtype": "float32", "shape": (8,), "names": list(POSE_NAMES)},
        "action": {"dtype": "float32", "shape": (8,), "names": list(POSE_NAMES)},
    }
    for cam in POSED_CAMERAS:
        features[f"observation.images.{cam}"] = {
            "dtype": "video",
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        }
    for cam in POSED_CAMERAS:
        features[f"observation.cameras.{cam}.intrinsics"] = {
            "dtype": "float64",
            "shape": (9,),
            "names": list(K_NAMES),
        }
        features[f"observation.cameras.{cam}.world_to_camera"] = {
            "dtype": "float64",
            "shape": (16,),
            "names": list(E_NAMES),
        }
    episodes = []
    for k, T in enumerate(LENGTHS):
        state = pose_state(k, T)
        action = next_state_action(state)
        frames = []
        for t in range(T):
            frame = {"observation.state": state[t], "action": action[t], "task": TASKS[k]}
            for cam in POSED_CAMERAS:
                frame[f"observation.images.{cam}"] = frame_image(cam, k, t, h, w)
                frame[f"observation.cameras.{cam}.intrinsics"] = intrinsics(h, w).reshape(9)
                frame[f"observation.cameras.{cam}.world_to_camera"] = world_to_camera(cam).reshape(
                    16
                )
            frames.append(frame)
        episodes.append(frames)
    _record(root, "actionimages/lerobot_recorded_posed", features, episodes)


def record_plain(root: Path) -> None:
    (h, w), (wh, ww) = VIDEO_HW, WRIST_HW
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": list(JOINT_NAMES)},
        "action": {"dtype": "float32", "shape": (6,), "names": list(JOINT_NAMES)},
        "observation.images.front": {
            "dtype": "video",
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.images.wrist": {
            "dtype": "image",
            "shape": (wh, ww, 3),
            "names": ["height", "width", "channels"],
        },
    }
    episodes = []
    for k, T in enumerate(LENGTHS):
        state, action = joint_state(k, T), joint_action(k, T)
        episodes.append(
            [
                {
                    "observation.state": state[t],
                    "action": action[t],
                    "observation.images.front": frame_image("front", k, t, h, w),
                    "observation.images.wrist": frame_image("wrist", k, t, wh, ww),
                    "task": TASKS[k],
                }
                for t in range(T)
            ]
        )
    _record(root, "actionimages/lerobot_recorded_plain", features, episodes)


def versions() -> dict[str, str]:
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("lerobot", "datasets", "pyarrow", "av", "torch", "numpy", "pandas", "pillow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    tv = sys.modules.get("torchvision")
    out["torchvision"] = "stub" if getattr(tv, "__stub__", False) else md.version("torchvision")
    return out


def main(argv: list[str]) -> None:
    out = (
        Path(argv[1])
        if len(argv) > 1
        else Path(__file__).resolve().parents[1] / "tests/data/lerobot_recorded"
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing to fetch; never reach the Hub
    _stub_torchvision()
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        record_posed(staging / "posed")  # LeRobot creates each root itself
        record_plain(staging / "plain")
        (staging / "RECORDED_WITH.json").write_text(json.dumps(versions(), indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staging, out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main(sys.argv)
