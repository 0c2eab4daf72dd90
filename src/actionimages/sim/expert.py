"""Scripted experts and reference policies.

A task's expert is a generator of waypoints (``Task.expert()``, see
:mod:`actionimages.sim.waypoints`). :class:`ExpertPolicy` follows it in the policy
interface the evaluation harness uses (``reset()``, ``select_action(obs)``):
``ExpertPolicy(env)``. :class:`RandomPolicy` is the chance baseline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from actionimages.geometry import axis_angle_to_matrix
from actionimages.sim.action import Action
from actionimages.sim.waypoints import Waypoint, WaypointFollower, WaypointPlan

if TYPE_CHECKING:
    from actionimages.sim.env import SimEnv


class ExpertPolicy:
    """The task's scripted expert as a policy (privileged: it reads the simulator state)."""

    def __init__(self, env: SimEnv) -> None:
        self.env = env
        self.follower = WaypointFollower(1.0 / env.config.control_hz)
        self._plan: WaypointPlan | None = None
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
