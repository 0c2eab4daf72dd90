"""Policies: the world action model as a zero-shot robot policy (open and closed loop).

from actionimages.policy import WorldActionPolicy, PolicyConfig
policy = WorldActionPolicy.from_pretrained("models/tiny", PolicyConfig(loop="closed"))
"""

from actionimages.policy.factory import Policy, make_policy
from actionimages.policy.observation import Observation
from actionimages.policy.planners import GroundTruthPlanner, ModelPlanner, Plan
from actionimages.policy.policy import PolicyConfig, WorldActionPolicy, chunk_actions

__all__ = [
    "GroundTruthPlanner",
    "ModelPlanner",
    "Observation",
    "Plan",
    "Policy",
    "PolicyConfig",
    "WorldActionPolicy",
    "chunk_actions",
    "make_policy",
]
