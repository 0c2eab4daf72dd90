"""Articulated objects: open/close_drawer, close_box, close_laptop.

All of them stand with their local -x towards the robot (see ``assets/*.urdf``) and are
static; only their joints move, against a little joint friction so they stay where the
gripper leaves them.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from actionimages.sim.robot import wrap_grasp_yaw
from actionimages.sim.scene import Keepout, segment_keepout
from actionimages.sim.tasks.base import FAST, SLOW, ObjectPoint, Task, rot_y, rot_z
from actionimages.sim.variation import color_rgb
from actionimages.sim.waypoints import WaypointPlan

# Drawer cabinet (assets/drawer.urdf): depth, handle bar standoff and height, travel.
CAB_DEPTH, BAR_OUT, BAR_Z, DRAWER_MAX = 0.20, 0.07, 0.045, 0.16
DRAWER_FRICTION = 3.0  # N


class _Drawer(Task):
    roles: ClassVar[dict[str, tuple[str, str]]] = {"drawer": ("blue", "drawer")}
    max_steps = 110

    def setup(self) -> None:
        self.pos, self.yaw = self.place_facing_robot((0.64, 0.72), (-0.15, 0.15), 0.35)
        self.body = self.scene.load("drawer", self.pos, self.yaw, fixed=True)
        self.paint("drawer", self.body, link=0, shape=0)  # the drawer's front panel
        self.scene.set_joint(self.body, 0, self.initial_opening(), DRAWER_FRICTION)
        self.out = rot_z(self.yaw) @ np.array([-1.0, 0.0, 0.0])  # opening direction
        # The cabinet, and the strip the drawer, its handle and the 20 cm wide hand sweep.
        reach = CAB_DEPTH / 2 + BAR_OUT + DRAWER_MAX + 0.03
        self._keepout = segment_keepout(self.pos, self.pos + self.out * reach, 0.17)

    def initial_opening(self) -> float:
        raise NotImplementedError

    def opening(self) -> float:
        return self.scene.joint(self.body, 0)

    def bar(self, opening: float) -> np.ndarray:
        """World position of the handle bar's centre at a given opening."""
        local = np.array([-CAB_DEPTH / 2 - BAR_OUT - opening, 0.0, BAR_Z])
        return self.pos + rot_z(self.yaw) @ local

    def object_points(self):
        centre = self.pos + rot_z(self.yaw) @ np.array([0.0, 0.0, 0.04])
        return {"cabinet": ObjectPoint(self.body, -1, centre)}


class OpenDrawer(_Drawer):
    name = "open_drawer"
    instructions = (
        "open the drawer",
        "pull the {drawer} open",
        "slide the {drawer} out",
        "pull out the drawer by its handle",
    )

    def initial_opening(self) -> float:
        return float(self.ctx.rng.uniform(0.0, 0.01))

    def expert(self) -> WaypointPlan:
        yaw = wrap_grasp_yaw(self.yaw)  # fingers (e_x) along the bar
        d = self.opening()
        # Hook: closed fingers dropped between the drawer's face and the bar, then pulled.
        hook = self.bar(d) - self.out * (BAR_OUT - 0.04)
        yield self.wp(hook + [0, 0, 0.12], yaw, 0.0, FAST)
        yield self.wp(hook, yaw, 0.0, SLOW)
        yield self.wp(hook + self.out * 0.15, yaw, 0.0, SLOW)
        end = hook + self.out * 0.15
        yield self.wp(end - self.out * 0.015, yaw, 0.0, SLOW)  # let go of the bar
        yield self.wp(end - self.out * 0.015 + [0, 0, 0.12], yaw, 0.0, FAST)

    def success(self) -> bool:
        return self.opening() > 0.10


class CloseDrawer(_Drawer):
    name = "close_drawer"
    instructions = (
        "close the drawer",
        "push the {drawer} shut",
        "slide the {drawer} closed",
        "shut the drawer",
    )

    def initial_opening(self) -> float:
        return float(self.ctx.rng.uniform(0.08, 0.14))

    def expert(self) -> WaypointPlan:
        yaw = wrap_grasp_yaw(self.yaw)
        d = self.opening()
        # Closed fingers just outside the bar, at its height, then pushed home.
        contact = self.bar(d) + self.out * 0.025 + [0, 0, -0.005]
        yield self.wp(contact + [0, 0, 0.12], yaw, 0.0, FAST)
        yield self.wp(contact, yaw, 0.0, SLOW)
        home = self.bar(0.0) + self.out * 0.012 + [0, 0, -0.005]
        yield self.wp(home, yaw, 0.0, SLOW, hold=1)
        yield self.wp(home + self.out * 0.04 + [0, 0, 0.1], yaw, 0.0, FAST)

    def success(self) -> bool:
        return self.opening() < 0.01


