"""``actionimages data ...`` from the shell: import, info, preview, and bad input."""

from __future__ import annotations

from actionimages.cli.main import main


def test_import_info_preview(rlbench_episode_dirs, tmp_path, capsys):
    task = rlbench_episode_dirs[0].parents[3]
    ds = tmp_path / "ds"
    assert (
        main(["data", "import-rlbench", str(task), str(ds), "--codec", "h264", "--limit", "1"]) == 0
    )
    assert main(["data", "info", str(ds)]) == 0
    out = capsys.readouterr().out
    assert "episodes    1" in out and "h264" in out and "calibrated" in out
    assert main(["data", "preview", str(ds), "--episode", "0", "--out", str(tmp_path / "p")]) == 0
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == ["episode0_preview.mp4", "episode0_projection.png", "episode0_trajectory.png"]


def test_bad_input_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "info.json" in err and "Traceback" not in err
    assert main(["data", "import-droid", str(tmp_path), str(tmp_path / "o")]) == 2
