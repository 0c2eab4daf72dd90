"""The benchmark's tasks, by name (RLBench counterparts).

Each task loads its objects with a randomised initial state, picks one of several
paraphrased instructions, detects success and brings a scripted expert (see
:mod:`actionimages.sim.tasks.base`).
"""

from __future__ import annotations

from actionimages.sim.tasks.articulated import CloseBox, CloseDrawer, CloseLaptop, OpenDrawer
from actionimages.sim.tasks.base import ObjectPoint, Task, TaskContext
from actionimages.sim.tasks.grasp import LiftBlock, PickCup, PlaceCup
from actionimages.sim.tasks.push import PressButton, PushBlock
from actionimages.sim.tasks.reach import ReachTarget

SIM_TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        ReachTarget,
        PickCup,
        PlaceCup,
        CloseDrawer,
        OpenDrawer,
        CloseBox,
        CloseLaptop,
        PressButton,
        PushBlock,
        LiftBlock,
    )
}


def get_task(name: str) -> type[Task]:
    """The task class called ``name``; a ``ValueError`` lists the valid names."""
    if name not in SIM_TASKS:
        import difflib

        close = difflib.get_close_matches(str(name), list(SIM_TASKS), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown task {name!r}{hint}; valid tasks: {', '.join(SIM_TASKS)}")
    return SIM_TASKS[name]


__all__ = ["SIM_TASKS", "ObjectPoint", "Task", "TaskContext", "get_task"]
