"""reach_target (held out): touch one of three coloured spheres, named by its colour."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from actionimages.sim.scene import Keepout
from actionimages.sim.tasks.base import FAST, Task
from actionimages.sim.waypoints import WaypointPlan

REACH_TOLERANCE = 0.03  # success: TCP within 3 cm of the target sphere's centre
REGION = ((0.32, -0.28, 0.08), (0.65, 0.28, 0.35))


class ReachTarget(Task):
    name = "reach_target"
    instructions = (
        "reach the {target}",
        "touch the {target} with the gripper",
        "move the gripper to the {target}",
        "go to the {target}",
        "put the gripper tip on the {target}",
    )
    max_steps = 60
    roles: ClassVar[dict[str, tuple[str, str]]] = {
        "target": ("red", "target"),
        "other1": ("blue", "sphere"),
        "other2": ("green", "sphere"),
    }

    def setup(self) -> None:
        rng = self.ctx.rng
        points: list[np.ndarray] = []
        while len(points) < 3:  # three spheres at least 12 cm apart
            q = rng.uniform(*REGION)
            if all(np.linalg.norm(q - o) > 0.12 for o in points):
                points.append(q)
        for role, q in zip(("target", "other1", "other2"), points, strict=True):
            body = self.scene.load("target_sphere", q, 0.0, fixed=True)
            self.paint(role, body, shape=0)
        self._keepout = [Keepout((float(q[0]), float(q[1])), 0.12) for q in points]
        self.goal = points[0]
        self.yaw = float(rng.uniform(-0.6, 0.6))  # any wrist yaw will do; vary it

    def expert(self) -> WaypointPlan:
        yield self.wp(self.goal, self.yaw, 1.0, FAST, hold=2)

    def success(self) -> bool:
        tcp, _ = self.robot.ee_pose()
        return bool(np.linalg.norm(tcp - self.goal) < REACH_TOLERANCE)
