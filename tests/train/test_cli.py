"""``actionimages train`` end to end on a small synthetic LeRobot dataset read by the data sampler."""

from __future__ import annotations

import pytest

from actionimages.cli.main import main
from actionimages.data.lerobot import LeRobotWriter, VideoConfig, WriterConfig
from actionimages.data.synthetic import synthetic_episode


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data") / "synthetic"
    with LeRobotWriter(root, fps=10, config=WriterConfig(video=VideoConfig.h264())) as w:
        for s in range(2):
            w.add_episode(
                synthetic_episode(num_frames=20, size=64, seed=s, fps=10, views=("front", "left"))
            )
    return root


def test_train_cli_trains_saves_samples_and_resumes(dataset, tmp_path, capsys):
    args = ["train", "--preset", "debug", "--data", str(dataset), "--output-dir", str(tmp_path),
            "--set", "save_every=2", "--set", "sample_every=2", "--set", "sample_steps=2"]  # fmt: skip
    assert main([*args, "--steps", "2"]) == 0
    assert (tmp_path / "checkpoints" / "step-0000002" / "model.safetensors").exists()
    assert (tmp_path / "samples" / "step-0000002.mp4").stat().st_size > 0
    assert (tmp_path / "codec.safetensors").exists()  # the PCA codec fitted on the data
    assert (
        main([*args, "--steps", "3", "--set", "codec_path=" + str(tmp_path / "codec.safetensors")])
        == 0
    )
    assert "step 3" in capsys.readouterr().out


def test_train_cli_rejects_unknown_fields(tmp_path, capsys):
    assert main(["train", "--preset", "debug", "--set", "nope=1"]) == 2
    assert "TrainConfig field" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("item", "message"),
    [("lr=nan", "not a finite number: lr"), ("batch_size=abc", "expects an integer"),
     ("clip=foo", "unknown clip preset"), ("lr=1e38", r"lr must lie in \(0, 1\]"),
     ("grad_clip=true", "expects a number")],
)  # fmt: skip
def test_bad_overrides_are_one_line_errors(dataset, tmp_path, capsys, item, message):
    import re

    args = ["train", "--preset", "debug", "--data", str(dataset), "--output-dir", str(tmp_path),
            "--steps", "1", "--set", item]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and "Traceback" not in err and len(err.splitlines()) == 1
