"""The clip sampler: shapes, ranges, camera bookkeeping under resize/crop, masking tasks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from actionimages.data.lerobot import LeRobotDataset, LeRobotWriter, VideoConfig, WriterConfig
from actionimages.data.sampler import TASKS, ClipConfig, ClipSampler, cameras_of, clip_loader
from actionimages.data.synthetic import synthetic_episode

H264 = WriterConfig(video=VideoConfig.h264())


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampler")
    cal, vid = root / "calibrated", root / "video_only"
    with LeRobotWriter(cal, fps=20, config=H264) as w:
        for s in range(3):  # non-square frames so resize + crop both happen
            w.add_episode(synthetic_episode(num_frames=30 + 10 * s, size=(48, 80), seed=s, fps=20,
                                            views=("front", "left", "top")))  # fmt: skip
    with LeRobotWriter(vid, fps=20, config=H264) as w:
        w.add_episode(synthetic_episode(num_frames=12, size=(48, 80), fps=20, calibrated=False))
    return cal, vid


def test_item_shapes_ranges_and_dtypes(datasets):
    cfg = ClipConfig.debug()
    item = ClipSampler([datasets[0]], cfg)[0]
    V, T, H, W = cfg.num_views, cfg.num_frames, cfg.height, cfg.width
    assert item["video"].shape == (V, T, H, W, 3) and item["actions"].shape == (V, T, H, W, 3)
    assert item["plucker"].shape == (V, T, H // 8, W // 8, 6)
    assert item["K"].shape == (V, T, 3, 3) and item["world_to_camera"].shape == (V, T, 4, 4)
    assert item["position"].shape == (T, 3) and item["gripper"].shape == (T,)
    for key in ("video", "actions"):
        assert item[key].dtype == torch.float32
        assert item[key].min() >= -1 and item[key].max() <= 1
    assert item["tasks"].tolist() == [True] * 4 and len(TASKS) == 4
    assert len(item["views"]) == V and len(set(item["views"])) == V
    assert isinstance(item["instruction"], str) and item["instruction"]


def test_cameras_follow_resize_and_crop(datasets):
    """The blob drawn at the projected end effector is where the updated K puts it."""
    cfg = replace(ClipConfig.debug(), height=64, width=64)
    sampler = ClipSampler([datasets[0]], cfg)
    errors = []
    for i in range(4):
        item = sampler[i]
        for v in range(cfg.num_views):
            cams = cameras_of(item, v)
            video = (item["video"][v].numpy() + 1) * 127.5  # (T, H, W, 3)
            for t in range(0, cfg.num_frames, 4):
                uv, _ = cams[t].project(item["position"][t].double().numpy()[None])
                blob = (video[t, ..., 2] < 120) & (video[t, ..., 0] > 200)  # yellow disc
                if blob.sum() < 5 or not (2 < uv[0, 0] < 62 and 2 < uv[0, 1] < 62):
                    continue  # disc cut by the crop: its centroid is biased
                ys, xs = np.nonzero(blob)
                errors.append(np.hypot(xs.mean() + 0.5 - uv[0, 0], ys.mean() + 0.5 - uv[0, 1]))
            # the action image's red peak is at the same place
            red = item["actions"][v, 0, ..., 0].numpy()
            uv, _ = cams[0].project(item["position"][0].double().numpy()[None])
            if 4 < uv[0, 0] < 60 and 4 < uv[0, 1] < 60:
                i_, j_ = np.unravel_index(red.argmax(), red.shape)
                assert np.hypot(j_ + 0.5 - uv[0, 0], i_ + 0.5 - uv[0, 1]) < 1.0
    assert len(errors) > 10
    assert np.median(errors) < 1.0, np.median(errors)


def test_plucker_maps_are_relative_to_first_view_first_frame(datasets):
    cfg = replace(ClipConfig.debug(), plucker_stride=1)
    item = ClipSampler([datasets[0]], cfg)[1]
    pl = item["plucker"].double()
    d, m = pl[..., :3], pl[..., 3:]
    assert torch.allclose(d.norm(dim=-1), torch.ones(()).double(), atol=1e-5)
    assert m[0, 0].abs().max() < 1e-5  # rays of the reference camera pass through its origin
    H, W = cfg.height, cfg.width
    centre = d[0, 0, H // 2, W // 2]  # near the reference camera's optical axis (+z)
    assert centre[2] > 0.99
    assert m[1].abs().max() > 1e-3  # another view's rays do not


def test_video_only_clips_allow_only_video_generation(datasets):
    item = ClipSampler([datasets[1]], ClipConfig.debug())[0]
    assert item["tasks"].tolist() == [False, False, False, True]
    assert (item["actions"] == -1).all() and (item["plucker"] == 0).all()
    assert not torch.isnan(item["position"]).any()


def test_window_fps_and_padding(datasets):
    cal = LeRobotDataset(datasets[0])
    sampler = ClipSampler([cal], replace(ClipConfig.debug(), num_frames=20, fps=5))
    idx, valid = sampler.frame_indices(cal, 0, np.random.default_rng(0))  # 30 frames at 20 fps
    assert np.all(np.diff(idx[valid]) == 4)  # 20 fps -> 5 fps: every 4th frame
    assert valid.sum() == 8 and (idx[~valid] == 29).all()  # ran out: last frame repeated


def test_mixture_weights_and_determinism(datasets):
    sampler = ClipSampler({datasets[0]: 3.0, datasets[1]: 1.0}, ClipConfig.debug())
    picks = np.array([sampler.pick(i)[0] for i in range(2000)])
    assert abs((picks == 0).mean() - 0.75) < 0.04
    a, b = sampler[5], sampler[5]
    assert torch.equal(a["video"], b["video"]) and a["views"] == b["views"]
    sampler.set_epoch(1)
    assert not all(sampler.pick(i)[:2] == ClipSampler({datasets[0]: 3.0, datasets[1]: 1.0},
                   ClipConfig.debug()).pick(i)[:2] for i in range(20))  # fmt: skip


def test_dataloader_batches_items(datasets):
    sampler = ClipSampler([datasets[0]], replace(ClipConfig.debug(), dtype="float16"))
    batch = next(iter(torch.utils.data.DataLoader(sampler, batch_size=2, num_workers=0)))
    assert batch["video"].shape[:2] == (2, 2) and batch["video"].dtype == torch.float16
    assert batch["tasks"].shape == (2, 4) and len(batch["instruction"]) == 2


def test_worker_processes_deliver_the_same_items(datasets):
    sampler = ClipSampler([datasets[0]], ClipConfig.debug())
    loader = clip_loader(sampler, batch_size=1, num_workers=1)
    first = next(iter(loader))
    assert torch.equal(first["video"][0], sampler[0]["video"])


def test_bad_configs_are_refused(datasets):
    with pytest.raises(ValueError, match="plucker_stride"):
        ClipConfig(height=60)
    with pytest.raises(ValueError, match="weights"):
        ClipSampler({datasets[0]: -1.0})
    cfg = replace(ClipConfig.debug(), render_actions=False)
    assert "actions" not in ClipSampler([datasets[0]], cfg)[0]


def test_a_moving_camera_is_conditioned_on_its_first_pose_only(tmp_path):
    """The Plücker condition of a wrist-like view carries no future pose (SPEC 4)."""
    from actionimages.geometry import Camera

    ep = synthetic_episode(num_frames=20, size=64, seed=3, views=("front", "left"))
    T = ep.num_frames
    moving = [Camera.look_at([1.0, 0.3 + 0.02 * t, 0.6], [0.5, 0.0, 0.1], height=64, width=64)
              for t in range(T)]  # fmt: skip
    ep.cameras["left"] = moving
    with LeRobotWriter(tmp_path / "ds", fps=10, config=H264) as w:
        w.add_episode(ep)
    cfg = replace(ClipConfig.debug(), random_views=False, random_crop=False)
    item = ClipSampler([tmp_path / "ds"], cfg)[0]
    v = item["views"].index("left")
    E = item["world_to_camera"][v]  # (T, 4, 4): the real per-frame poses are kept
    assert not torch.allclose(E[0], E[-1])
    plucker = item["plucker"]  # (V, T, h, w, 6)
    assert torch.equal(plucker[:, 1:], plucker[:, :1].expand_as(plucker[:, 1:]))
