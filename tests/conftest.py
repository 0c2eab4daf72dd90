"""Shared test set-up: one torch thread (the machine is shared), deterministic hypothesis."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

# Derandomised so CI and local runs explore the same examples; no deadline because the
# machine is shared and timings are noisy.
settings.register_profile(
    "default",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

RLBENCH_ROOT = Path(
    os.environ.get(
        "ACTIONIMAGES_RLBENCH",
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rlbench",
    )
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def rlbench_episode_dirs() -> list[Path]:
    """The real RLBench sample's episode folders (skips when the sample is absent)."""
    from actionimages.data.rlbench import find_episodes

    if not RLBENCH_ROOT.exists():
        pytest.skip(f"RLBench sample not found at {RLBENCH_ROOT} (set ACTIONIMAGES_RLBENCH)")
    return find_episodes(RLBENCH_ROOT)


# --- a debug world-action-model checkpoint (policy, eval and demo tests) ---------------


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory):
    """2 recorded press_button episodes, 2 views at 64 x 64."""
    from actionimages.cli.main import main

    root = tmp_path_factory.mktemp("policy") / "sim"
    args = ["sim", "record", "--task", "press_button", "--episodes", "2", "--out", str(root),
            "--cameras", "front,left_shoulder", "--image-size", "64", "--video-codec", "h264", "--quiet"]  # fmt: skip
    assert main(args) == 0
    return root


@pytest.fixture(scope="session")
def debug_checkpoint(sim_dataset, tmp_path_factory):
    """A debug-preset run trained for 2 steps on ``sim_dataset``."""
    from actionimages.cli.main import main

    run = tmp_path_factory.mktemp("policy") / "run"
    args = ["train", "--preset", "debug", "--data", str(sim_dataset), "--output-dir", str(run),
            "--steps", "2", "--set", "save_every=2"]  # fmt: skip
    assert main(args) == 0
    return run


@pytest.fixture(scope="session")
def debug_ar_checkpoint(sim_dataset, tmp_path_factory):
    """The debug preset in the autoregressive mode (chunks of 1 latent frame), 2 steps."""
    from actionimages.cli.main import main

    run = tmp_path_factory.mktemp("policy-ar") / "run"
    args = ["train", "--preset", "debug", "--data", str(sim_dataset), "--output-dir", str(run),
            "--steps", "2", "--set", "save_every=2", "--set", "model.chunk_frames=1"]  # fmt: skip
    assert main(args) == 0
    return run
