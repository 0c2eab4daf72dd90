"""Configuration of the optional learned action head (:mod:`actionimages.model.action_head`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from actionimages._presets import lookup

FUSIONS = ("mean", "max", "mean_max")


@dataclass(frozen=True)
class ActionHeadConfig:
    """Architecture and training settings of :class:`ActionHead`.

    Attributes:
        width: channels of the first conv stage (the second has 2x).
        keypoints: K spatial-softmax attention maps per view.
        hidden: width of the per-view and output MLPs.
        temporal_kernel: frames mixed by the temporal convolution (1 = per frame).
        fusion: how views are combined, "mean", "max" or "mean_max" (both, concatenated).
        lr, weight_decay: AdamW settings (cosine decay to 0 over the run).
        degrade_fraction: share of training clips sent through ``fit_action_head``'s codec.
        rotation_weight, gripper_weight: loss weights relative to position.
        triangulate: intersect each keypoint's pooled rays across views (least squares) and
            give the points to the MLP, the position as a residual. False: the MLP alone.
    """

    name: str = "custom"
    width: int = 32
    keypoints: int = 8
    hidden: int = 256
    temporal_kernel: int = 3
    fusion: str = "mean_max"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    degrade_fraction: float = 0.5
    rotation_weight: float = 1.0
    gripper_weight: float = 1.0
    triangulate: bool = True

    def __post_init__(self) -> None:
        if min(self.width, self.keypoints, self.hidden) < 1 or self.temporal_kernel % 2 == 0:
            raise ValueError(f"width, keypoints, hidden must be >= 1 and temporal_kernel odd, got {self}")  # fmt: skip
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if not 0.0 <= self.degrade_fraction <= 1.0:
            raise ValueError(f"degrade_fraction must be in [0, 1], got {self.degrade_fraction}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ActionHeadConfig:
        if unknown := set(d) - {f.name for f in dataclasses.fields(cls)}:
            raise ValueError(f"unknown ActionHeadConfig fields: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ActionHeadConfig:
        return dataclasses.replace(lookup(PRESETS, name, "action-head"), **overrides)

    @classmethod
    def debug(cls, **overrides: Any) -> ActionHeadConfig:  # tests: a few thousand weights
        return cls.preset("debug", **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> ActionHeadConfig:  # the benchmark's CPU head
        return cls.preset("tiny", **overrides)


PRESETS = {
    "debug": ActionHeadConfig(name="debug", width=8, keypoints=4, hidden=32),
    "tiny": ActionHeadConfig(name="tiny", width=32, keypoints=8, hidden=256),
}
