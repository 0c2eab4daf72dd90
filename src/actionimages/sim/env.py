"""The gym-like environment: ``make_env``, ``SimEnv.reset/step/success``.

Control: an action is an absolute end-effector target. ``step`` clips its position to
the workspace box, solves IK from the last commanded joint angles, caps the joint motion
at the Panda's joint speed limits (both reported in ``info``; a far target is reached
over several steps), and moves the joint targets there linearly, with velocity
feed-forward, over ``physics_hz / control_hz`` physics steps (24 at the defaults
240 Hz / 10 Hz) under PyBullet's position controller. Images are rendered once per
control step, after the physics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pybullet as p

from actionimages.geometry import Camera
from actionimages.sim.action import Action
from actionimages.sim.cameras import (
    ALL_VIEWS,
    WRIST_VIEW,
    CameraRange,
    sample_static_cameras,
    wrist_camera,
)
from actionimages.sim.robot import HOME_Q, MAX_JOINT_SPEED, IKSolver, PandaRobot, panda_urdf
from actionimages.sim.scene import Scene, add_distractors, build_world, render
from actionimages.sim.splits import get_split
from actionimages.sim.tasks import Task, TaskContext, get_task
from actionimages.sim.variation import VariationConfig, stream

# Where the TCP may be commanded (metres, world frame): the table's reachable part.
WORKSPACE = ((0.15, -0.6, 0.0), (0.9, 0.6, 0.75))


@dataclass(frozen=True)
class EnvConfig:
    """Everything that defines an environment; ``None`` fields come from ``split``."""

    task: str
    cameras: tuple[str, ...] = ALL_VIEWS
    image_size: tuple[int, int] = (128, 128)  # (H, W)
    split: str = "train"
    camera_range: str | None = None
    variation: VariationConfig | str | None = None
    objects: str | None = None  # "train" or "heldout" object variants
    control_hz: float = 10.0
    physics_hz: float = 240.0
    robot_mesh: str = "low"  # "low" renders ~4.5x faster than "full" (see sim.robot)
    max_steps: int | None = None  # default: the task's own limit
    workspace: tuple = field(default=WORKSPACE)

    def __post_init__(self) -> None:
        get_task(self.task)  # ValueError listing the valid names
        for cam in self.cameras:
            if cam not in ALL_VIEWS:
                raise ValueError(f"unknown camera {cam!r}; valid cameras: {', '.join(ALL_VIEWS)}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras repeat: {self.cameras}")
        h, w = self.image_size
        if int(h) != h or int(w) != w or h < 8 or w < 8:
            raise ValueError(f"image_size must be two integers >= 8, got {self.image_size}")
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise ValueError("physics_hz must be a whole multiple of control_hz")
        split = get_split(self.split)
        if self.camera_range is None:
            object.__setattr__(self, "camera_range", split.camera_range)
        CameraRange.preset(self.camera_range)
        var = self.variation if self.variation is not None else split.variation
        if isinstance(var, str):
            var = VariationConfig.preset(var)
        object.__setattr__(self, "variation", var)
        if self.objects is None:
            object.__setattr__(self, "objects", split.objects)
        if self.objects not in ("train", "heldout"):
            raise ValueError(f"objects must be 'train' or 'heldout', got {self.objects!r}")


def make_env(
    task: str,
    cameras: tuple[str, ...] | list[str] = ALL_VIEWS,
    image_size: int | tuple[int, int] = 128,
    **kwargs,
) -> SimEnv:
    """A :class:`SimEnv` for ``task``; ``kwargs`` are further :class:`EnvConfig` fields."""
    size = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    return SimEnv(EnvConfig(task, tuple(cameras), size, **kwargs))


class SimEnv:
    """One task in one PyBullet client (DIRECT mode, CPU renderer)."""

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.client = p.connect(p.DIRECT)
        self._urdf = panda_urdf(config.robot_mesh)
        self.ik = IKSolver(self._urdf)
        self.task_cls = get_task(config.task)
        self.max_steps = config.max_steps or self.task_cls.max_steps
        self.substeps = round(config.physics_hz / config.control_hz)
        self.task: Task | None = None
        self.scene: Scene | None = None
        self.robot: PandaRobot | None = None
        self.static_cameras: dict[str, Camera] = {}
        self.seed: int | None = None
        self.steps = 0
        self._seed_counter = 0

    # --- episode ------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict:
        """Start an episode; the same ``seed`` gives the same scene, look and cameras."""
        if seed is None:
            seed, self._seed_counter = self._seed_counter, self._seed_counter + 1
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        cfg = self.config
        c = self.client
        p.resetSimulation(physicsClientId=c)
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        p.setTimeStep(1.0 / cfg.physics_hz, physicsClientId=c)
        self.scene = Scene(c)
        build_world(self.scene, self.seed, cfg.variation)
        self.robot = PandaRobot(c, self._urdf)
        self.robot.reset(HOME_Q, 1.0)
        ctx = TaskContext(
            self.scene, self.robot, stream(self.seed, "task"), stream(self.seed, "object_color"),
            object_color=cfg.variation.object_color, palette=cfg.variation.palette,
            objects=cfg.objects,
        )  # fmt: skip
        self.task = self.task_cls(ctx)
        self.task.setup()
        self.task.choose_instruction()
        add_distractors(
            self.scene,
            self.seed,
            cfg.variation,
            self.task.keepout(),
            set(self.task.colors.values()),
        )
        for _ in range(self.substeps):  # let objects settle before the first frame
            self.robot.apply_command(HOME_Q, 1.0)
            p.stepSimulation(physicsClientId=c)
            self.task.update()
        H, W = cfg.image_size
        cam_range = CameraRange.preset(cfg.camera_range)
        self.static_cameras = sample_static_cameras(
            cfg.cameras, H, W, stream(self.seed, "cameras"), cam_range
        )
        self.steps = 0
        return self.observe()

    def step(self, action) -> tuple[dict, float, bool, dict]:
        """Execute one absolute end-effector target; returns (obs, reward, done, info).

        ``reward`` is 1.0 on success else 0.0; ``done`` is success or the step limit.
        """
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        a = Action.from_any(action)
        lo, hi = (np.asarray(b) for b in self.config.workspace)
        target = np.clip(a.position, lo, hi)
        q_goal, ik_error = self.ik.solve(target, a.rotation, self.robot.commanded_q)
        q_start = self.robot.commanded_q
        # The Panda's joint speed limits: a far target is approached over several steps.
        scale = np.max(np.abs(q_goal - q_start) * self.config.control_hz / MAX_JOINT_SPEED)
        if scale > 1.0:
            q_goal = q_start + (q_goal - q_start) / scale
        qdot = (q_goal - q_start) * self.config.control_hz  # the interpolation's velocity
        for s in range(1, self.substeps + 1):
            q = q_start + (s / self.substeps) * (q_goal - q_start)
            self.robot.apply_command(q, a.gripper, qdot if s < self.substeps else None)
            p.stepSimulation(physicsClientId=self.client)
            self.task.update()
        self.robot.commanded_q = q_goal
        self.robot.commanded_gripper = a.gripper
        self.steps += 1
        success = self.success()
        info = {
            "success": success,
            "ik_error": ik_error,
            "workspace_clipped": bool(np.any(target != a.position)),
            "speed_limited": bool(scale > 1.0),
            "steps": self.steps,
            "truncated": self.steps >= self.max_steps and not success,
        }
        return self.observe(), float(success), success or self.steps >= self.max_steps, info

    def success(self) -> bool:
        if self.task is None:
            raise RuntimeError("call reset() first")
        return bool(self.task.success())

    # --- observation ----------------------------------------------------------------
    def cameras(self) -> dict[str, Camera]:
        """This step's ``{name: Camera}`` (the wrist camera moves with the hand)."""
        H, W = self.config.image_size
        out = {}
        for name in self.config.cameras:
            if name == WRIST_VIEW:
                out[name] = wrist_camera(self.robot.hand_pose(), H, W)
            else:
                out[name] = self.static_cameras[name]
        return out

    def render_view(self, name: str, *, segmentation: bool = False) -> dict[str, np.ndarray]:
        """Render one camera now (see :func:`actionimages.sim.scene.render`)."""
        cams = self.cameras()
        if name not in cams:
            raise ValueError(f"camera {name!r} is not in this env's cameras {list(cams)}")
        return render(
            self.client, cams[name], self.scene.lighting, backdrop=self.scene.backdrop,
            segmentation=segmentation,
        )  # fmt: skip

    def observe(self) -> dict:
        """The observation dict (see the package docstring for the keys and shapes)."""
        cams = self.cameras()
        light, back = self.scene.lighting, self.scene.backdrop
        images = {n: render(self.client, c, light, backdrop=back)["rgb"] for n, c in cams.items()}
        pos, rot = self.robot.ee_pose()
        return {
            "images": images,
            "cameras": cams,
            "ee_position": pos,
            "ee_rotation": rot,
            "gripper": self.robot.gripper_opening(),
            "joint_positions": self.robot.joint_positions(),
            "instruction": self.task.instruction,
            "task": self.config.task,
            "step": self.steps,
        }

    def episode_info(self) -> dict:
        """JSON-friendly description of the current episode (seed, variation drawn, task)."""
        return {
            "seed": self.seed,
            "task": self.config.task,
            "split": self.config.split,
            "camera_range": self.config.camera_range,
            "objects": self.config.objects,
            "variation": self.scene.description,
            "task_state": self.task.info(),
        }

    # --- helpers ----------------------------------------------------------------------
    def with_config(self, **changes) -> SimEnv:
        """A new env with some config fields changed (this one stays usable)."""
        return SimEnv(replace(self.config, **changes))

    def close(self) -> None:
        if p.isConnected(self.client):
            p.disconnect(self.client)
        self.ik.close()

    def __enter__(self) -> SimEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
