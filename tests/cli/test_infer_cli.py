"""``actionimages generate | a2v | label`` on a dataset episode and from files (debug checkpoint)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from actionimages.cli.main import main
from actionimages.data.lerobot import LeRobotDataset


@pytest.mark.parametrize("mode", ["generate", "a2v", "label"])
def test_modes_on_a_dataset_episode(mode, debug_checkpoint, sim_dataset, tmp_path):
    args = [mode, "--checkpoint", str(debug_checkpoint), "--data", str(sim_dataset), "--episode", "1",
            "--start", "3", "--steps", "2", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / f"{mode}.mp4").stat().st_size > 0
    result = json.loads((tmp_path / "trajectory.json").read_text())
    assert result["mode"] == mode and result["model_calls"] == 2
    assert len(result["recorded"]["position"]) == 9  # the clip's recorded trajectory
    if mode != "a2v":
        assert "decoded" in result  # a trajectory or the decoder's reason why not


def test_generate_from_image_files(debug_checkpoint, sim_dataset, tmp_path):
    ep = LeRobotDataset(sim_dataset).read_episode(0, frames=[0])
    views = sorted(ep.images)
    files = []
    for v in views:
        Image.fromarray(ep.images[v][0]).save(tmp_path / f"{v}.png")
        files.append(str(tmp_path / f"{v}.png"))
    (tmp_path / "cams.json").write_text(json.dumps([ep.cameras[v][0].to_dict() for v in views]))
    args = ["generate", "--checkpoint", str(debug_checkpoint), "--images", *files, "--cameras",
            str(tmp_path / "cams.json"), "--instruction", "press the button", "--steps", "2", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "o" / "generate.mp4").stat().st_size > 0


def test_a2v_without_a_trajectory_is_refused(debug_checkpoint, tmp_path, capsys):
    img = np.zeros((64, 64, 3), np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    from actionimages.geometry import Camera

    cam = Camera.look_at([1.2, 0.0, 0.6], [0.5, 0.0, 0.1], height=64, width=64)
    (tmp_path / "cams.json").write_text(json.dumps([cam.to_dict()]))
    args = ["a2v", "--checkpoint", str(debug_checkpoint), "--images", str(tmp_path / "a.png"), "--cameras",
            str(tmp_path / "cams.json"), "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 2
    assert "--trajectory" in capsys.readouterr().err


def _files_of_episode(sim_dataset, tmp_path, frames: int):
    """PNGs of frame 0, MP4s of the first ``frames`` frames, cameras and trajectory JSON."""
    from actionimages.viz import write_mp4

    ep = LeRobotDataset(sim_dataset).read_episode(0, frames=list(range(frames)))
    views = sorted(ep.images)[:2]
    pngs, mp4s = [], []
    for v in views:
        Image.fromarray(ep.images[v][0]).save(tmp_path / f"{v}.png")
        pngs.append(str(tmp_path / f"{v}.png"))
        mp4s.append(str(write_mp4(tmp_path / f"{v}.mp4", ep.images[v], fps=10)))
    (tmp_path / "cams.json").write_text(json.dumps([ep.cameras[v][0].to_dict() for v in views]))
    traj = {"position": ep.position.tolist(), "rotation": ep.rotation.tolist(),
            "gripper": ep.gripper.tolist()}  # fmt: skip
    (tmp_path / "traj.json").write_text(json.dumps(traj))
    return pngs, mp4s


def test_a2v_from_image_files_and_a_trajectory(debug_checkpoint, sim_dataset, tmp_path):
    pngs, _ = _files_of_episode(sim_dataset, tmp_path, 9)
    args = ["a2v", "--checkpoint", str(debug_checkpoint), "--images", *pngs, "--cameras",
            str(tmp_path / "cams.json"), "--trajectory", str(tmp_path / "traj.json"),
            "--steps", "2", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "o" / "a2v.mp4").stat().st_size > 0


def test_label_from_video_files(debug_checkpoint, sim_dataset, tmp_path):
    _, mp4s = _files_of_episode(sim_dataset, tmp_path, 12)  # longer than the clip: cut to 9
    args = ["label", "--checkpoint", str(debug_checkpoint), "--videos", *mp4s, "--cameras",
            str(tmp_path / "cams.json"), "--instruction", "open the drawer", "--steps", "2",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "o" / "label.mp4").stat().st_size > 0
    assert "decoded" in json.loads((tmp_path / "o" / "trajectory.json").read_text())


def test_label_of_a_corrupt_video_names_the_file(debug_checkpoint, sim_dataset, tmp_path, capsys):
    _, mp4s = _files_of_episode(sim_dataset, tmp_path, 9)
    data = tmp_path / "bad.mp4"
    data.write_bytes(b"not a video at all" * 10)
    args = ["label", "--checkpoint", str(debug_checkpoint), "--videos", str(data), mp4s[1],
            "--cameras", str(tmp_path / "cams.json"), "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 2
    assert "bad.mp4" in capsys.readouterr().err


def test_a_model_folder_brings_its_own_sampling_defaults(debug_checkpoint, sim_dataset, tmp_path):
    from actionimages.infer.loading import export_model
    from actionimages.infer.pipeline import WorldActionPipeline
    from actionimages.policy import WorldActionPolicy

    folder = export_model(debug_checkpoint, tmp_path / "model")
    info = json.loads((folder / "config.json").read_text())
    assert set(info["inference"]["sampling"]) >= {"steps", "guidance", "shift", "scheduler"}
    info["inference"]["sampling"]["steps"] = 3
    (folder / "config.json").write_text(json.dumps(info))
    assert WorldActionPipeline.from_pretrained(folder).default_sampling.steps == 3
    assert WorldActionPolicy.from_pretrained(folder).planner.sampling.steps == 3
    base = ["generate", "--checkpoint", str(folder), "--data", str(sim_dataset), "--episode", "0"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0  # no --steps: the folder's 3
    assert json.loads((tmp_path / "a" / "trajectory.json").read_text())["model_calls"] == 3
    assert main([*base, "--steps", "2", "--out", str(tmp_path / "b")]) == 0  # a flag wins
    assert json.loads((tmp_path / "b" / "trajectory.json").read_text())["model_calls"] == 2


def test_bad_input_files_are_one_line_errors(tmp_path, capsys):
    import shutil

    import numpy as np
    from PIL import Image

    from actionimages.geometry import Camera

    root = Path(__file__).resolve().parents[2] / "models" / "tiny"
    if not root.is_dir():
        pytest.skip("models/tiny not present")
    cam = Camera.look_at([1.2, 0, 0.6], [0.5, 0, 0.1], height=64, width=64).to_dict()
    (tmp_path / "cams.json").write_text(json.dumps([cam, cam]))
    (tmp_path / "bad.png").write_text("not an image")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "traj.json").write_text(json.dumps({"position": [[0.5, 0, 0.2]], "gripper": [1.0]}))
    model = tmp_path / "model"
    shutil.copytree(root, model)
    info = json.loads((model / "config.json").read_text())
    info["model"]["bogus"] = 1
    (model / "config.json").write_text(json.dumps(info))
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    cams, out = ["--cameras", str(tmp_path / "cams.json")], ["--out", str(tmp_path / "o")]
    cases = [
        (["generate", "--checkpoint", str(root), "--images", *[str(tmp_path / "bad.png")] * 2, *cams], "bad.png: not a readable image"),
        (["a2v", "--checkpoint", str(root), "--images", *[str(tmp_path / "ok.png")] * 2, *cams,
          "--trajectory", str(tmp_path / "traj.json")], r"traj.json: trajectory lacks \['rotation'\]"),
        (["generate", "--checkpoint", str(model), "--images", *[str(tmp_path / "ok.png")] * 2, *cams], r"config.json: unknown ModelConfig fields: \['bogus'\]"),
        (["generate", "--checkpoint", str(broken), "--images", *[str(tmp_path / "ok.png")] * 2, *cams], "model.safetensors: unreadable safetensors file"),
    ]  # fmt: skip
    for argv, message in cases:
        assert main([*argv, *out]) == 2, argv
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "error:" in line]  # not the loaders' bars
        assert len(lines) == 1 and re.search(message, lines[0]) and "Traceback" not in err, err
