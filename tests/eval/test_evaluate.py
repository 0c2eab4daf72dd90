"""``actionimages eval``, ``export`` and ``demo`` end to end on a 2-step debug checkpoint."""

from __future__ import annotations

import json

import numpy as np
import torch

from actionimages.cli.main import main
from actionimages.eval.demo import DemoConfig, run_demo
from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline


def test_eval_command_writes_metrics_report_and_videos(debug_checkpoint, tmp_path, capsys):
    args = ["eval", "--checkpoint", str(debug_checkpoint), "--split", "in_domain,zero_shot_cameras",
            "--tasks", "press_button", "--episodes", "1", "--max-steps", "3", "--metrics-episodes", "1",
            "--steps", "2", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["rollouts"]) == {"in_domain", "zero_shot_cameras"}
    assert m["rollouts"]["in_domain"]["tasks"]["press_button"]["episodes"] == 1
    g = m["generation"]
    assert g["clips"] >= 1 and 0 < g["generate/psnr"] < 60 and -1 <= g["a2v/ssim"] <= 1
    report = (tmp_path / "report.md").read_text()
    for table in ("Table 4", "Table 5", "Table 6", "| press_button |"):
        assert table in report
    assert (tmp_path / "in_domain" / "videos" / "press_button_000.mp4").stat().st_size > 0
    assert "metrics.json" in capsys.readouterr().out


def test_eval_of_ground_truth_action_images_matches_the_expert(tmp_path):
    common = ["--split", "in_domain", "--tasks", "close_box", "--episodes", "2", "--videos", "0"]
    assert (
        main(["eval", "--checkpoint", "ground-truth", *common, "--out", str(tmp_path / "gt")]) == 0
    )
    assert main(["eval", "--checkpoint", "expert", *common, "--out", str(tmp_path / "ex")]) == 0

    def rate(d):
        return json.loads((tmp_path / d / "metrics.json").read_text())["rollouts"]["in_domain"][
            "mean_success_rate"
        ]

    assert rate("gt") == rate("ex") == 1.0


def test_export_keeps_the_model_and_the_demo_runs_on_it(debug_checkpoint, tmp_path):
    out = tmp_path / "model"
    assert main(["export", "--run", str(debug_checkpoint), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "latent_codec.safetensors",
    }
    a, b = (
        WorldActionPipeline.from_pretrained(debug_checkpoint),
        WorldActionPipeline.from_pretrained(out),
    )
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    from actionimages.geometry import Camera

    cams = [
        Camera.look_at([1.2, 0.0, 0.6], [0.5, 0, 0.1], fov_y_deg=50.0, height=64, width=64),
        Camera.look_at([0.5, 0.8, 0.6], [0.5, 0, 0.1], fov_y_deg=50.0, height=64, width=64),
    ]
    batch, _ = a.make_batch([img, img], cams, "press the button")
    cfg = SamplingConfig(steps=2)
    assert torch.equal(a(batch, "generate", cfg).actions, b(batch, "generate", cfg).actions)
    m = run_demo(DemoConfig(model=str(out), out=str(tmp_path / "demo"), episodes=1, camera_episodes=1, metrics_episodes=1,
                            metrics_clips=1, workers=1, steps=2, tasks=("press_button",), max_steps=3))  # fmt: skip
    assert set(m["rollouts"]) == {"in_domain", "zero_shot_cameras"} and "generation" in m
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "Baselines" in report and "figures/in_domain_press_button.png" in report
    assert (tmp_path / "demo" / "figures" / "in_domain_press_button.png").stat().st_size > 0


def test_demo_without_a_model_says_what_to_do(tmp_path, capsys):
    assert main(["demo", "--model", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "make train-default" in capsys.readouterr().err


def test_tasks_are_balanced_over_workers_by_step_limit():
    from actionimages.eval.evaluate import balanced_groups
    from actionimages.sim.splits import get_split
    from actionimages.sim.tasks import get_task

    tasks = get_split("in_domain").tasks
    groups = balanced_groups(tasks, 2)
    assert sorted(t for g in groups for t in g) == sorted(tasks)
    loads = [sum(get_task(t).max_steps for t in g) for g in groups]
    # the longest task (push_block, 220 steps) is alone with the cheapest remainder
    assert max(loads) - min(loads) <= min(get_task(t).max_steps for t in tasks)
    assert balanced_groups(tasks[:1], 3) == [tasks[:1]]


def test_two_workers_report_every_task_in_the_config(tmp_path):
    import json

    from actionimages.eval.evaluate import ModelEvalConfig, run_rollouts

    cfg = ModelEvalConfig(checkpoint="random", episodes=1, workers=2, max_steps=2,
                          tasks=("press_button", "open_drawer"), metrics_episodes=0)  # fmt: skip
    res = run_rollouts(cfg, "in_domain", tmp_path)
    assert sorted(res["tasks"]) == ["open_drawer", "press_button"]
    assert sorted(res["config"]["tasks"]) == ["open_drawer", "press_button"]
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert sorted(on_disk["config"]["tasks"]) == ["open_drawer", "press_button"]
