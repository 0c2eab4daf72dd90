"""Shared helpers for the simulator tests (small images, few episodes: 2-core budget)."""

from __future__ import annotations

import numpy as np
import pytest

from actionimages.sim import ExpertPolicy, make_env


def run_expert(env, seed: int) -> bool:
    """Roll the scripted expert out for one episode; True on success."""
    obs = env.reset(seed=seed)
    expert = ExpertPolicy(env)
    expert.reset()
    while env.steps < env.max_steps:
        action = expert.select_action(obs)
        if expert.done:
            break
        obs, _, _, _ = env.step(action)
    return env.success()


@pytest.fixture
def blind_env():
    """Factory for envs without cameras (no rendering: fast physics-only episodes)."""
    envs = []

    def make(task: str, **kw):
        env = make_env(task, cameras=(), image_size=32, **kw)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def mask_near(mask: np.ndarray, uv: np.ndarray, radius: float = 1.0) -> bool:
    """True if a pixel of ``mask`` (H, W) lies within ``radius`` px of the point ``uv``.

    Distances are measured from ``uv`` to the nearest point of each pixel's square
    (pixel (i, j) covers u in [j, j + 1], v in [i, i + 1]).
    """
    ii, jj = np.nonzero(mask)
    du = np.maximum(0.0, np.maximum(jj - uv[0], uv[0] - (jj + 1)))
    dv = np.maximum(0.0, np.maximum(ii - uv[1], uv[1] - (ii + 1)))
    return bool(len(ii)) and bool((np.hypot(du, dv) <= radius).any())
