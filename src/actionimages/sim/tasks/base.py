"""What every task provides: setup, instruction, success detector, scripted expert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from actionimages.sim.robot import PandaRobot, top_down_rotation
from actionimages.sim.scene import Keepout, Scene
from actionimages.sim.variation import COLORS, color_rgb
from actionimages.sim.waypoints import Waypoint, WaypointPlan

# The expert's free-space and contact speeds (m/s).
FAST, SLOW = 0.3, 0.1


@dataclass
class TaskContext:
    """What a task may use at setup: the scene, the robot and its random streams."""

    scene: Scene
    robot: PandaRobot
    rng: np.random.Generator  # initial state: poses, joint values, instruction choice
    color_rng: np.random.Generator  # object colours (used only if object_color is on)
    object_color: bool = False
    palette: str = "train"
    objects: str = "train"  # "train" or "heldout" object variants


@dataclass
class ObjectPoint:
    """A point known to lie inside a rendered body (for the projection test)."""

    body: int
    link: int  # -1 = base
    point: np.ndarray  # (3,) world coordinates


class Task:
    """Base class. Subclasses set the class attributes and implement the four hooks.

    Lifecycle: ``setup()`` (load and place objects) once per episode, then after every
    control step ``update()`` (for latched conditions such as a pressed button);
    ``success()`` at any time; ``expert()`` returns a fresh waypoint generator.
    """

    name: ClassVar[str] = ""
    instructions: ClassVar[tuple[str, ...]] = ()  # templates; {role} -> "colour noun"
    max_steps: ClassVar[int] = 150  # control steps before an episode is truncated
    # role -> (default colour name, noun); the default is used when colours are not varied.
    roles: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.scene = ctx.scene
        self.robot: PandaRobot = ctx.robot
        self.names: dict[str, str] = {}  # role -> "colour noun" for the instruction
        self.colors: dict[str, str] = {}  # role -> colour name
        self.bodies: dict[str, int] = {}  # role -> body id
        self._keepout: list[Keepout] = []
        self._template = ""

    # --- hooks -------------------------------------------------------------------
    def setup(self) -> None:
        raise NotImplementedError

    def success(self) -> bool:
        raise NotImplementedError

    def expert(self) -> WaypointPlan:
        raise NotImplementedError

    def update(self) -> None:
        """Called after every control step; override for latched success conditions."""

    # --- shared helpers ---------------------------------------------------------------
    def choose_instruction(self) -> None:
        self._template = self.instructions[int(self.ctx.rng.integers(len(self.instructions)))]

    @property
    def instruction(self) -> str:
        return self._template.format(**self.names)

    def paint(self, role: str, body: int, link: int = -1, shape: int = -1, noun: str = "") -> None:
        """Colour a body's part for ``role`` (random if colours vary, else the default)."""
        default, default_noun = self.roles[role]
        noun = noun or default_noun
        if self.ctx.object_color:
            used = set(self.colors.values())
            names = [n for n in COLORS[self.ctx.palette] if n not in used]
            color = names[int(self.ctx.color_rng.integers(len(names)))]
            rgb = COLORS[self.ctx.palette][color]
        else:
            color, rgb = default, color_rgb(default)
        self.scene.set_color(body, rgb, link=link, shape=shape)
        self.colors[role] = color
        self.names[role] = f"{color} {noun}"
        self.bodies.setdefault(role, body)

    def keepout(self) -> list[Keepout]:
        """Table discs that distractors must avoid (objects and the expert's paths)."""
        return self._keepout

    def object_points(self) -> dict[str, ObjectPoint]:
        """Named points inside visible task bodies (default: each body's base origin)."""
        out = {}
        for role, body in self.bodies.items():
            pos, _ = self.scene.pose(body)
            out[role] = ObjectPoint(body, -1, pos)
        return out

    def info(self) -> dict:
        """JSON-friendly description of the episode's task state (for datasets/logs)."""
        return {"colors": dict(self.colors)}

    # --- geometry helpers --------------------------------------------------------------
    def place_facing_robot(self, x_range, y_range, yaw_jitter: float) -> tuple[np.ndarray, float]:
        """A table position and a yaw that turns the object's local -x towards the robot."""
        rng = self.ctx.rng
        xy = rng.uniform((x_range[0], y_range[0]), (x_range[1], y_range[1]))
        yaw = float(np.arctan2(xy[1], xy[0]) + rng.uniform(-yaw_jitter, yaw_jitter))
        return np.array([xy[0], xy[1], 0.0]), yaw

    def wp(self, position, yaw: float, gripper: float, speed: float = FAST, hold: int = 0):
        """A top-down waypoint turned by ``yaw``."""
        return Waypoint(
            np.asarray(position, dtype=np.float64), top_down_rotation(yaw), gripper, speed, hold
        )


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
