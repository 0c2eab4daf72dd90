"""The evaluation harness: results files, intervals, videos, policies, errors."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from actionimages.eval.harness import (
    EvalConfig,
    evaluate,
    markdown_table,
    wilson_interval,
)
from actionimages.policy.factory import make_policy
from actionimages.sim import Action

SMALL = dict(cameras=("front", "wrist"), image_size=(48, 48))


def test_wilson_interval_matches_closed_forms():
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(1.959964**2 / (20 + 1.959964**2), abs=1e-9)
    lo, hi = wilson_interval(10, 20)
    assert (lo + hi) / 2 == pytest.approx(0.5) and hi - lo == pytest.approx(0.4014, abs=1e-3)
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and lo == pytest.approx(1 - 1.959964**2 / (20 + 1.959964**2), abs=1e-9)


def test_expert_evaluation_writes_results_table_and_videos(tmp_path):
    cfg = EvalConfig(
        split="in_domain", tasks=("press_button",), episodes=2, videos_per_task=1, **SMALL
    )
    summary = evaluate("expert", cfg, tmp_path, progress=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res == json.loads(json.dumps(summary))
    task = res["tasks"]["press_button"]
    assert task["success_rate"] == 1.0 and task["episodes"] == 2 and task["successes"] == 2
    assert task["seeds"] == [100_000, 100_001]  # the in_domain split's seed range
    assert task["wilson95"][0] < 1.0 == task["wilson95"][1]
    assert res["policy"] == "expert" and res["split"] == "in_domain"
    assert "| press_button | 100% | 2 |" in (tmp_path / "results.md").read_text()
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["press_button_000.mp4"]
    with av.open(str(videos[0])) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (48, 96, 3)  # two views side by side


class HoldStill:
    """A minimal policy object: keeps the gripper where it is."""

    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def select_action(self, obs):
        return {"position": obs["ee_position"], "rotation": obs["ee_rotation"], "gripper": 1.0}


def test_any_policy_object_can_be_evaluated(tmp_path):
    policy = HoldStill()
    cfg = EvalConfig(split="zero_shot", tasks=("close_drawer",), episodes=2, videos_per_task=0,
                     max_steps=5, **SMALL)  # fmt: skip
    res = evaluate(policy, cfg, tmp_path, progress=False)
    assert policy.resets == 2
    assert res["tasks"]["close_drawer"]["success_rate"] == 0.0
    assert res["tasks"]["close_drawer"]["mean_steps"] == 5
    assert "close_drawer | 0%" in markdown_table(res)


def test_random_policy_baseline(tmp_path):
    cfg = EvalConfig(split="in_domain", tasks=("lift_block",), episodes=2, videos_per_task=0,
                     max_steps=30, **SMALL)  # fmt: skip
    res = evaluate("random", cfg, None, progress=False)
    assert res["tasks"]["lift_block"]["success_rate"] == 0.0


def test_overlay_videos_draw_the_actions(tmp_path):
    class Down(HoldStill):
        def select_action(self, obs):
            return Action(obs["ee_position"] - [0, 0, 0.02], obs["ee_rotation"], 0.5)

    cfg = EvalConfig(split="in_domain", tasks=("press_button",), episodes=1, max_steps=3,
                     overlay_actions=True, **SMALL)  # fmt: skip
    evaluate(Down(), cfg, tmp_path, progress=False)
    with av.open(str(tmp_path / "videos" / "press_button_000.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 4
    # Red (position) heatmap peaks show up in the overlaid frames only.
    assert (frames[-1][..., 0].astype(int) - frames[-1][..., 1]).max() > (
        frames[0][..., 0].astype(int) - frames[0][..., 1]
    ).max()


def test_bad_policy_and_task_specs(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither one of expert, random"):
        make_policy(tmp_path / "missing.ckpt")
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"\0")
    with pytest.raises(ValueError, match="is a file"):
        make_policy(ckpt)
    with pytest.raises(ValueError, match="not part of split"):
        evaluate("expert", EvalConfig(split="in_domain", tasks=("pick_cup",)), None, progress=False)
    with pytest.raises(ValueError, match="valid tasks"):
        evaluate("expert", EvalConfig(tasks=("fly",)), None, progress=False)
    with pytest.raises(ValueError, match="policy must be"):
        evaluate(42, EvalConfig(tasks=("press_button",), episodes=1), None, progress=False)
    assert np.isfinite(wilson_interval(0, 0)).all()
