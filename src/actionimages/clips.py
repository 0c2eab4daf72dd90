"""What a clip is, shared by the data sampler, the model and inference.

A clip is the unit the world action model is trained on and samples: ``num_views`` views
of ``num_frames`` frames at ``fps``, resized to cover ``height`` x ``width`` and cropped.
Training (:mod:`actionimages.data.sampler`) and inference (:mod:`actionimages.infer.inputs`)
must frame images identically, so the settings and the resize / crop helpers live here,
below both, rather than in the training-data package; so do the names of the four
masking tasks, which the sampler (allowed tasks per clip) and the model (frame states)
both index.

    ClipConfig.preset("long")        the default CPU model's clip: 2 x 9 frames at 2.5 fps, 64 px
    ClipConfig.preset("long").for_inference()   centre crop, first views
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from actionimages._presets import lookup
from actionimages.geometry.camera import Camera

# The four masking tasks (paper Sec. 3.3), in the order every ``(B, 4)`` task tensor uses.
TASKS = ("joint", "action_to_video", "video_to_action", "video_only")


@dataclass(frozen=True)
class ClipConfig:
    """How clips are cut (see the module docstring for the item layout).

    Attributes:
        num_frames: T frames per view (paper: 41).
        fps: frame rate of the clip; source frames are picked at the nearest time stamps
            (None keeps each dataset's own rate).
        num_views: V views per clip (paper: 2).
        height, width: model resolution. The frame is scaled to cover it, then cropped.
        random_crop: crop at a random offset (training) instead of the centre.
        random_views: pick views at random (training) instead of the first V.
        plucker_stride: Plücker maps are computed at block centres every ``stride``
            pixels (the model pools them to the latent grid anyway; 1 = every pixel).
        render_actions: draw action images here (CPU workers). False leaves the key
            "actions" out, for a trainer that renders them on the GPU from the
            returned poses and cameras (the codec runs on torch tensors anywhere).
        axis_length, sigma, layout: action-image codec settings.
        samples_per_epoch: ``len(sampler)``; items are drawn at random, seeded by index.
        dtype: "float32" or "float16" for video, action images and Plücker maps.
        seed: base seed; item i of epoch e uses (seed, e, i).
    """

    num_frames: int = 41
    fps: float | None = 10.0
    num_views: int = 2
    height: int = 256
    width: int = 256
    random_crop: bool = True
    random_views: bool = True
    plucker_stride: int = 8
    render_actions: bool = True
    axis_length: float = 0.1
    sigma: float = 0.05
    layout: str = "paper"
    samples_per_epoch: int = 10_000
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.num_views < 1:
            raise ValueError("num_frames and num_views must be >= 1")
        if self.height % self.plucker_stride or self.width % self.plucker_stride:
            raise ValueError(
                f"height/width must be multiples of plucker_stride={self.plucker_stride}"
            )
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {self.dtype!r}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive or None, got {self.fps}")

    @classmethod
    def default(cls) -> ClipConfig:
        """The paper's views and length (2 views x 41 frames, 10 fps) at 256 x 256.

        The paper trains at 512 x 512; 256 x 256 has a quarter of the tokens. Use
        ``ClipConfig(height=512, width=512)`` for the paper's resolution.
        """
        return cls()

    @classmethod
    def debug(cls) -> ClipConfig:
        """Tiny clips for tests and CPU smoke runs: 2 views x 9 frames at 64 x 64."""
        return cls(num_frames=9, height=64, width=64, samples_per_epoch=16)

    @classmethod
    def long(cls) -> ClipConfig:
        """The default CPU model's clip: 2 views x 9 frames at 64 x 64 and 2.5 fps.

        Every 4th control step of a 10 fps episode, so one clip spans 3.2 s: most of a
        built-in task (episodes last 3-9 s) rather than the 0.8 s of ``debug``. Between
        clip frames the gripper moves a few pixels, which the model can see, where at
        10 fps it moves a fraction of one and a small model learns to hold still.
        """
        return cls(num_frames=9, fps=2.5, height=64, width=64, samples_per_epoch=16)

    @classmethod
    def evaluation(cls) -> ClipConfig:
        """Deterministic framing: centre crop, first views."""
        return cls(random_crop=False, random_views=False)

    def for_inference(self) -> ClipConfig:
        """The same framing, deterministic: centre crop and the first views."""
        return dataclasses.replace(self, random_crop=False, random_views=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown ClipConfig fields: {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> ClipConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ClipConfig:
        """A named clip of :data:`CLIP_PRESETS`, with a clear error for another name."""
        return lookup(CLIP_PRESETS, name, "clip").replace(**overrides)


# The named clips (one idiom for presets: a dict of frozen configs and ``lookup``).
CLIP_PRESETS: dict[str, ClipConfig] = {
    "debug": ClipConfig.debug(),
    "long": ClipConfig.long(),
    "default": ClipConfig.default(),
}


def source_frames_per_clip_frame(source_fps: float, clip_fps: float | None) -> int:
    """Frames of a ``source_fps`` stream (an episode, a robot's control loop) per clip frame.

    1 when the clip keeps the source's rate (``clip_fps`` None); a clear error when the
    clip rate does not divide the source rate, since frames would then be resampled.
    """
    if not clip_fps:
        return 1
    k = source_fps / clip_fps
    if k < 1 or abs(k - round(k)) > 1e-6:
        raise ValueError(
            f"the clip rate {clip_fps} fps must divide the source rate {source_fps} fps"
        )
    return round(k)


def resize_frames(frames: np.ndarray | torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, height, width, 3) uint8, antialiased bilinear.

    Kept in uint8 and channels-last memory: torch's CPU kernel for that case is ~10x
    faster than the float one.
    """
    x = torch.as_tensor(frames).permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W) view
    if x.shape[-2:] != (height, width):
        x = F.interpolate(
            x, size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )
    return x.permute(0, 2, 3, 1)  # (N, 3, h, w) channels-last -> (N, h, w, 3) view


def resize_crop_cameras(
    cams: list[Camera], h: int, w: int, top: int, left: int, Ht: int, Wt: int
) -> list[Camera]:
    """Resize-then-crop each camera; a static view repeats one object, so do it once."""
    done: dict[int, Camera] = {}
    out = []
    for c in cams:
        if id(c) not in done:
            done[id(c)] = c.resized(h, w).cropped(top, left, Ht, Wt)
        out.append(done[id(c)])
    return out
