"""Training clips: a torch ``Dataset`` over a mixture of LeRobot v3 datasets.

Each item is one clip: a dataset picked by mixture weight, an episode picked uniformly
in it, a window of ``num_frames`` frames at ``fps``, ``num_views`` of the episode's
views (a random subset, as the paper's authors do), resized and cropped to the model
resolution with the cameras' ``K`` updated to match, action images rendered on the fly
by the codec, and Plücker ray maps relative to the first frame of the first view.

    sampler = ClipSampler({"data/rlbench": 0.5, "data/droid": 0.3, "data/bridge": 0.2},
                          ClipConfig.default())
    item = sampler[0]

Item (SPEC layout, channels last; V views, T frames, H x W pixels):

    video      (V, T, H, W, 3)  float, RGB in [-1, 1]
    actions    (V, T, H, W, 3)  float, action images in [-1, 1] (-1 everywhere when absent)
    plucker    (V, T, h, w, 6)  float, ray direction (unit, in [-1, 1]) and moment
                                (metres, not normalised) in the frame of view 0 at
                                frame 0; h, w = H, W / plucker_stride. Every frame holds
                                its view's frame-0 camera: a moving view's future poses
                                would leak the motion to be predicted
    K          (V, T, 3, 3)     float32 intrinsics of the resized/cropped images
    world_to_camera (V, T, 4, 4) float32
    position   (T, 3), rotation (T, 3, 3), gripper (T,)  float32 poses (0 when absent)
    frame_valid (T,) bool       False where the window ran past the episode's end (the
                                last frame is repeated there)
    tasks      (4,) bool        allowed masking tasks, in the order of ``TASKS``
    instruction str;  views  list of V names;  source  (dataset, episode, first frame)

A clip without actions or without calibrated cameras allows only "video_only".
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionimages.clips import (  # noqa: F401  (re-exported: the sampler's settings)
    TASKS,
    ClipConfig,
    resize_crop_cameras,
    resize_frames,
    source_frames_per_clip_frame,
)
from actionimages.data.lerobot_reader import LeRobotDataset
from actionimages.geometry.camera import Camera


class ClipSampler(torch.utils.data.Dataset):
    """Clips from a weighted mixture of datasets (see the module docstring).

    Args:
        sources: {dataset folder: weight} or a sequence of folders (equal weights).
        config: :class:`ClipConfig`.
        max_episodes: draw from the first this many episodes of each dataset only (the
            same training set from a dataset recorded longer); None: all of them.
    """

    def __init__(self, sources: Mapping[str | Path, float] | Sequence[str | Path], config=None,
                 max_episodes: int | None = None):  # fmt: skip
        self.config = config or ClipConfig.default()
        if not isinstance(sources, Mapping):
            sources = {s: 1.0 for s in sources}
        if not sources:
            raise ValueError("need at least one dataset")
        self.datasets = [s if isinstance(s, LeRobotDataset) else LeRobotDataset(s) for s in sources]
        weights = np.array([float(w) for w in sources.values()])
        if (weights < 0).any() or weights.sum() <= 0 or not np.isfinite(weights).all():
            raise ValueError(
                f"mixture weights must be non-negative with a positive sum, got {weights}"
            )
        for ds in self.datasets:
            if ds.num_episodes == 0 or not ds.camera_names:
                raise ValueError(f"{ds.root} has no episodes or no video views to sample")
        if max_episodes is not None and max_episodes < 1:
            raise ValueError(f"max_episodes must be None or >= 1, got {max_episodes}")
        self.episode_counts = [
            ds.num_episodes if max_episodes is None else min(ds.num_episodes, max_episodes)
            for ds in self.datasets
        ]
        self.weights = weights / weights.sum()
        self.epoch = 0

    def __len__(self) -> int:
        return self.config.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Draw different clips each epoch (call from the training loop)."""
        self.epoch = int(epoch)

    def pick(self, index: int) -> tuple[int, int, np.random.Generator]:
        """(dataset, episode, generator for the rest of the draw) of item ``index``."""
        rng = np.random.default_rng((self.config.seed, self.epoch, int(index)))
        d = int(rng.choice(len(self.datasets), p=self.weights))
        return d, int(rng.integers(self.episode_counts[d])), rng

    def __getitem__(self, index: int) -> dict[str, Any]:
        d, k, rng = self.pick(index)
        return self.clip(d, k, rng)

    # --- one clip -------------------------------------------------------------------
    def frame_indices(self, ds: LeRobotDataset, k: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """(T,) source frame numbers of a random window, and (T,) validity."""
        cfg = self.config
        length = ds.episode_length(k)
        step = ds.fps / cfg.fps if cfg.fps else 1.0  # source frames per clip frame
        span = (cfg.num_frames - 1) * step
        start = (
            int(rng.integers(0, int(np.floor(length - 1 - span)) + 1)) if length - 1 >= span else 0
        )
        idx = np.round(start + np.arange(cfg.num_frames) * step).astype(np.int64)  # (T,)
        valid = idx < length
        return np.minimum(idx, length - 1), valid

    def choose_views(self, ds: LeRobotDataset, k: int, rng) -> tuple[list[str], bool]:
        """V view names (calibrated ones when there are enough) and whether all are calibrated."""
        cfg = self.config
        calibrated = [c for c in ds.calibrated_cameras if ds.read_cameras(k, frames=[0]).get(c)]
        pool = calibrated if len(calibrated) >= cfg.num_views else list(ds.camera_names)
        if cfg.random_views:
            replace = len(pool) < cfg.num_views  # too few views: repeat some
            views = [pool[i] for i in rng.choice(len(pool), cfg.num_views, replace=replace)]
        else:
            views = [pool[i % len(pool)] for i in range(cfg.num_views)]
        return views, all(v in calibrated for v in views)

    def clip(self, d: int, k: int, rng=None) -> dict[str, Any]:
        """The clip of episode ``k`` of dataset ``d`` (random window/views/crop from ``rng``)."""
        from actionimages.codec.encoder import encode_action_images
        from actionimages.geometry.projection import plucker_map

        cfg = self.config
        rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        ds = self.datasets[d]
        idx, frame_valid = self.frame_indices(ds, k, rng)
        views, calibrated = self.choose_views(ds, k, rng)
        unique = list(dict.fromkeys(views))
        ep = ds.read_episode(k, cameras=unique, frames=idx)
        T, V, Ht, Wt = cfg.num_frames, cfg.num_views, cfg.height, cfg.width
        dtype = getattr(torch, cfg.dtype)

        video = torch.empty(V, T, Ht, Wt, 3, dtype=dtype)
        cams = []
        for i, v in enumerate(views):
            frames = ep.images[v]  # (T, H, W, 3) uint8
            H, W = frames.shape[1:3]
            scale = max(Ht / H, Wt / W)  # cover the target, then crop the excess
            h, w = max(Ht, round(H * scale)), max(Wt, round(W * scale))
            top, left = self._crop_offset(h - Ht, rng), self._crop_offset(w - Wt, rng)
            x = resize_frames(frames, h, w)[:, top : top + Ht, left : left + Wt]  # (T, Ht, Wt, 3)
            torch.mul(x, 1 / 127.5, out=video[i]).sub_(1.0)  # [0, 255] -> [-1, 1]
            if calibrated:
                cams.append(resize_crop_cameras(ep.cameras[v], h, w, top, left, Ht, Wt))

        has_actions = ep.has_actions and calibrated
        hs, ws = Ht // cfg.plucker_stride, Wt // cfg.plucker_stride
        actions = torch.empty(V, T, Ht, Wt, 3, dtype=dtype) if cfg.render_actions else None
        if actions is not None and has_actions:
            encode_action_images(
                torch.from_numpy(ep.position), torch.from_numpy(ep.rotation),
                torch.from_numpy(ep.gripper), cams, cfg.axis_length, cfg.sigma, cfg.layout,
                out=actions,
            )  # fmt: skip  # (V, T, H, W, 3) in [0, 1]
            actions.mul_(2.0).sub_(1.0)
        elif actions is not None:
            actions.fill_(-1.0)  # nothing to draw: the empty action image
        if calibrated:
            K = torch.from_numpy(np.stack([[c.K for c in cv] for cv in cams]))  # (V, T, 3, 3)
            E = torch.from_numpy(np.stack([[c.world_to_camera for c in cv] for cv in cams]))
            small = torch.diag(torch.tensor([ws / Wt, hs / Ht, 1.0], dtype=K.dtype))
            # Pixel centres of the (hs, ws) grid are block centres of the (Ht, Wt) image.
            # Each view is conditioned on its frame-0 camera only (SPEC 4): a moving (wrist)
            # view's later poses are the end-effector motion the model must predict, and
            # at planning time they are unknown anyway, so training would not match testing.
            K0, E0 = K[:, :1].expand_as(K), E[:, :1].expand_as(E)
            plucker = plucker_map(small @ K0, E0, hs, ws, reference_world_to_camera=E[0, 0])
            plucker = plucker.to(dtype)  # (V, T, hs, ws, 6)
        else:
            K, E = torch.zeros(V, T, 3, 3), torch.zeros(V, T, 4, 4)
            plucker = torch.zeros(V, T, hs, ws, 6, dtype=dtype)

        tasks = torch.tensor([has_actions] * 3 + [True])
        item = {
            "video": video,
            "actions": actions,
            "plucker": plucker,
            "K": K.float(),
            "world_to_camera": E.float(),
            # NaN (no actions) -> 0, so a batch never carries NaN; "tasks" says why
            "position": torch.from_numpy(np.nan_to_num(ep.position)).float(),
            "rotation": torch.from_numpy(np.nan_to_num(ep.rotation)).float(),
            "gripper": torch.from_numpy(np.nan_to_num(ep.gripper)).float(),
            "frame_valid": torch.from_numpy(frame_valid),
            "tasks": tasks,
            "instruction": ep.instruction,
            "views": views,
            "source": torch.tensor([d, k, int(idx[0])]),
        }
        if actions is None:
            del item["actions"]
        return item

    def _crop_offset(self, excess: int, rng) -> int:
        if excess <= 0:
            return 0
        return int(rng.integers(0, excess + 1)) if self.config.random_crop else excess // 2


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # one core per worker; parallelism comes from the workers


def clip_loader(
    sampler: ClipSampler,
    batch_size: int = 1,
    num_workers: int = 2,
    context: str | None = "forkserver",
    **kwargs: Any,
) -> torch.utils.data.DataLoader:
    """A DataLoader for ``sampler`` with worker processes started safely.

    Workers are started by a fork server, not by forking the caller: a process that has
    already run NumPy's multi-threaded OpenBLAS (the action-image encoder's matrix
    product does) hands forked children a thread pool that spins forever (seen here
    with NumPy 2.4). Workers get one torch thread and single-threaded OpenBLAS (its
    idle threads busy-wait, which starves the other workers); parallelism comes from
    the workers. ``context="fork"`` starts faster but needs a caller that has not used
    BLAS or runs with ``OPENBLAS_NUM_THREADS=1``.
    """
    if num_workers == 0:
        context = None
    else:  # read by the fresh interpreters the fork server and spawn start
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return torch.utils.data.DataLoader(
        sampler, batch_size=batch_size, num_workers=num_workers, worker_init_fn=_worker_init,
        multiprocessing_context=context, **kwargs,
    )  # fmt: skip


def cameras_of(item: dict[str, Any], view: int) -> list[Camera]:
    """The T :class:`Camera` objects of one view of a sampled item (for checks and plots)."""
    K, E = item["K"][view].double().numpy(), item["world_to_camera"][view].double().numpy()
    H, W = item["video"].shape[2:4]
    return [Camera(K[t], E[t], H, W) for t in range(len(K))]
