"""The waypoint vocabulary of the scripted experts (no simulator imports: tasks use it).

A task's expert is a generator of :class:`Waypoint` s, a :data:`WaypointPlan`. It resumes
only once the previous waypoint has been reached (and held), so code between two
``yield`` s sees the world as it is then: experts are closed-loop where they need to be
(``push_block`` re-aims, ``pick_cup`` re-centres on the cup). :class:`WaypointFollower`
turns waypoints into one absolute end-effector target per control step, limiting the
TCP's linear and angular speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from actionimages.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from actionimages.sim.action import Action


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


WaypointPlan = Iterator[Waypoint]  # a task's expert: waypoints, yielded as they are reached


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
