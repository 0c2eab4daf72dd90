"""LeRobot v3 writer and reader: round trips, appending, file rollover, bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from actionimages.data.episode import Episode
from actionimages.data.lerobot import LeRobotDataset, LeRobotWriter, VideoConfig, WriterConfig
from actionimages.data.lerobot_format import pose_state
from actionimages.data.synthetic import synthetic_episode

H264 = WriterConfig(video=VideoConfig.h264())


def _episodes(n=3, **kw):
    return [synthetic_episode(num_frames=12 + 5 * i, seed=i, **kw) for i in range(n)]


@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_round_trip_is_exact_in_actions_and_close_in_video(tmp_path, codec):
    eps = _episodes(2, instruction="stack the blocks")
    cfg = WriterConfig(video=VideoConfig().with_codec(codec))
    with LeRobotWriter(tmp_path / "ds", fps=10, robot_type="panda", config=cfg) as w:
        assert w.num_episodes == 0
        assert [w.add_episode(e) for e in eps] == [0, 1]
    ds = LeRobotDataset(tmp_path / "ds")
    assert ds.num_episodes == 2 and ds.num_frames == sum(e.num_frames for e in eps)
    assert ds.info["codebase_version"] == "v3.0" and ds.info["robot_type"] == "panda"
    for k, e in enumerate(eps):
        r = ds.read_episode(k)
        assert np.array_equal(r.position, e.position) and np.array_equal(r.gripper, e.gripper)
        np.testing.assert_allclose(r.rotation, e.rotation, atol=1e-12)
        cols = ds.read_columns(k)
        state = pose_state(e.position, e.rotation, e.gripper)
        assert np.array_equal(cols["observation.state"], state)  # float64 storage: bit-exact
        assert np.array_equal(cols["action"][:-1], state[1:])  # action = next frame's pose
        assert r.instruction == "stack the blocks" and r.task == e.task
        assert r.extra["seed"] == e.extra["seed"]
        for cam in e.images:
            err = np.abs(r.images[cam].astype(int) - e.images[cam])
            assert err.mean() < 4.0, (cam, err.mean())
            for a, b in zip(r.cameras[cam], e.cameras[cam], strict=True):
                assert np.array_equal(a.K, b.K)
                assert np.array_equal(a.world_to_camera, b.world_to_camera)


def test_lazy_decoding_returns_requested_frames(tmp_path):
    ep = synthetic_episode(num_frames=40, seed=3)
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(synthetic_episode(num_frames=17, seed=9))  # ep is the 2nd in the file
        w.add_episode(ep)
    ds = LeRobotDataset(tmp_path)
    full = ds.read_video(1, "front")
    idx = np.array([33, 2, 2, 17, 39])
    part = ds.read_video(1, "front", idx)
    assert np.array_equal(part, full[idx])
    sub = ds.read_episode(1, cameras=["left"], frames=idx)
    assert list(sub.images) == ["left"] and sub.num_frames == 5
    assert np.array_equal(sub.position, ep.position[idx])


def test_reopen_appends_and_features_are_fixed(tmp_path):
    eps = _episodes(3)
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(eps[0])
    with LeRobotWriter(tmp_path, fps=10) as w:
        assert w.num_episodes == 1
        w.add_episode(eps[1])
        w.add_episode(eps[2])
        with pytest.raises(ValueError, match="views"):
            w.add_episode(synthetic_episode(views=("front",)))
        with pytest.raises(ValueError, match="resize"):
            w.add_episode(synthetic_episode(size=32))
        with pytest.raises(ValueError, match="fps"):
            w.add_episode(synthetic_episode(fps=15))
    with pytest.raises(ValueError, match="fps"):
        LeRobotWriter(tmp_path, fps=30)
    ds = LeRobotDataset(tmp_path)
    assert ds.num_episodes == 3
    assert np.array_equal(ds.read_episode(2).position, eps[2].position)
    # every episode shares one data file and one video file per view (LeRobot packing)
    assert len(list(tmp_path.glob("data/*/*.parquet"))) == 1
    assert len(list(tmp_path.glob("videos/observation.images.front/*/*.mp4"))) == 1
    rows = pq.read_table(tmp_path / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    starts = [r["videos/observation.images.front/from_timestamp"] for r in rows]
    ends = [r["videos/observation.images.front/to_timestamp"] for r in rows]
    np.testing.assert_allclose(starts[1:], ends[:-1], atol=1e-6)  # back to back


def test_small_file_limits_roll_over_to_new_files_and_chunks(tmp_path):
    eps = _episodes(3, size=96)
    with LeRobotWriter(tmp_path, fps=10, config=WriterConfig.debug()) as w:
        for e in eps:
            w.add_episode(e)
    # 1 MB limit, tiny files: still packed; force rollover with a limit under the file size
    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert info["chunks_size"] == 2
    ds = LeRobotDataset(tmp_path)
    for k, e in enumerate(eps):
        assert np.array_equal(ds.read_episode(k, load_video=False).position, e.position)

    cfg = WriterConfig(video=VideoConfig.h264(), chunks_size=2, data_files_size_in_mb=1,
                       video_files_size_in_mb=1)  # fmt: skip
    big = tmp_path / "big"
    noisy = [synthetic_episode(num_frames=20, size=256, seed=s) for s in range(3)]
    rng = np.random.default_rng(0)
    for e in noisy:  # noise does not compress: each video is > 1 MB
        e.images["front"][:] = rng.integers(0, 256, e.images["front"].shape, dtype=np.uint8)
    with LeRobotWriter(big, fps=10, config=cfg) as w:
        for e in noisy:
            w.add_episode(e)
    files = sorted(p.relative_to(big).as_posix() for p in big.glob("videos/*front/*/*.mp4"))
    assert files == [
        "videos/observation.images.front/chunk-000/file-000.mp4",
        "videos/observation.images.front/chunk-000/file-001.mp4",
        "videos/observation.images.front/chunk-001/file-000.mp4",
    ]
    ds = LeRobotDataset(big)
    for k, e in enumerate(noisy):
        assert (
            np.abs(ds.read_video(k, "left", [0, 19]).astype(int) - e.images["left"][[0, 19]]).mean()
            < 4
        )


def test_video_only_dataset_has_no_camera_features(tmp_path):
    eps = _episodes(2, calibrated=False)
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        for e in eps:
            w.add_episode(e)
        with pytest.raises(ValueError, match="calibrated=True"):
            w.add_episode(synthetic_episode())
    ds = LeRobotDataset(tmp_path)
    assert ds.calibrated_cameras == [] and not ds.read_episode(0).has_cameras
    assert not any(k.startswith("observation.cameras") for k in ds.features)


def test_uncalibrated_episode_in_calibrated_dataset_reads_without_cameras(tmp_path):
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(synthetic_episode(seed=0))
        w.add_episode(synthetic_episode(seed=1, calibrated=False))
    ds = LeRobotDataset(tmp_path)
    assert ds.read_episode(0).has_cameras and not ds.read_episode(1).has_cameras


def test_episode_without_actions_round_trips_as_video_only(tmp_path):
    e = synthetic_episode(seed=2)
    e = Episode(np.full_like(e.position, np.nan), np.full_like(e.rotation, np.nan),
                np.full_like(e.gripper, np.nan), e.instruction, e.images, fps=e.fps)  # fmt: skip
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(e)
    r = LeRobotDataset(tmp_path).read_episode(0)
    assert not r.has_actions and not r.has_cameras


def test_bad_input_is_refused_with_a_clear_message(tmp_path):
    e = synthetic_episode()
    e.position[3] = np.nan
    with LeRobotWriter(tmp_path / "a", fps=10, config=H264) as w:
        with pytest.raises(ValueError, match="partly NaN"):
            w.add_episode(e)
        # the refused first episode fixed nothing: another set of views is still welcome
        w.add_episode(synthetic_episode(views=("top",), num_frames=5))
    assert LeRobotDataset(tmp_path / "a").camera_names == ["top"]
    with pytest.raises(ValueError, match="frame indices"):
        LeRobotDataset(tmp_path / "a").read_episode(0, frames=[0, 5])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a LeRobot dataset"):
        LeRobotWriter(tmp_path / "junk", fps=10)
    with pytest.raises(ValueError, match="positive fps"):
        LeRobotWriter(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match=r"info\.json"):
        LeRobotDataset(tmp_path / "junk")


def test_corrupt_files_are_reported(tmp_path):
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(synthetic_episode(num_frames=10))
    ds_info = tmp_path / "meta/info.json"
    data = tmp_path / "data/chunk-000/file-000.parquet"
    video = tmp_path / "videos/observation.images.front/chunk-000/file-000.mp4"
    video.write_bytes(video.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"file-000\.mp4"):
        LeRobotDataset(tmp_path).read_video(0, "front")
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ValueError, match="parquet"):
        LeRobotDataset(tmp_path).read_episode(0)
    ds_info.write_text("{ not json")
    with pytest.raises(ValueError, match="JSON"):
        LeRobotDataset(tmp_path)
    ds_info.write_text(json.dumps({"codebase_version": "v2.1"}))
    with pytest.raises(ValueError, match=r"v2\.1"):
        LeRobotDataset(tmp_path)


_CRASHING_CHILD = """
import os, sys
import numpy as np
from actionimages.data import atomic, lerobot_writer
from actionimages.data.lerobot import LeRobotWriter
from actionimages.data.synthetic import synthetic_episode

