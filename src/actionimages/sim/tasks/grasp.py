"""Grasping tasks: pick_cup, place_cup (held out) and lift_block (training)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from actionimages.sim.robot import wrap_grasp_yaw
from actionimages.sim.scene import Keepout
from actionimages.sim.tasks.base import FAST, SLOW, Task
from actionimages.sim.waypoints import WaypointPlan

# name -> (asset, half height, grasp depth below the top: where the TCP goes)
CUPS = {"train": ("cup", 0.045, 0.03), "heldout": ("mug", 0.039, 0.028)}
BLOCKS = {"train": ("block", 0.0225, 0.0225), "heldout": ("puck", 0.0225, 0.0225)}
LIFT = 0.08  # success: raised at least this far (m) and held by both fingers
FRICTION = 1.2


class _Pick(Task):
    """Shared pick logic: one object on the table, a top-down grasp, a lift."""

    kinds: dict[str, tuple[str, float, float]] = CUPS
    role = "cup"
    region = ((0.35, 0.62), (-0.22, 0.22))

    def setup(self) -> None:
        asset, half, depth = self.kinds[self.ctx.objects]
        self.asset, self.half, self.depth = asset, half, depth
        (x0, x1), (y0, y1) = self.region
        xy = self.ctx.rng.uniform((x0, y0), (x1, y1))
        yaw = float(self.ctx.rng.uniform(-np.pi, np.pi))
        body = self.scene.load(asset, (xy[0], xy[1], half), yaw)
        self.scene.set_friction(body, FRICTION)
        self.paint(
            self.role, body, shape=0, noun="mug" if asset == "mug" else self.roles[self.role][1]
        )
        self.start_z = half
        self._keepout = [Keepout(tuple(xy), 0.14)]  # object + the 20 cm wide hand

    def grasp_yaw(self) -> float:
        _, rot = self.scene.pose(self.bodies[self.role])
        yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
        # Fingers close along e_x; e_x at yaw 0 is world -y, i.e. the object's local y
        # once turned by the object's yaw: perpendicular to a cup's handle (local +x).
        return wrap_grasp_yaw(yaw) if self.asset != "block" else _square_yaw(yaw)

    def pick(self) -> WaypointPlan:
        body = self.bodies[self.role]
        pos, _ = self.scene.pose(body)
        yaw = self.grasp_yaw()
        top = pos[2] + self.half
        yield self.wp(pos + [0, 0, 0.15], yaw, 1.0)
        pos, _ = self.scene.pose(body)  # re-centre: the object may have settled
        grasp = np.array([pos[0], pos[1], top - self.depth])
        yield self.wp(grasp + [0, 0, 0.05], yaw, 1.0, SLOW * 1.5)
        yield self.wp(grasp, yaw, 1.0, SLOW)
        yield self.wp(grasp, yaw, 0.0, SLOW, hold=5)
        yield self.wp(grasp + [0, 0, 0.16], yaw, 0.0, SLOW * 1.5, hold=2)

    def expert(self) -> WaypointPlan:
        yield from self.pick()

    def lifted(self) -> bool:
        body = self.bodies[self.role]
        z = self.scene.pose(body)[0][2]
        return bool(z > self.start_z + LIFT and self.robot.finger_contacts(body) == 2)

    def success(self) -> bool:
        return self.lifted()


def _square_yaw(yaw: float) -> float:
    """A block's yaw modulo its 90-degree symmetry, in [-pi/4, pi/4)."""
    return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


class PickCup(_Pick):
    name = "pick_cup"
    instructions = (
        "pick up the {cup}",
        "lift the {cup} off the table",
        "grasp the {cup} and raise it",
        "grab the {cup} and hold it up",
    )
    max_steps = 90
    roles: ClassVar[dict[str, tuple[str, str]]] = {"cup": ("red", "cup")}


class LiftBlock(_Pick):
    name = "lift_block"
    instructions = (
        "pick up the {block}",
        "lift the {block}",
        "grasp the {block} and raise it",
        "raise the {block} off the table",
    )
    max_steps = 90
    kinds = BLOCKS
    role = "block"
    roles: ClassVar[dict[str, tuple[str, str]]] = {"block": ("blue", "block")}

    def setup(self) -> None:
        super().setup()
        if self.asset == "puck":
            self.names["block"] = f"{self.colors['block']} puck"


class PlaceCup(_Pick):
    name = "place_cup"
    instructions = (
        "put the {cup} on the {coaster}",
        "place the {cup} onto the {coaster}",
        "move the {cup} onto the {coaster}",
        "set the {cup} down on the {coaster}",
    )
    max_steps = 160
    roles: ClassVar[dict[str, tuple[str, str]]] = {
        "cup": ("red", "cup"),
        "coaster": ("green", "coaster"),
    }
    COASTER_TOP = 0.006

    def setup(self) -> None:
        super().setup()
        cup_xy = np.asarray(self._keepout[0].xy)
        for _ in range(100):
            xy = self.ctx.rng.uniform((0.35, -0.25), (0.65, 0.25))
            if np.linalg.norm(xy - cup_xy) > 0.16:
                break
        coaster = self.scene.load("coaster", (xy[0], xy[1], 0.003), 0.0, fixed=True)
        self.paint("coaster", coaster, shape=0)
        self._keepout.append(Keepout(tuple(xy), 0.14))

    def expert(self) -> WaypointPlan:
        yield from self.pick()
        cup = self.bodies[self.role]
        target, _ = self.scene.pose(self.bodies["coaster"])
        yaw = self.grasp_yaw()
        tcp, _ = self.robot.ee_pose()
        pos, _ = self.scene.pose(cup)
        offset = tcp - pos  # where the cup sits in the hand: compensated when placing
        above = np.array([target[0], target[1], tcp[2]]) + [offset[0], offset[1], 0]
        yield self.wp(above, yaw, 0.0, FAST)
        cup_bottom = pos[2] - self.half
        drop = cup_bottom - (self.COASTER_TOP + 0.004)
        yield self.wp(above - [0, 0, drop], yaw, 0.0, SLOW, hold=1)
        yield self.wp(above - [0, 0, drop], yaw, 1.0, SLOW, hold=4)
        yield self.wp(above - [0, 0, drop - 0.12], yaw, 1.0, SLOW * 1.5)

    def success(self) -> bool:
        cup = self.bodies[self.role]
        pos, rot = self.scene.pose(cup)
        target, _ = self.scene.pose(self.bodies["coaster"])
        on_target = np.linalg.norm(pos[:2] - target[:2]) < 0.03
        resting = abs(pos[2] - self.half - self.COASTER_TOP) < 0.01
        upright = rot[2, 2] > np.cos(np.deg2rad(15))
        return bool(on_target and resting and upright and self.robot.finger_contacts(cup) == 0)
