"""Contact tasks without grasping: press_button and push_block (both training)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pybullet as p

from actionimages.sim.robot import wrap_grasp_yaw
from actionimages.sim.scene import Keepout, segment_keepout
from actionimages.sim.tasks.base import FAST, SLOW, ObjectPoint, Task
from actionimages.sim.waypoints import WaypointPlan

CAP_TOP = 0.05  # button cap's top when released (assets/button.urdf)
PRESSED = 0.008  # m of cap travel (of 0.012) that counts as pressed
SPRING = 4.0  # N pushing the cap back up
PUSH_TOLERANCE = 0.03  # success: block centre within 3 cm of the target's centre


class PressButton(Task):
    name = "press_button"
    instructions = (
        "press the {button}",
        "push the {button} down",
        "push down on the button",
        "press the button",
    )
    max_steps = 70
    roles: ClassVar[dict[str, tuple[str, str]]] = {"button": ("red", "button")}

    def setup(self) -> None:
        xy = self.ctx.rng.uniform((0.38, -0.25), (0.65, 0.25))
        self.body = self.scene.load(
            "button", (xy[0], xy[1], 0.0), self.ctx.rng.uniform(-np.pi, np.pi), fixed=True
        )
        self.paint("button", self.body, link=0, shape=0)
        self.scene.set_joint(self.body, 0, 0.0, 0.0)
        # The spring: a weak position motor holds the cap up (set before anything settles).
        p.setJointMotorControl2(
            self.body, 0, p.POSITION_CONTROL, targetPosition=0.0, force=SPRING,
            physicsClientId=self.scene.client,
        )  # fmt: skip
        self._keepout = [Keepout(tuple(xy), 0.1)]
        self.pressed = False
        self.xy = xy

    def depth(self) -> float:
        return self.scene.joint(self.body, 0)

    def update(self) -> None:
        self.pressed = self.pressed or self.depth() > PRESSED

    def expert(self) -> WaypointPlan:
        top = np.array([self.xy[0], self.xy[1], CAP_TOP])
        yaw = 0.0
        yield self.wp(top + [0, 0, 0.1], yaw, 0.0, FAST)
        yield self.wp(top + [0, 0, 0.015], yaw, 0.0, SLOW * 1.5)
        # TCP is 7 mm above the fingertips: this pushes the tips 14 mm down (travel 12).
        yield self.wp(top + [0, 0, -0.007], yaw, 0.0, SLOW * 0.6, hold=2)
        yield self.wp(top + [0, 0, 0.1], yaw, 0.0, SLOW * 1.5)

    def success(self) -> bool:
        return self.pressed

    def object_points(self) -> dict[str, ObjectPoint]:
        return {"button": ObjectPoint(self.body, -1, np.array([*self.xy, 0.015]))}


class PushBlock(Task):
    name = "push_block"
    instructions = (
        "push the {block} onto the {target}",
        "slide the {block} to the {target}",
        "push the {block} to the {target}",
        "move the {block} onto the {target} by pushing it",
    )
    max_steps = 220
    roles: ClassVar[dict[str, tuple[str, str]]] = {
        "block": ("blue", "block"),
        "target": ("green", "target"),
    }
    HALF = 0.0225

    def setup(self) -> None:
        rng = self.ctx.rng
        while True:
            block = rng.uniform((0.38, -0.2), (0.62, 0.2))
            ang = rng.uniform(-np.pi, np.pi)
            goal = block + rng.uniform(0.12, 0.2) * np.array([np.cos(ang), np.sin(ang)])
            start = block - 0.07 * np.array([np.cos(ang), np.sin(ang)])  # where pushing starts
            if 0.36 < goal[0] < 0.66 and abs(goal[1]) < 0.25 and np.hypot(*start) > 0.33:
                break
        self.puck = self.ctx.objects == "heldout"
        asset = "puck" if self.puck else "block"
        body = self.scene.load(asset, (block[0], block[1], self.HALF), rng.uniform(-np.pi, np.pi))
        self.scene.set_friction(body, 0.5)
        self.paint("block", body, shape=0, noun=asset)
        zone = self.scene.load("target_zone", (goal[0], goal[1], 0.001), 0.0, fixed=True)
        self.paint("target", zone, shape=0)
        self.goal = goal
        self._keepout = segment_keepout(start, goal, 0.14)

    def block_xy(self) -> tuple[np.ndarray, float]:
        pos, rot = self.scene.pose(self.bodies["block"])
        return pos[:2], float(np.arctan2(rot[1, 0], rot[0, 0]))

    def expert(self) -> WaypointPlan:
        for _ in range(4):  # closed loop: push, look, re-aim
            xy, block_yaw = self.block_xy()
            delta = self.goal - xy
            dist = float(np.linalg.norm(delta))
            if dist < 0.01:
                break
            u = delta / dist
            # Half the block's extent along u (a cube turned by alpha shows more width).
            alpha = np.arctan2(u[1], u[0]) - block_yaw
            half = self.HALF if self.puck else self.HALF * (abs(np.cos(alpha)) + abs(np.sin(alpha)))
            yaw = wrap_grasp_yaw(float(np.arctan2(u[1], u[0])))  # fingers across the push
            behind = np.array([*(xy - u * (half + 0.035)), 0.02])
            yield self.wp(behind + [0, 0, 0.1], yaw, 0.0, FAST)
            yield self.wp(behind, yaw, 0.0, SLOW * 1.5)
            # Finger half-thickness ~1 cm; stop with the block's centre on the goal.
            end = np.array([*(self.goal - u * (half + 0.011)), 0.02])
            yield self.wp(end, yaw, 0.0, SLOW * 0.8)
            yield self.wp(end - np.array([*u, 0]) * 0.02, yaw, 0.0, SLOW)  # back off
        tcp, rot = self.robot.ee_pose()
        yield self.wp(tcp + [0, 0, 0.1], wrap_grasp_yaw(_yaw_of(rot)), 0.0, SLOW * 1.5)

    def success(self) -> bool:
        xy, _ = self.block_xy()
        return bool(np.linalg.norm(xy - self.goal) < PUSH_TOLERANCE)


def _yaw_of(ee_rotation: np.ndarray) -> float:
    """The yaw for which ``top_down_rotation(yaw)`` has this rotation's e_x (world -y at 0)."""
    ex = ee_rotation[:, 0]
    return float(np.arctan2(ex[0], -ex[1]))