where, root = sys.argv[1], sys.argv[2]
calls = {"n": 0}
if where == "encode":  # power cut while the second view is being encoded
    real = lerobot_writer.encode_video
    def encode(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os._exit(3)
        return real(*args, **kwargs)
    lerobot_writer.encode_video = encode
else:  # power cut after some of the commit's renames
    stop = int(where.split("-")[1])
    real = atomic._replace
    def replace(src, dst):
        if calls["n"] == stop:
            os._exit(3)
        calls["n"] += 1
        real(src, dst)
    atomic._replace = replace
with LeRobotWriter(root, fps=10) as w:
    w.add_episode(synthetic_episode(num_frames=25, seed=7))
"""


@pytest.mark.parametrize("where", ["encode", "rename-0", "rename-2", "rename-5"])
def test_crash_mid_episode_leaves_a_readable_dataset(tmp_path, where):
    import subprocess
    import sys

    first = synthetic_episode(num_frames=15, seed=1)
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(first)
    proc = subprocess.run([sys.executable, "-c", _CRASHING_CHILD, where, str(tmp_path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert list(tmp_path.rglob(".*.tmp")) or (tmp_path / "meta/.commit-journal.json").exists()

    ds = LeRobotDataset(tmp_path)  # a reader sees the dataset as before the crash
    assert ds.num_episodes == 1
    r = ds.read_episode(0)
    assert np.array_equal(r.position, first.position)
    assert np.abs(r.images["front"].astype(int) - first.images["front"]).mean() < 4

    with LeRobotWriter(tmp_path, fps=10) as w:  # reopening cleans up or rolls forward
        committed = where != "encode"  # the journal was written: the episode is complete
        assert w.num_episodes == 1 + committed, w.recovered
        w.add_episode(synthetic_episode(num_frames=9, seed=8))
    assert not list(tmp_path.rglob(".*.tmp"))
    ds = LeRobotDataset(tmp_path)
    assert ds.num_episodes == 2 + committed
    for k in range(ds.num_episodes):
        ds.read_episode(k)
    if committed:
        np.testing.assert_array_equal(ds.read_episode(1).position,
                                      synthetic_episode(num_frames=25, seed=7).position)  # fmt: skip


def test_stats_are_merged_across_episodes(tmp_path):
    eps = _episodes(3)
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        for e in eps:
            w.add_episode(e)
    stats = json.loads((tmp_path / "meta/stats.json").read_text())
    state = np.concatenate([pose_state(e.position, e.rotation, e.gripper) for e in eps])
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), atol=1e-9)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(0), atol=1e-9)
    np.testing.assert_allclose(stats["observation.state"]["min"], state.min(0))
    assert stats["observation.state"]["count"] == [len(state)]
    assert np.shape(stats["observation.images.front"]["mean"]) == (3, 1, 1)


def _rewrite(path, column, frame, fn):
    """Rewrite one value of a list column of a parquet file (as a flipped byte would)."""
    import pyarrow as pa

    table = pq.read_table(path)
    rows = table.column(column).to_pylist()
    rows[frame] = fn(list(rows[frame]))
    i = table.column_names.index(column)
    table = table.set_column(i, column, pa.array(rows, type=table.schema.field(column).type))
    pq.write_table(table, path)


@pytest.mark.parametrize(
    ("column", "fn", "message"),
    [
        ("observation.state", lambda r: r[:2] + [6.7e307] + r[3:], "position"),
        ("observation.state", lambda r: r[:3] + [3.0 * v for v in r[3:7]] + r[7:], "quaternion"),
        ("action", lambda r: r[:7] + [float("inf")], "NaN/inf"),
        ("observation.state", lambda r: r[:7] + [7.0], "gripper"),
        (
            "observation.cameras.front.world_to_camera",
            lambda r: [2 * v for v in r[:12]] + r[12:],
            "rigid",
        ),
        ("observation.cameras.front.intrinsics", lambda r: [-r[0]] + r[1:], "OpenCV K"),
        (
            "observation.cameras.front.intrinsics",
            lambda r: [float("nan")] * 9,
            "calibration missing",
        ),
    ],
)
def test_implausible_values_are_refused_naming_file_episode_frame_and_feature(
    tmp_path, column, fn, message
):
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(synthetic_episode(num_frames=10))
    data = tmp_path / "data/chunk-000/file-000.parquet"
    _rewrite(data, column, 4, fn)
    with pytest.raises(ValueError, match=message) as err:
        LeRobotDataset(tmp_path).read_episode(0, load_video=False)
    text = str(err.value)
    assert "file-000.parquet" in text and "episode 0" in text and "frame 4" in text
    assert column in text


def test_quantiles_are_written_per_episode_and_merged_as_lerobot_merges_them(tmp_path):
    from actionimages.data.stats import QUANTILES

    eps = _episodes(3)
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        for e in eps:
            w.add_episode(e)
    ds = LeRobotDataset(tmp_path)
    states = [pose_state(e.position, e.rotation, e.gripper) for e in eps]
    counts = np.array([len(s) for s in states], dtype=float)
    for name, q in QUANTILES.items():
        per_episode = [ds.episode_stats(k)["observation.state"][name] for k in range(3)]
        for got, s in zip(per_episode, states, strict=True):
            np.testing.assert_allclose(got, np.quantile(s, q, axis=0), atol=1e-12)
        # LeRobot's rule: the count-weighted mean of the episodes' quantiles
        want = (counts[:, None] * np.stack(per_episode)).sum(0) / counts.sum()
        np.testing.assert_allclose(ds.stats["observation.state"][name], want, atol=1e-12)
        assert ds.stats["observation.images.front"][name].shape == (3, 1, 1)
        assert ds.episode_stats(0)["observation.images.front"][name].shape == (3, 1, 1)
    q01, q99 = ds.stats["action"]["q01"], ds.stats["action"]["q99"]
    assert (q01 <= q99).all()  # what QUANTILES normalisation divides by


def test_fast_colour_conversion_stays_within_3_of_pyav(tmp_path):
    """The vectorised BT.601 path vs PyAV/swscale's rgb24 (what LeRobot decodes with):
    nearest-neighbour chroma and float rounding differ by at most 3/255 (BENCHMARKS.md)."""
    import av

    from actionimages.data.video import frames_to_rgb

    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(synthetic_episode(num_frames=20, size=64))
    path = next((tmp_path / "videos").rglob("*.mp4"))
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    ours = frames_to_rgb(frames).astype(int)
    theirs = np.stack([f.to_ndarray(format="rgb24") for f in frames]).astype(int)
    diff = np.abs(ours - theirs)
    assert diff.max() <= 3 and diff.mean() < 1.5


@pytest.mark.parametrize("keep", [0.95, 0.5, 0.05])
def test_a_truncated_video_is_a_clear_error_naming_the_file(tmp_path, keep):
    with LeRobotWriter(tmp_path, fps=10, config=H264) as w:
        w.add_episode(synthetic_episode(num_frames=30))
    video = next((tmp_path / "videos").rglob("*.mp4"))
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=video.name):
        LeRobotDataset(tmp_path).read_video(0, "front")


def test_a_changed_value_fails_the_episode_checksum(tmp_path):
    """A change the value checks cannot see (a plausible position 1 mm off) is still caught."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from actionimages.data.lerobot import LeRobotWriter, VideoConfig, WriterConfig
    from actionimages.data.synthetic import synthetic_episode

    root = tmp_path / "ds"
    with LeRobotWriter(root, fps=10, config=WriterConfig(video=VideoConfig.h264())) as w:
        for s in range(2):
            w.add_episode(synthetic_episode(num_frames=8, size=32, seed=s, views=("front",)))
    LeRobotDataset(root).read_episode(1, load_video=False)  # intact: reads
    data = next((root / "data").rglob("*.parquet"))
    table = pq.read_table(data)
    state = table.column("observation.state").to_pylist()
    state[10][0] += 0.001  # episode 1, frame 2, x
    col = table.schema.get_field_index("observation.state")
    table = table.set_column(
        col, table.schema.field(col), pa.array(state, type=table.schema.field(col).type)
    )
    pq.write_table(table, data)
    ds = LeRobotDataset(root)
    ds.read_episode(0, load_video=False)  # the other episode is untouched
    with pytest.raises(
        ValueError, match=r"file-000\.parquet, episode 1: frame data do not match the checksum"
    ):
        ds.read_episode(1, load_video=False)
