"""The Franka Panda of ``pybullet_data``: end-effector frame, inverse kinematics, control.

End-effector frame (SPEC section 1). The position is the origin of the URDF link
``panda_grasptarget``: 0.105 m along ``panda_hand``'s z axis from the hand's flange,
between the fingertip pads. Its rotation is ``panda_grasptarget``'s (= ``panda_hand``'s)
rotated by +90 deg about z, so that the columns are

- e_x = the hand's +y: the direction in which ``panda_leftfinger`` opens (in the plane
  of the fingers' motion),
- e_y = the hand's -x,
- e_z = the hand's +z: the approach direction, from the hand towards the fingertips.

Gripper openness g in [0, 1] is the finger gap over its 0.08 m maximum (1 = open).

Meshes. The URDF's visual meshes hold about 100k triangles, which PyBullet's CPU
renderer draws at ~35 frames/s at 128 px; ``mesh="low"`` (the default) renders the
collision meshes (convex hulls, about 3k triangles) instead, ~4.5x faster and the same
silhouette to within a few millimetres. The low-polygon URDF is derived at run time from
the installed ``pybullet_data`` file (only mesh paths change) and cached in a temp dir.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data

from actionimages.geometry import matrix_to_quat_xyzw, quat_xyzw_to_matrix

ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
HAND_LINK = 8
TCP_LINK = 11  # panda_grasptarget
FINGER_TRAVEL = 0.04  # metres per finger, fully open
ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # N m, Panda's torque limits
FINGER_FORCE = 40.0  # N per finger: a firm but not crushing grasp
LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
MAX_JOINT_SPEED = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])  # rad/s
# A ready pose: TCP about 0.46 m in front of the base, 0.40 m up, pointing down.
HOME_Q = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])

# Rotation from the panda_grasptarget link frame to the SPEC end-effector frame.
EE_IN_LINK = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])

# The end-effector rotation at HOME_Q: pointing down, fingers opening along world -y.
TOP_DOWN = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def top_down_rotation(yaw: float = 0.0) -> np.ndarray:
    """(3, 3) pointing-down end-effector rotation, turned by ``yaw`` about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ TOP_DOWN


def wrap_grasp_yaw(yaw: float) -> float:
    """The equivalent yaw in [-pi/2, pi/2): a parallel gripper is symmetric under 180 deg."""
    return float((yaw + np.pi / 2) % np.pi - np.pi / 2)


def panda_urdf(mesh: str = "low") -> str:
    """Path of the Panda URDF: ``"full"`` (visual meshes) or ``"low"`` (collision meshes)."""
    root = Path(pybullet_data.getDataPath()) / "franka_panda"
    if mesh == "full":
        return str(root / "panda.urdf")
    if mesh != "low":
        raise ValueError(f"mesh must be 'low' or 'full', got {mesh!r}")
    text = (root / "panda.urdf").read_text()
    text = text.replace("meshes/visual/", "meshes/collision/")
    text = text.replace("package://meshes", str(root / "meshes"))
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    out = Path(tempfile.gettempdir()) / "actionimages_sim" / f"panda_lowpoly_{digest}.urdf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)  # atomic: parallel processes never see half a file
    return str(out)


def _link_pose(client: int, body: int, link: int) -> tuple[np.ndarray, np.ndarray]:
    state = p.getLinkState(body, link, computeForwardKinematics=True, physicsClientId=client)
    rot = quat_xyzw_to_matrix(np.asarray(state[5], dtype=np.float64))
    return np.asarray(state[4], dtype=np.float64), rot


class IKSolver:
    """Inverse kinematics on a private kinematic copy of the Panda.

    PyBullet's solver starts from the body's current joint state; running it on a copy
    lets us restart it from the previous solution a few times (each restart refines the
    answer) without disturbing the simulated robot.
    """

    def __init__(self, urdf: str) -> None:
        self.client = p.connect(p.DIRECT)
        self.body = p.loadURDF(urdf, useFixedBase=True, physicsClientId=self.client)
        self._rest = [*HOME_Q.tolist(), FINGER_TRAVEL, FINGER_TRAVEL]
        lo = [*LOWER.tolist(), 0.0, 0.0]
        hi = [*UPPER.tolist(), FINGER_TRAVEL, FINGER_TRAVEL]
        self._limits = (lo, hi, [h - l for h, l in zip(hi, lo, strict=True)])

    def solve(
        self,
        position: np.ndarray,
        rotation: np.ndarray,
        q_seed: np.ndarray,
        *,
        iterations: int = 3,
        tolerance: float = 2e-4,
    ) -> tuple[np.ndarray, float]:
        """Joint angles (7,) reaching the end-effector pose, and the remaining error (m)."""
        quat = matrix_to_quat_xyzw(np.asarray(rotation) @ EE_IN_LINK.T).tolist()
        pos = np.asarray(position, dtype=np.float64)
        q = np.asarray(q_seed, dtype=np.float64)
        err = np.inf
        for it in range(iterations):
            self._set(q)
            # The first pass pulls the redundant DoF towards the ready pose (null-space
            # IK, a little inexact); later passes polish the pose without it (exact).
            limits = dict(
                zip(("lowerLimits", "upperLimits", "jointRanges"), self._limits, strict=True)
            )
            extra = dict(limits, restPoses=self._rest) if it == 0 else {"jointDamping": [0.01] * 9}
            sol = p.calculateInverseKinematics(
                self.body, TCP_LINK, pos.tolist(), quat, maxNumIterations=100,
                residualThreshold=1e-6, physicsClientId=self.client, **extra,
            )  # fmt: skip
            q = np.clip(np.asarray(sol[:7]), LOWER, UPPER)
            self._set(q)
            err = float(np.linalg.norm(_link_pose(self.client, self.body, TCP_LINK)[0] - pos))
            if it > 0 and err < tolerance:
                break
        return q, err

    def _set(self, q: np.ndarray) -> None:
        for j, qj in zip(ARM_JOINTS, q, strict=True):
            p.resetJointState(self.body, j, float(qj), physicsClientId=self.client)

    def close(self) -> None:
        if p.isConnected(self.client):
            p.disconnect(self.client)


