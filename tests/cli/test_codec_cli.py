import json

import pytest

from actionimages.cli.main import build_parser, main


def test_help_lists_the_demo():
    assert "codec-demo" in build_parser().format_help()


def test_demo_runs_on_the_rlbench_sample(tmp_path, rlbench_episode_dirs, capsys):
    root = rlbench_episode_dirs[0].parent
    assert main(["codec-demo", "--rlbench", str(root), "--out", str(tmp_path), "--size", "64"]) == 0
    table = capsys.readouterr().out
    assert "| episode0 | triangulate |" in table and "| episode0 | paper |" in table
    results = json.loads((tmp_path / "roundtrip.json").read_text())
    for ep in ("episode0", "episode1"):
        assert results[f"{ep}/triangulate"]["position_mm_median"] < 0.01
        assert (
            results[f"{ep}/paper"]["position_mm_median"]
            > results[f"{ep}/triangulate"]["position_mm_median"]
        )
        for suffix in ("_action_images.png", "_action_images.mp4", "_trajectory.png"):
            assert (tmp_path / f"{ep}{suffix}").stat().st_size > 1000


def test_demo_missing_data_is_a_clear_error(tmp_path, capsys):
    code = main(["codec-demo", "--rlbench", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert code == 2
    assert "RLBench sample not found" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["codec-demo", "--size", "0"]])
def test_bad_size_is_refused(argv, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)]) == 2
