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
    assert (tmp_path / "latent_codec.safetensors").exists()  # the PCA codec fitted on the data
    assert (
        main(
            [
                *args,
                "--steps",
                "3",
                "--set",
                "latent_codec_path=" + str(tmp_path / "latent_codec.safetensors"),
            ]
        )
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
     ("grad_clip=true", "expects a number"), ("blob_loss_weight=-1", "blob_loss_weight must be >= 0"),
     ("blob_loss_weight=inf", "not a finite number: blob_loss_weight")],
)  # fmt: skip
def test_bad_overrides_are_one_line_errors(dataset, tmp_path, capsys, item, message):
    import re

    args = ["train", "--preset", "debug", "--data", str(dataset), "--output-dir", str(tmp_path),
            "--steps", "1", "--set", item]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and "Traceback" not in err and len(err.splitlines()) == 1


def test_nested_overrides_reach_the_model_and_clip_configs():
    from actionimages.cli.main import build_parser
    from actionimages.cli.train import train_config_from_args

    def cfg(*items):
        sets = [x for item in items for x in ("--set", item)]
        return train_config_from_args(
            build_parser().parse_args(["train", "--preset", "tiny-state", *sets])
        )

    c = cfg("model.num_layers=6", "model.patch_size=[1,1,1]", "clip.fps=5", "lr=1e-4")
    assert (c.model.num_layers, c.model.patch_size, c.clip.fps, c.lr) == (6, (1, 1, 1), 5.0, 1e-4)
    assert c.model.first_action_prob == 0.75  # the rest of the preset's model is kept
    assert cfg("model=tiny-lowdim").model.action_representation == "vector"
    for bad, match in (("model.nope=1", "ModelConfig field"), ("lr.x=1", "not a nested config"),
                       ("model.num_layers=abc", "expects an integer")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            cfg(bad)


def test_train_config_holds_configs_and_rejects_unknown_keys():
    from actionimages.clips import ClipConfig
    from actionimages.model.config import ModelConfig
    from actionimages.train.config import TrainConfig

    c = TrainConfig.preset("tiny-state")
    assert isinstance(c.model, ModelConfig) and isinstance(c.clip, ClipConfig)
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown TrainConfig fields: \\['nope'\\]"):
        TrainConfig.from_dict({**c.to_dict(), "nope": 1})
    # a folder written while configs held preset names (the shipped models' "train" section)
    old = {**c.to_dict(), "model": "tiny-state", "clip": "long", "codec_path": "x.safetensors"}
    old.pop("latent_codec_path")
    legacy = TrainConfig.from_dict(old)
    assert legacy.model == ModelConfig.preset("tiny-state") and legacy.clip == ClipConfig.long()
    assert legacy.latent_codec_path == "x.safetensors"


def test_no_resume_moves_the_old_run_aside_and_starts_over(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--preset", "debug", "--data", str(dataset), "--output-dir", str(run),
            "--set", "save_every=2"]  # fmt: skip
    assert main([*args, "--steps", "2"]) == 0
    old_weights = (run / "checkpoints" / "step-0000002" / "model.safetensors").read_bytes()
    assert main([*args, "--steps", "2", "--set", "lr=5e-4", "--no-resume"]) == 0
    out = capsys.readouterr().out
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and f"moved to {aside[0]}" in out
    assert (
        aside[0] / "checkpoints" / "step-0000002" / "model.safetensors"
    ).read_bytes() == old_weights
    new = (run / "checkpoints" / "step-0000002" / "model.safetensors").read_bytes()
    assert new != old_weights  # a fresh run (another lr), not a resumed one
