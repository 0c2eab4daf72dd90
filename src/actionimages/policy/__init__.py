"""Policies: the world action model as a zero-shot robot policy (open, closed and autoregressive loops).

from actionimages.policy import WorldActionPolicy, PolicyConfig
policy = WorldActionPolicy.from_pretrained("models/tiny", PolicyConfig(loop="closed"))

The types at the policy's boundary are exported here: :class:`Observation` in,
:class:`Action` out (defined with the simulator, which executes it; importing it does not
load PyBullet), and the :class:`Planner` contract for planners of your own.
"""

from actionimages.policy.autoregressive import AutoregressivePlanner
from actionimages.policy.factory import Policy, make_policy
from actionimages.policy.observation import Observation
from actionimages.policy.planners import GroundTruthPlanner, ModelPlanner, Plan, Planner
from actionimages.policy.policy import PolicyConfig, WorldActionPolicy, chunk_actions
from actionimages.sim.action import Action

__all__ = [
    "Action",
    "AutoregressivePlanner",
    "GroundTruthPlanner",
    "ModelPlanner",
    "Observation",
    "Plan",
    "Planner",
    "Policy",
    "PolicyConfig",
    "WorldActionPolicy",
    "chunk_actions",
    "make_policy",
]