class _Hinged(Task):
    """A lid on a hinge at the object's back edge; the expert sweeps it shut from behind."""

    asset = ""
    hinge = np.zeros(3)  # hinge position in the object frame
    push_radius = 0.0  # where the fingers push, measured from the hinge along the lid
    surface = 0.0  # lid's outer surface height in the lid frame
    open_range = (0.0, 0.0)  # initial angle, rad
    region = ((0.45, 0.58), (-0.18, 0.18))
    friction = 0.3  # N m: holds the lid against gravity at any angle
    max_steps = 110

    def setup(self) -> None:
        self.pos, self.yaw = self.place_facing_robot(*self.region, 0.35)
        self.body = self.scene.load(self.asset, self.pos, self.yaw, fixed=True)
        self.paint_parts()
        self.scene.set_joint(
            self.body, 0, float(self.ctx.rng.uniform(*self.open_range)), self.friction
        )
        front = self.pos + rot_z(self.yaw) @ np.array([-0.2, 0.0, 0.0])  # where the hand ends
        self._keepout = [
            Keepout(tuple(self.pos[:2]), 0.22),
            *segment_keepout(self.pos, front, 0.15),
        ]

    def paint_parts(self) -> None:
        raise NotImplementedError

    def angle(self) -> float:
        return self.scene.joint(self.body, 0)

    def arc(self, angle: float, offset: float) -> np.ndarray:
        """World point at the push radius, ``offset`` above the lid's outer surface."""
        local = self.hinge + rot_y(angle) @ np.array(
            [-self.push_radius, 0.0, self.surface + offset]
        )
        return self.pos + rot_z(self.yaw) @ local

    def expert(self) -> WaypointPlan:
        yaw = wrap_grasp_yaw(self.yaw)  # fingers (e_x) along the hinge axis
        a0 = self.angle()
        start = self.arc(a0, 0.04)  # behind (above) the lid, clear of it
        yield self.wp(start + [0, 0, 0.08], yaw, 0.0, FAST)
        yield self.wp(start, yaw, 0.0, SLOW * 1.5)
        # The closed fingers' half-thickness is ~1 cm: an 8 mm offset keeps them pressing.
        for a in np.linspace(a0, -0.05, max(2, int(np.ceil(a0 / np.deg2rad(10))) + 1)):
            yield self.wp(self.arc(a, 0.008), yaw, 0.0, SLOW)
        yield self.wp(self.arc(-0.05, 0.1), yaw, 0.0, SLOW * 1.5)

    def success(self) -> bool:
        return self.angle() < 0.1

    def object_points(self):
        centre = self.pos + rot_z(self.yaw) @ np.array([0.0, 0.0, self.hinge[2] / 2])
        return {self.asset: ObjectPoint(self.body, -1, centre)}


class CloseBox(_Hinged):
    name = "close_box"
    instructions = (
        "close the box",
        "shut the lid of the {box}",
        "close the lid of the box",
        "push the {box}'s lid down",
    )
    roles: ClassVar[dict[str, tuple[str, str]]] = {"box": ("orange", "box")}
    asset = "box"
    hinge = np.array([0.08, 0.0, 0.10])
    push_radius = 0.185  # on the lid's front tab
    surface = 0.008
    open_range = (np.deg2rad(75), np.deg2rad(110))

    def paint_parts(self) -> None:
        self.paint("box", self.body, link=-1)
        # The lid takes the box's colour (its tab stays grey).
        self.scene.set_color(self.body, color_rgb(self.colors["box"]), link=0, shape=0)


class CloseLaptop(_Hinged):
    name = "close_laptop"
    instructions = (
        "close the laptop",
        "shut the {laptop} lid",
        "fold the laptop screen down",
        "close the {laptop}'s screen",
    )
    roles: ClassVar[dict[str, tuple[str, str]]] = {"laptop": ("white", "laptop")}
    asset = "laptop"
    hinge = np.array([0.105, 0.0, 0.016])
    push_radius = 0.19
    surface = 0.008
    open_range = (np.deg2rad(92), np.deg2rad(112))
    region = ((0.40, 0.50), (-0.15, 0.15))

    def paint_parts(self) -> None:
        # Base and the screen's back share the colour; keyboard and display stay dark.
        self.paint("laptop", self.body, link=-1, shape=0)
        self.scene.set_color(self.body, color_rgb(self.colors["laptop"]), link=0, shape=0)
