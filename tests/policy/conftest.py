"""A debug world-action-model checkpoint trained for 2 steps on 2 recorded simulator episodes."""

from __future__ import annotations

import pytest

from actionimages.cli.main import main


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy") / "sim"
    args = ["sim", "record", "--task", "press_button", "--episodes", "2", "--out", str(root),
            "--cameras", "front,left_shoulder", "--image-size", "64", "--video-codec", "h264", "--quiet"]  # fmt: skip
    assert main(args) == 0
    return root


@pytest.fixture(scope="session")
def debug_checkpoint(sim_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("policy") / "run"
    args = ["train", "--preset", "debug", "--data", str(sim_dataset), "--output-dir", str(run),
            "--steps", "2", "--set", "save_every=2"]  # fmt: skip
    assert main(args) == 0
    return run
