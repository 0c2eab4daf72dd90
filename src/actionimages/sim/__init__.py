"""The built-in multi-view manipulation benchmark (PyBullet, CPU only).

A Franka Panda (``pybullet_data``) on a table, ten RLBench-style tasks with scripted
experts, four static cameras and a wrist camera in the SPEC's OpenCV convention,
Colosseum-style visual variation and in-domain / zero-shot splits.

Quick start::

    from actionimages.sim import make_env, Action

    env = make_env("pick_cup", cameras=("front", "overhead", "wrist"), image_size=128)
    obs = env.reset(seed=0)
    expert = ExpertPolicy(env)          # or any object with reset() and select_action(obs)
    expert.reset()
    done = False
    while not done:
        action = expert.select_action(obs)  # an Action (or a dict with the same keys)
        obs, reward, done, info = env.step(action)
    print(obs["instruction"], env.success())

Observation (``env.reset`` / ``env.step``), a dict:

- ``images[cam]``: (H, W, 3) uint8 RGB, one per camera in ``cameras``.
- ``cameras[cam]``: :class:`actionimages.geometry.Camera` (``K`` (3, 3),
  ``world_to_camera`` (4, 4), OpenCV convention, pixel centres at (j + 0.5, i + 0.5));
  static views stay fixed within an episode, ``"wrist"`` moves with the hand.
- ``ee_position`` (3,), ``ee_rotation`` (3, 3) (columns e_x, e_y, e_z; e_z = approach),
  ``gripper`` (float, 1 = open): the measured end-effector state.
- ``joint_positions`` (9,): seven arm joints, two finger joints (metres).
- ``instruction`` (str), ``task`` (str), ``step`` (int).

Action: :class:`Action` ``(position (3,), rotation (3, 3), gripper in [0, 1])``, an
absolute end-effector target in the world frame (the robot base is the origin, z up,
table top at z = 0). ``env.step`` returns ``(obs, reward, done, info)`` with reward 1.0
on success, ``done`` on success or at the task's step limit (10 Hz control).

End-effector frame: the Panda's ``panda_grasptarget`` link (0.105 m from the hand's
flange along its z axis, between the fingertips), rotated +90 deg about z so that e_x
is the hand's +y, the direction of the fingers' motion (:mod:`actionimages.sim.robot`).

Modules: ``env`` (environment), ``robot`` (Panda, IK, control), ``cameras`` (views,
ranges, OpenGL <-> OpenCV), ``scene`` (world, assets, distractors, rendering),
``variation`` (Colosseum-style factors), ``tasks`` (tasks and experts), ``expert``
(waypoint follower, expert and random policies), ``splits`` (in-domain and zero-shot
settings), ``record`` (LeRobot recording), ``preview`` (figures).
"""

# Lazy (PEP 562): ``actionimages.sim.action`` (the Action type the policy returns) and
# the waypoint vocabulary import without PyBullet; the environment loads it on first use.
_EXPORTS = {
    "Action": "action", "ALL_VIEWS": "cameras", "CAMERA_RANGES": "cameras",
    "STATIC_VIEWS": "cameras", "CameraRange": "cameras", "EnvConfig": "env", "SimEnv": "env",
    "make_env": "env", "ExpertPolicy": "expert", "RandomPolicy": "expert",
    "HELDOUT_TASKS": "splits", "SPLITS": "splits", "TRAIN_TASKS": "splits", "Split": "splits",
    "get_split": "splits", "SIM_TASKS": "tasks", "get_task": "tasks",
    "VARIATION_PRESETS": "variation", "VariationConfig": "variation",
}  # fmt: skip


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'actionimages.sim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"actionimages.sim.{_EXPORTS[name]}"), name)


__all__ = [
    "ALL_VIEWS",
    "CAMERA_RANGES",
    "HELDOUT_TASKS",
    "SIM_TASKS",
    "SPLITS",
    "STATIC_VIEWS",
    "TRAIN_TASKS",
    "VARIATION_PRESETS",
    "Action",
    "CameraRange",
    "EnvConfig",
    "ExpertPolicy",
    "RandomPolicy",
    "SimEnv",
    "Split",
    "VariationConfig",
    "get_split",
    "get_task",
    "make_env",
]
