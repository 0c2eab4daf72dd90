"""Recording expert demos into a LeRobot v3 dataset: content, seeds, resuming, guards."""

from __future__ import annotations

import numpy as np
import pytest

from actionimages.data.lerobot import LeRobotDataset
from actionimages.sim.record import RecordConfig, record
from actionimages.sim.splits import get_split

CFG = RecordConfig(
    tasks=("press_button", "lift_block"),
    episodes=3,
    cameras=("front", "wrist"),
    image_size=(48, 48),
    video_codec="h264",
)


def test_record_writes_calibrated_episodes_and_resumes(tmp_path):
    out = tmp_path / "demos"
    first = record(CFG, out, progress=False, stop_after=2)  # "interrupted" after two
    assert first["episodes"] == 2 and first["written"] == 2
    again = record(CFG, out, progress=False)  # resumes with episode 2
    assert again["episodes"] == 3 and again["written"] == 1
    assert record(CFG, out, progress=False)["written"] == 0  # already complete

    ds = LeRobotDataset(out)
    assert ds.num_episodes == 3 and ds.info["robot_type"] == "panda" and ds.info["fps"] == 10
    split = get_split("train")
    for k in range(3):
        ep = ds.read_episode(k)
        assert ep.task == CFG.tasks[k % 2]  # tasks alternate by episode index
        assert ep.extra["seed"] in [split.episode_seed(k, a) for a in range(CFG.max_attempts)]
        assert ep.extra["split"] == "train" and ep.extra["success"] is True
        T = ep.num_frames
        assert ep.images["front"].shape == (T, 48, 48, 3) and len(ep.cameras["wrist"]) == T
        # Static view: one camera repeated; wrist view: moves with the hand.
        fronts = np.stack([c.world_to_camera for c in ep.cameras["front"]])
        wrists = np.stack([c.world_to_camera for c in ep.cameras["wrist"]])
        assert np.ptp(fronts, axis=0).max() < 1e-9 and np.ptp(wrists, axis=0).max() > 0.01
        assert len(ep.extra["commanded"]) == T and ep.extra["commanded"][-1] is None
        assert ep.instruction and ep.gripper.min() < 0.6  # closed (on a 4.5 cm block: 0.56)


def test_recording_is_reproducible_per_seed(tmp_path):
    one = RecordConfig(tasks=("reach_target",), episodes=1, split="zero_shot_tasks",
                       cameras=("front",), image_size=(32, 32), video_codec="h264")  # fmt: skip
    record(one, tmp_path / "a", progress=False)
    record(one, tmp_path / "b", progress=False)
    a, b = (
        LeRobotDataset(tmp_path / "a").read_episode(0),
        LeRobotDataset(tmp_path / "b").read_episode(0),
    )
    assert np.array_equal(a.position, b.position) and a.instruction == b.instruction


def test_recording_a_heldout_task_into_training_is_refused(tmp_path):
    bad = RecordConfig(tasks=("pick_cup",), episodes=1, split="train")
    with pytest.raises(ValueError, match=r"held-out|not in split"):
        record(bad, tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="valid tasks"):
        record(RecordConfig(tasks=("juggle",), episodes=1, allow_heldout=True), tmp_path / "y")
    assert not (tmp_path / "x").exists()
