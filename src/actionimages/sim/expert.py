"""Scripted experts and reference policies.

A task's expert is a Python generator of :class:`Waypoint` s (``Task.expert()``). The
generator resumes only once the previous waypoint has been reached (and held), so code
between two ``yield`` s sees the world as it is then: experts are closed-loop where they
need to be (``push_block`` re-aims, ``pick_cup`` re-centres on the cup).

:class:`WaypointFollower` turns waypoints into one absolute end-effector target per
control step, limiting the TCP's linear and angular speed; :class:`ExpertPolicy` wraps it
in the policy interface the evaluation harness uses (``reset()``,
``select_action(obs)``), and :class:`RandomPolicy` is the chance baseline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from actionimages.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from actionimages.sim.action import Action

if TYPE_CHECKING:
    from actionimages.sim.env import SimEnv


@dataclass(frozen=True, eq=False)
class Waypoint:
    """An end-effector target the expert moves to in a straight line.

    Attributes:
        position: (3,) TCP target; rotation: (3, 3); gripper: openness commanded on the way.
        speed: TCP speed limit on the way there, m/s (slow for contact, fast in free space).
        hold: control steps to stay once there (e.g. while the fingers close).
    """

    position: np.ndarray
    rotation: np.ndarray
    gripper: float
    speed: float = 0.25
    hold: int = 0


Plan = Iterator[Waypoint]


def interpolate_rotation(R0: np.ndarray, R1: np.ndarray, frac: float) -> np.ndarray:
    """(3, 3) rotation ``frac`` of the way along the geodesic from ``R0`` to ``R1``."""
    aa = matrix_to_axis_angle(R0.T @ R1)
    return R0 @ axis_angle_to_matrix(aa * frac)


def rotation_angle(R0: np.ndarray, R1: np.ndarray) -> float:
    c = (np.trace(R0.T @ R1) - 1.0) / 2.0
    return float(np.arccos(np.clip(c, -1.0, 1.0)))


class WaypointFollower:
    """Steps a commanded pose towards waypoints at bounded speed (one call per step)."""

    def __init__(self, dt: float, max_angular_speed: float = 1.2) -> None:
        self.dt = dt
        self.max_angular_speed = max_angular_speed
        self.position = np.zeros(3)
        self.rotation = np.eye(3)
        self.gripper = 1.0

    def start(self, position: np.ndarray, rotation: np.ndarray, gripper: float) -> None:
        self.position, self.rotation, self.gripper = position.copy(), rotation.copy(), gripper

    def step(self, wp: Waypoint) -> bool:
        """Advance the command one step towards ``wp``; True once it is there."""
        delta = np.asarray(wp.position) - self.position
        angle = rotation_angle(self.rotation, wp.rotation)
        n = max(
            np.ceil(np.linalg.norm(delta) / (wp.speed * self.dt) - 1e-9),
            np.ceil(angle / (self.max_angular_speed * self.dt) - 1e-9),
            1.0,
        )
        frac = 1.0 / n
        self.position = self.position + frac * delta
        self.rotation = interpolate_rotation(self.rotation, np.asarray(wp.rotation), frac)
        self.gripper = float(wp.gripper)
        return n == 1.0

    def action(self) -> Action:
        return Action(self.position, self.rotation, self.gripper)


class ExpertPolicy:
    """The task's scripted expert as a policy (privileged: it reads the simulator state)."""

    def __init__(self, env: SimEnv) -> None:
        self.env = env
        self.follower = WaypointFollower(1.0 / env.config.control_hz)
        self._plan: Plan | None = None
        self._wp: Waypoint | None = None
        self._hold = 0
        self._arrived = False
        self.done = False

    def reset(self) -> None:
        """Start a new plan for the environment's current episode (call after env.reset)."""
        pos, rot = self.env.robot.ee_pose()
        self.follower.start(pos, rot, self.env.robot.commanded_gripper)
        self._plan = self.env.task.expert()
        self._wp = next(self._plan, None)
        self._arrived, self._hold, self.done = False, 0, self._wp is None

    def select_action(self, obs: dict | None = None) -> Action:
        if self._plan is None:
            raise RuntimeError("call ExpertPolicy.reset() after env.reset() first")
        if self._arrived:
            if self._hold > 0:
                self._hold -= 1
                return self.follower.action()
            self._wp = next(self._plan, None)  # runs the expert's code up to its next yield
            self._arrived = False
        if self._wp is None:
            self.done = True
            return self.follower.action()
        self._arrived = self.follower.step(self._wp)
        self._hold = self._wp.hold if self._arrived else 0
        return self.follower.action()


class RandomPolicy:
    """Chance baseline: a random walk of the end-effector target and random gripper flips."""

    def __init__(self, seed: int = 0, step_m: float = 0.03, step_rad: float = 0.15) -> None:
        self.seed = seed
        self.step_m, self.step_rad = step_m, step_rad
        self.rng = np.random.default_rng(seed)
        self._episode = 0
        self._gripper = 1.0

    def reset(self) -> None:
        self.rng = np.random.default_rng([self.seed, self._episode])
        self._episode += 1
        self._gripper = 1.0

    def select_action(self, obs: dict) -> Action:
        pos = np.asarray(obs["ee_position"]) + self.rng.normal(0.0, self.step_m, 3)
        turn = axis_angle_to_matrix(self.rng.normal(0.0, self.step_rad, 3))
        if self.rng.uniform() < 0.1:
            self._gripper = 1.0 - self._gripper
        return Action(pos, np.asarray(obs["ee_rotation"]) @ turn, self._gripper)
