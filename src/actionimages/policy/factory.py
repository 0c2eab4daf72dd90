"""One policy factory and the interface every policy declares.

    make = make_policy("models/tiny", PolicyConfig(loop="closed"))   # or "expert", "random",
    policy = make(env)                                               # "ground-truth", a BC folder
    policy.reset(); action = policy.select_action(obs)

A factory takes the environment because two policies need it: the scripted expert reads
the simulator's state, and the ground-truth planner replays the episode's seed. Model
policies ignore it and are loaded once, when the factory is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from actionimages.policy.policy import PolicyConfig
from actionimages.sim.action import Action

BUILTIN = ("expert", "random", "ground-truth")


@runtime_checkable
class Policy(Protocol):
    """What the evaluation harness drives: the world model, BC, the expert, random."""

    def reset(self) -> None:
        """Forget the last episode (called before each one)."""

    def select_action(self, obs: dict) -> Action:
        """The next absolute end-effector target for observation ``obs``."""


def make_policy(
    spec: str | Path, config: PolicyConfig | None = None, image_size: int = 64, seed: int = 0
) -> Callable[[object], Policy]:
    """A factory ``env -> policy`` for a built-in name or a model folder.

    ``spec``: "expert" (scripted, privileged), "random" (the chance baseline),
    "ground-truth" (the policy fed the expert's own action images), a BC folder
    (``config.json`` of kind "actionimages-bc") or a world-action-model run/checkpoint/
    model folder. ``config`` applies to the world-model policies; BC executes
    ``config.replan_every`` steps per chunk.
    """
    config = config or PolicyConfig()
    if spec == "expert":
        from actionimages.sim.expert import ExpertPolicy

        return lambda env: ExpertPolicy(env)
    if spec == "random":
        from actionimages.sim.expert import RandomPolicy

        return lambda env: RandomPolicy(seed)
    if spec == "ground-truth":
        from actionimages.infer.inputs import clip_config_of
        from actionimages.policy.planners import GroundTruthPlanner
        from actionimages.policy.policy import WorldActionPolicy

        clip = replace(clip_config_of("debug"), height=image_size, width=image_size)
        return lambda env: WorldActionPolicy(GroundTruthPlanner(env, clip), config)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"policy {str(spec)!r} is neither one of {', '.join(BUILTIN)} nor an existing folder"
        )
    if _is_bc_folder(path):
        from actionimages.baselines.bc import BCPolicy

        bc = BCPolicy.load(path, views=config.views, execute=config.replan_every)
        return lambda env: bc
    if path.is_file():
        raise ValueError(
            f"{path} is a file: pass the folder it belongs to (a training run, a checkpoint "
            "or a shipped model folder with config.json)"
        )
    from actionimages.policy.policy import WorldActionPolicy

    model = WorldActionPolicy.from_pretrained(path, config)  # fails fast on a bad folder
    return lambda env: model


def _is_bc_folder(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("kind") == "actionimages-bc"
    except (json.JSONDecodeError, AttributeError):
        return False
