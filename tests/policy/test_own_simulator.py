"""Driving the policy from a simulator that is not PyBullet (issue 13 item 7).

``PointWorld`` is a minimal world of its own: a point end effector that moves to each
commanded target, rendered by nothing but NumPy, with cameras written in the OpenGL /
MuJoCo convention and converted by ``Camera.from_opengl``. An expert trajectory recorded
in it is replayed through ``GroundTruthPlanner.from_trajectory`` and the policy's
decode-and-execute loop; the executed path must follow the expert's.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from actionimages.clips import ClipConfig
from actionimages.geometry import Camera
from actionimages.policy import (
    Action,
    GroundTruthPlanner,
    Observation,
    PolicyConfig,
    WorldActionPolicy,
)


def gl_view(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """An OpenGL world-to-eye matrix (gluLookAt): the eye looks down -z, y up."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    f = (target - eye) / np.linalg.norm(target - eye)
    s = np.cross(f, up) / np.linalg.norm(np.cross(f, up))
    u = np.cross(s, f)
    M = np.eye(4)
    M[0, :3], M[1, :3], M[2, :3] = s, u, -f
    M[:3, 3] = -M[:3, :3] @ eye
    return M


class PointWorld:
    """Not PyBullet: a point gripper that reaches each commanded target in one step."""

    def __init__(self, size: int = 64):
        self.cameras = {
            "front": Camera.from_opengl(gl_view([1.3, 0.0, 0.7], [0.45, 0.0, 0.1]), 55.0, size, size),
            "left": Camera.from_opengl(gl_view([0.45, 0.9, 0.7], [0.45, 0.0, 0.1]), 55.0, size, size),
        }  # fmt: skip
        self.size = size

    def reset(self) -> Observation:
        self.pos, self.rot, self.grip = np.array([0.45, -0.1, 0.25]), np.eye(3), 1.0
        return self.observe()

    def step(self, action: Action) -> Observation:
        self.pos, self.rot, self.grip = action.position, action.rotation, action.gripper
        return self.observe()

    def observe(self) -> Observation:
        images = {k: np.full((self.size, self.size, 3), 90, np.uint8) for k in self.cameras}
        return Observation(images=images, cameras=self.cameras, ee_position=self.pos,
                           ee_rotation=self.rot, gripper=self.grip, instruction="reach")  # fmt: skip


def test_opengl_cameras_project_like_the_opencv_ones():
    eye, target = [1.3, 0.2, 0.7], [0.45, 0.0, 0.1]
    gl = Camera.from_opengl(gl_view(eye, target), 55.0, 64, 64)
    cv = Camera.look_at(eye, target, fov_y_deg=55.0, height=64, width=64)
    pts = np.array([[0.45, 0.0, 0.1], [0.6, -0.1, 0.3], [0.3, 0.2, 0.0]])
    assert np.allclose(gl.project(pts)[0], cv.project(pts)[0], atol=1e-9)
    view, proj = gl.to_gl_matrices()
    back = Camera.from_gl_matrices(view, proj, 64, 64)
    assert np.allclose(back.K, gl.K) and np.allclose(back.world_to_camera, gl.world_to_camera)
    with pytest.raises(ValueError, match="fov_y_deg"):
        Camera.from_opengl(np.eye(4), 0.0, 64, 64)


def test_the_policy_drives_another_simulator_from_a_recorded_expert():
    world = PointWorld()
    world.reset()
    # the "expert", recorded in this world: a straight reach with the gripper closing at the end
    N = 25
    path = np.linspace([0.45, -0.1, 0.25], [0.55, 0.1, 0.12], N)
    grip = np.r_[np.ones(N - 5), np.zeros(5)]
    still = np.repeat(np.eye(3)[None], N, 0)
    planner = GroundTruthPlanner.from_trajectory(
        path, still, grip, ClipConfig.debug().for_inference()
    )
    policy = WorldActionPolicy(planner, PolicyConfig(views=("front", "left"), replan_every=4))
    policy.reset()
    obs, executed = world.reset(), []
    for k in range(N - 1):
        obs = world.step(policy.select_action(dataclasses.replace(obs, step=k)))
        executed.append(world.pos)
    err = np.linalg.norm(np.array(executed) - path[1:N], axis=1)
    assert np.median(err) < 0.005 and err.max() < 0.02  # decoded from action images alone
    assert world.grip < 0.5  # the gripper command came through the blue channel


def test_a_planner_without_clip_is_refused_with_the_contract():
    class Bare:
        def reset(self): ...

        def plan(self, obs, views): ...

    with pytest.raises(TypeError, match=r"needs \.clip"):
        WorldActionPolicy(Bare())


def test_importing_the_policy_does_not_load_pybullet():
    code = "import sys, actionimages.policy; print('pybullet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
