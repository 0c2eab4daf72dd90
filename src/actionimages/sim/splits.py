"""Benchmark splits: which tasks, camera poses, looks and objects each evaluation uses.

The counterparts of the paper's tables (RLBench there, this simulator here):

- Table 3, in-domain: the training tasks, cameras from the training range, the training
  palette of colours/textures/distractors and the training object variants.
- Table 2, zero-shot: tasks never recorded for training (the paper's five: pick cup,
  reach target, close drawer, close laptop, place cup), cameras from the held-out
  range, the held-out palette and held-out object variants (a mug for the cup).

Each held-out task has a related training task (lift_block teaches grasping,
open_drawer the drawer, close_box a hinged lid), as in RLBench where "evaluated tasks
may appear in other datasets, but these specific tasks are fully removed from the
training split". The ``zero_shot_*`` splits change one factor at a time.

Every split owns a disjoint range of episode seeds (``seed_offset + index``), so
evaluation episodes never replay a recorded training episode. Recording retries an
episode whose expert failed with ``seed + attempt * RETRY_STRIDE``, beyond every range.
"""

from __future__ import annotations

from dataclasses import dataclass

TRAIN_TASKS = ("open_drawer", "close_box", "press_button", "push_block", "lift_block")
HELDOUT_TASKS = ("reach_target", "pick_cup", "place_cup", "close_drawer", "close_laptop")
RETRY_STRIDE = 10_000_000


@dataclass(frozen=True)
class Split:
    """One evaluation (or recording) setting."""

    name: str
    tasks: tuple[str, ...]
    camera_range: str  # a CAMERA_RANGES preset
    variation: str  # a VARIATION_PRESETS preset
    objects: str  # "train" or "heldout" object variants
    seed_offset: int
    description: str

    def episode_seed(self, index: int, attempt: int = 0) -> int:
        """The seed of episode ``index`` (``attempt`` > 0: a recording retry)."""
        if index < 0 or attempt < 0:
            raise ValueError("episode index and attempt must be >= 0")
        return self.seed_offset + index + attempt * RETRY_STRIDE


SPLITS: dict[str, Split] = {
    s.name: s
    for s in (
        Split("train", TRAIN_TASKS, "train", "train", "train", 0,
              "training demonstrations (what `sim record` writes by default)"),
        Split("in_domain", TRAIN_TASKS, "train", "train", "train", 100_000,
              "paper Table 3: training tasks, cameras and looks; unseen seeds"),
        Split("zero_shot", HELDOUT_TASKS, "heldout", "heldout", "heldout", 200_000,
              "paper Table 2: held-out tasks, camera poses, colours and objects"),
        Split("zero_shot_tasks", HELDOUT_TASKS, "train", "train", "train", 300_000,
              "held-out tasks only (training cameras and looks)"),
        Split("zero_shot_cameras", TRAIN_TASKS, "heldout", "train", "train", 400_000,
              "training tasks seen from held-out camera poses"),
        Split("zero_shot_visual", TRAIN_TASKS, "train", "heldout", "heldout", 500_000,
              "training tasks with held-out colours, textures, distractors and objects"),
    )
}  # fmt: skip


def get_split(name: str) -> Split:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    return SPLITS[name]


def split_for_task(task: str, preferred: str = "in_domain") -> Split:
    """``preferred`` if it holds ``task``, else the split that evaluates it in-domain-style."""
    split = get_split(preferred)
    if task in split.tasks:
        return split
    return SPLITS["zero_shot_tasks"] if task in HELDOUT_TASKS else SPLITS["in_domain"]