class PandaRobot:
    """The simulated Panda in one PyBullet client (base at the world origin)."""

    def __init__(self, client: int, urdf: str) -> None:
        self.client = client
        self.body = p.loadURDF(
            urdf, useFixedBase=True, flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client
        )
        for finger in FINGER_JOINTS:
            # Grippy pads: objects must not slip out of a 40 N grasp.
            p.changeDynamics(
                self.body, finger, lateralFriction=1.5, spinningFriction=0.01,
                frictionAnchor=True, physicsClientId=client,
            )  # fmt: skip
        self.commanded_q = HOME_Q.copy()
        self.commanded_gripper = 1.0

    # --- state -------------------------------------------------------------------
    def reset(self, q: np.ndarray = HOME_Q, gripper: float = 1.0) -> None:
        """Teleport to joint angles ``q`` (7,) and openness ``gripper``, at rest."""
        for j, qj in zip(ARM_JOINTS, q, strict=True):
            p.resetJointState(self.body, j, float(qj), physicsClientId=self.client)
        for j in FINGER_JOINTS:
            p.resetJointState(self.body, j, gripper * FINGER_TRAVEL, physicsClientId=self.client)
        self.commanded_q = np.asarray(q, dtype=np.float64).copy()
        self.commanded_gripper = float(gripper)
        self.apply_command(self.commanded_q, gripper)

    def joint_positions(self) -> np.ndarray:
        """(9,) arm joints then the two finger joints."""
        states = p.getJointStates(
            self.body, [*ARM_JOINTS, *FINGER_JOINTS], physicsClientId=self.client
        )
        return np.array([s[0] for s in states])

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (3,) and rotation (3, 3) in the SPEC frame."""
        pos, rot = _link_pose(self.client, self.body, TCP_LINK)
        return pos, rot @ EE_IN_LINK

    def hand_pose(self) -> np.ndarray:
        """(4, 4) pose of ``panda_hand`` (the wrist camera's mount)."""
        pos, rot = _link_pose(self.client, self.body, HAND_LINK)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = rot, pos
        return T

    def gripper_opening(self) -> float:
        """Finger gap over its maximum, in [0, 1]."""
        q = self.joint_positions()[7:]
        return float(np.clip(q.sum() / (2 * FINGER_TRAVEL), 0.0, 1.0))

    # --- control ------------------------------------------------------------------
    def apply_command(self, q: np.ndarray, gripper: float, qdot: np.ndarray | None = None) -> None:
        """Set joint targets: arm positions (7,) with optional feed-forward velocities
        (7,), and both fingers' opening.

        Gains: kp = 0.1 tracks a 0.3 m jump within half a second without ringing (0.3
        rings on the 12 N m wrist joints); the velocity feed-forward removes most of the
        lag a moving target would otherwise leave (8 mm at 0.2 m/s without it).
        """
        vel = np.zeros(7) if qdot is None else np.asarray(qdot, dtype=np.float64)
        p.setJointMotorControlArray(
            self.body, ARM_JOINTS, p.POSITION_CONTROL, targetPositions=np.asarray(q).tolist(),
            targetVelocities=vel.tolist(), forces=ARM_FORCES, positionGains=[0.1] * 7,
            velocityGains=[1.0] * 7, physicsClientId=self.client,
        )  # fmt: skip
        target = float(np.clip(gripper, 0.0, 1.0)) * FINGER_TRAVEL
        p.setJointMotorControlArray(
            self.body, FINGER_JOINTS, p.POSITION_CONTROL, targetPositions=[target, target],
            forces=[FINGER_FORCE] * 2, positionGains=[0.2] * 2, physicsClientId=self.client,
        )  # fmt: skip

    def finger_contacts(self, body: int) -> int:
        """How many fingers (0, 1 or 2) touch ``body``."""
        return sum(
            bool(p.getContactPoints(self.body, body, f, physicsClientId=self.client))
            for f in FINGER_JOINTS
        )
