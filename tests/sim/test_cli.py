"""``actionimages sim ...`` from the command line."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from actionimages.cli.main import build_parser, main
from actionimages.data.lerobot import LeRobotDataset


def test_help_lists_sim_and_its_subcommands(capsys):
    assert "sim" in build_parser().format_help()
    assert main(["sim", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "pick_cup" in info["tasks"] and "zero_shot" in info["splits"]
    assert info["splits"]["in_domain"]["camera_range"] == "train"


def test_record_then_eval(tmp_path, capsys):
    data, out = tmp_path / "demos", tmp_path / "eval"
    args = ["sim", "record", "--task", "press_button", "--episodes", "1", "--out", str(data),
            "--cameras", "front", "--image-size", "32", "--video-codec", "h264", "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert LeRobotDataset(data).num_episodes == 1
    args = ["sim", "eval", "--policy", "expert", "--tasks", "press_button", "--episodes", "1",
            "--out", str(out), "--cameras", "front", "--image-size", "32", "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert "| press_button | 100% |" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["tasks"]["press_button"]["episodes"] == 1


def test_render_writes_a_grid(tmp_path):
    png = tmp_path / "grid.png"
    args = ["sim", "render", "--out", str(png), "--tasks", "reach_target,open_drawer",
            "--cameras", "front,wrist", "--image-size", "32"]  # fmt: skip
    assert main(args) == 0
    assert Image.open(png).size == (110 + 2 * 32, 16 + 2 * 32)


def test_errors_are_clear(tmp_path, capsys):
    code = main(["sim", "eval", "--policy", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path)])
    assert code == 2 and "neither one of expert, random" in capsys.readouterr().err
    code = main(
        ["sim", "record", "--task", "pick_cup", "--episodes", "1", "--out", str(tmp_path / "d")]
    )
    assert code == 2 and "held-out" in capsys.readouterr().err
    code = main(["sim", "eval", "--policy", "expert", "--tasks", "nap", "--out", str(tmp_path)])
    assert code == 2 and "valid tasks" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--image-size", "63"], "image size must be even"), (["--task", "press_buton"], "did you mean 'press_button'"),
     (["--cameras", "front,nope"], r"unknown camera\(s\) \['nope'\]")],
)  # fmt: skip
def test_record_checks_its_arguments_before_recording(tmp_path, capsys, extra, message):
    import re

    from actionimages.cli.main import main

    args = [
        "sim",
        "record",
        "--task",
        "press_button",
        "--episodes",
        "1",
        "--out",
        str(tmp_path / "d"),
    ]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and len(err.splitlines()) == 1
    assert not (tmp_path / "d").exists()  # nothing written
