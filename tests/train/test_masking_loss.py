"""Each task puts the loss on exactly the frames it predicts, with the right timesteps."""

from __future__ import annotations

import pytest
import torch

from actionimages.model.masking import (
    PREDICTED,
    TASKS,
    UNKNOWN,
    VISIBLE,
    sample_tasks,
    task_frame_states,
)
from actionimages.model.packing import frame_roles, pack_camera, pack_clips, unpack_clips
from tests.model.helpers import debug_wam, synthetic_batch

EXPECTED = {  # (video frames after the first, action frames)
    "joint": (PREDICTED, PREDICTED),
    "action_to_video": (PREDICTED, VISIBLE),
    "video_to_action": (VISIBLE, PREDICTED),
    "video_only": (PREDICTED, UNKNOWN),
}


class Probe(torch.nn.Module):
    """Stands in for the transformer: records its inputs, returns a leaf tensor to differentiate."""

    def __init__(self, wam):
        super().__init__()
        self.config, self.anchor = wam.transformer.config, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, timestep, context, camera=None):
        self.x, self.timestep = x, timestep
        self.out = torch.zeros_like(x, requires_grad=True)
        return self.out + 0 * self.anchor


@pytest.mark.parametrize("task", TASKS)
def test_loss_lands_on_exactly_the_predicted_frames(task):
    wam = debug_wam()
    enc = wam.encode_batch(synthetic_batch(2))
    wam.transformer = probe = Probe(wam)
    tasks = torch.full((2,), TASKS.index(task))
    loss, info = wam.loss(enc, torch.Generator().manual_seed(0), (1, 1, 1, 1), tasks=tasks)
    loss.backward()
    V, Fr = enc.num_views, enc.frames_per_clip
    modality, _, index = frame_roles(V, Fr)
    video_state, action_state = EXPECTED[task]
    want = torch.where(modality == 0, video_state, action_state)
    want[(modality == 0) & (index == 0)] = VISIBLE  # first frame of every video clip
    assert torch.equal(info["states"][0], want) and torch.equal(
        task_frame_states(task, V, Fr), want
    )

    grad = probe.out.grad.abs().sum(dim=(1, 3, 4))  # (B, 2VF) gradient reaching each frame
    assert torch.equal(grad > 0, (want == PREDICTED).expand(2, -1))

    # per-token timesteps: 0 on visible frames, 1000 on unknown ones, t on predicted ones
    tpf = probe.timestep.shape[1] // want.numel()
    per_frame = probe.timestep.view(2, -1, tpf)  # (B, 2VF, tokens per frame)
    assert (per_frame[:, want == VISIBLE] == 0).all()
    assert (per_frame[:, want == UNKNOWN] == 1000).all()
    sigma = info["sigma"][:, None, None] * 1000
    assert torch.allclose(
        per_frame[:, want == PREDICTED], sigma.expand_as(per_frame[:, want == PREDICTED])
    )

    # visible frames reach the model clean, unknown frames as pure noise
    clean = enc.latents
    vis = want == VISIBLE
    assert torch.equal(probe.x[:, :, vis], clean[:, :, vis])
    if (want == UNKNOWN).any():
        assert not torch.allclose(probe.x[:, :, want == UNKNOWN], clean[:, :, want == UNKNOWN])


def test_task_sampling_respects_allowed_tasks_and_ratios():
    g = torch.Generator().manual_seed(0)
    allowed = torch.tensor([[False, False, False, True]] * 500 + [[True] * 4] * 4000)
    tasks = sample_tasks(allowed, (0.85, 0.05, 0.05, 0.05), g)
    assert (tasks[:500] == 3).all()
    freq = torch.bincount(tasks[500:], minlength=4).float() / 4000
    assert abs(freq[0] - 0.85) < 0.03 and (freq[1:] - 0.05).abs().max() < 0.02
    with pytest.raises(ValueError):
        sample_tasks(torch.tensor([[True, False, False, False]]), (0, 1, 1, 1), g)


def test_packing_order_and_round_trip():
    B, V, C, Fr = 1, 3, 2, 2
    video = torch.arange(B * V * C * Fr).float().view(B, V, C, Fr, 1, 1)
    actions = -video - 1
    packed = pack_clips(video, actions)  # (B, C, 2VF, 1, 1)
    # clip order [video_v1, action_v1, video_v2, action_v2, video_v3, action_v3]
    assert torch.equal(packed[0, 0, :Fr], video[0, 0, 0, :])
    assert torch.equal(packed[0, 0, Fr : 2 * Fr], actions[0, 0, 0, :])
    assert torch.equal(packed[0, 0, 2 * Fr : 3 * Fr], video[0, 1, 0, :])
    v2, a2 = unpack_clips(packed, V)
    assert torch.equal(v2, video) and torch.equal(a2, actions)
    cam = torch.arange(V).float().view(1, V, 1, 1, 1, 1).expand(1, V, Fr, 1, 1, 1)
    assert pack_camera(cam)[0, :, 0, 0, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]


def test_release_camera_layout_runs_end_to_end():
    """camera_encoder="frame_pooled": Plücker direction and moment / 3 encoded by the codec, per frame."""
    wam = debug_wam(camera_encoder="frame_pooled", camera_pool=(4, 4, 4))
    enc = wam.encode_batch(synthetic_batch(2))
    C = wam.latent_codec.latent_channels
    assert enc.camera.shape == (2, 2 * 2 * enc.frames_per_clip, 2 * C, 4, 4)  # (B, 2VF, 2C, h, w)
    loss, _ = wam.loss(enc, torch.Generator().manual_seed(0), (1, 1, 1, 1))
    loss.backward()
    assert (
        torch.isfinite(loss)
        and wam.transformer.blocks[0].cam_encoder.layers[2].weight.grad.abs().sum() > 0
    )


@pytest.mark.parametrize("task", TASKS)
def test_known_first_action_is_visible_only_where_actions_are_predicted(task):
    V, Fr = 2, 3
    modality, _, index = frame_roles(V, Fr)
    plain, known = task_frame_states(task, V, Fr), task_frame_states(task, V, Fr, True)
    first_action = (modality == 1) & (index == 0)
    assert torch.equal(plain[~first_action], known[~first_action])
    if task in ("joint", "video_to_action"):
        assert (known[first_action] == VISIBLE).all() and (plain[first_action] == PREDICTED).all()
    else:
        assert torch.equal(plain, known)


def test_first_action_prob_switches_the_condition_per_sample():
    wam = debug_wam(first_action_prob=0.5)
    enc = wam.encode_batch(synthetic_batch(64))
    wam.transformer = Probe(wam)
    tasks = torch.zeros(64, dtype=torch.long)  # joint
    _, info = wam.loss(enc, torch.Generator().manual_seed(0), (1, 1, 1, 1), tasks=tasks,
                       first_action_prob=0.5)  # fmt: skip
    modality, _, index = frame_roles(enc.num_views, enc.frames_per_clip)
    given = (info["states"][:, (modality == 1) & (index == 0)] == VISIBLE).all(1)  # (B,)
    assert 10 < int(given.sum()) < 54  # about half, and the rest keep the paper's setting


def test_padded_latent_frames_carry_no_loss():
    from actionimages.model.wam import latent_frame_valid

    valid = torch.ones(2, 9, dtype=torch.bool)
    valid[1, 6:] = False  # the window ran past the episode's end at frame 6
    packed = latent_frame_valid(valid, 4, 2)  # (B, 2VF) with F = 3
    assert packed[0].all()
    assert packed[1].tolist() == [True, True, False] * 4  # frames 5-8 hold padding
    wam = debug_wam()
    batch = synthetic_batch(2)
    T = batch["video"].shape[2]
    batch["frame_valid"] = torch.ones(2, T, dtype=torch.bool)
    batch["frame_valid"][1, T - 1 :] = False  # the last latent frame of item 1 is padding
    packed = latent_frame_valid(batch["frame_valid"], 4, 2)
    assert not packed[1].all() and packed[0].all()
    enc = wam.encode_batch(batch)
    wam.transformer = probe = Probe(wam)
    loss, info = wam.loss(enc, torch.Generator().manual_seed(0), (1, 0, 0, 0))
    loss.backward()
    grad = probe.out.grad.abs().sum(dim=(1, 3, 4))  # (B, 2VF)
    assert (grad[1, ~packed[1]] == 0).all() and (grad[0, info["states"][0] == PREDICTED] > 0).all()


def test_frame_deltas_are_an_exact_round_trip_and_zero_for_a_still_clip():
    from actionimages.model.packing import from_frame_deltas, to_frame_deltas

    x = torch.randn(2, 4, 2 * 2 * 3, 2, 2)
    assert torch.allclose(from_frame_deltas(to_frame_deltas(x, 2), 2), x, atol=1e-6)
    still = x.reshape(2, 4, 4, 3, 2, 2)[:, :, :, :1].expand(-1, -1, -1, 3, -1, -1).reshape(x.shape)
    d = to_frame_deltas(still, 2).reshape(2, 4, 4, 3, 2, 2)
    assert (d[:, :, :, 1:] == 0).all() and torch.equal(
        d[:, :, :, 0], still.reshape(d.shape)[:, :, :, 0]
    )


def test_video_only_frame_deltas_leave_action_clips_plain():
    from actionimages.model.packing import VIDEO, from_frame_deltas, to_frame_deltas

    x = torch.randn(1, 4, 2 * 2 * 3, 2, 2)
    d = to_frame_deltas(x, 2, (VIDEO,))
    video, actions = unpack_clips(d, 2)
    v0, a0 = unpack_clips(x, 2)
    assert torch.equal(actions, a0)  # action clips untouched
    assert torch.allclose(video[:, :, :, 1:], v0[:, :, :, 1:] - v0[:, :, :, :1])
    assert torch.allclose(from_frame_deltas(d, 2, (VIDEO,)), x, atol=1e-6)


def test_exact_task_mix_realises_the_configured_ratios_despite_video_only_clips():
    from actionimages.model.masking import PAPER_TASK_RATIOS, exact_mix_ratios
    from actionimages.train.trainer import video_only_fraction

    target = torch.tensor(PAPER_TASK_RATIOS, dtype=torch.float64)
    B = 200_000
    for f in (0.03, 0.2):  # below and above the 5% video-only target
        allowed = torch.ones(B, 4, dtype=torch.bool)
        allowed[: int(f * B), :3] = False
        g = torch.Generator().manual_seed(0)
        plain = torch.bincount(sample_tasks(allowed, PAPER_TASK_RATIOS, g), minlength=4) / B
        assert abs(float(plain[3]) - (f + (1 - f) * 0.05)) < 0.005  # e.g. 24%, not 5%
        ratios, p_keep = exact_mix_ratios(PAPER_TASK_RATIOS, f)  # what the trainer does:
        tasks = sample_tasks(torch.ones_like(allowed), ratios, g)
        tasks[~allowed[:, 0]] = 3  # video-only clips can only be video_only
        keep = allowed[:, 0] | (torch.rand(B, generator=g) < p_keep)
        realised = torch.bincount(tasks[keep], minlength=4).double() / keep.sum()
        assert torch.allclose(realised, target, atol=0.005), (f, realised)
        assert (p_keep == 1.0) == (f <= 0.05)
    items = [{"tasks": torch.tensor([k % 4 != 0] * 3 + [True])} for k in range(8)]
    assert video_only_fraction(items) == 0.25


def test_the_trainer_realises_the_exact_mix_on_a_video_only_mixture(tmp_path):
    from actionimages.train.config import TrainConfig
    from actionimages.train.trainer import Trainer
    from tests.train.test_trainer import TinyClips

    class HalfVideoOnly(TinyClips):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            if i % 2:
                item["tasks"] = torch.tensor([False, False, False, True])
            return item

    cfg = TrainConfig.preset("debug", output_dir=str(tmp_path), task_mix="exact", batch_size=8)
    t = Trainer(cfg, dataset=HalfVideoOnly(), wam=debug_wam(seed=0))
    assert t.video_only_fraction == 0.5 and 0 < t.keep_video_only < 1
    logs = t.train(6)
    counts = torch.tensor([[row[f"tasks/{k}"] for k in TASKS] for row in logs]).sum(0)
    assert counts[3] / counts.sum() < 0.25  # per-clip renormalisation would give >= 50%


def test_flash_noise_decouples_video_and_action_timesteps():
    """flash: video noise level ~ Beta(3, 1) (mean 3/4: DreamZero's t = 1 - Beta(3, 1) with
    t = 1 clean), action level uniform, per sample and modality."""
    from actionimages.model.flow import flash_sigmas
    from actionimages.model.packing import ACTION

    video, action = flash_sigmas(100_000, 1.0, torch.Generator().manual_seed(0))
    assert abs(float(video.mean()) - 0.75) < 0.005 and abs(float(action.mean()) - 0.5) < 0.005
    assert abs(float((video < 0.5).float().mean()) - 0.5**3) < 0.005  # P(B < x) = x^3
    wam = debug_wam()
    enc = wam.encode_batch(synthetic_batch(8))
    tasks = torch.zeros(8, dtype=torch.long)  # joint: video and actions both predicted
    _, info = wam.loss(
        enc, torch.Generator().manual_seed(1), (1, 0, 0, 0), sampling="flash", tasks=tasks
    )
    modality, _, index = frame_roles(enc.num_views, enc.frames_per_clip)
    wam.transformer = probe = Probe(wam)
    wam.loss(enc, torch.Generator().manual_seed(1), (1, 0, 0, 0), sampling="flash", tasks=tasks)
    n = probe.timestep.shape[1] // (2 * enc.num_views * enc.frames_per_clip)
    per_frame = probe.timestep[:, ::n] / 1000  # (B, 2VF)
    a = per_frame[:, (modality == ACTION) & (index > 0)]
    v = per_frame[:, (modality != ACTION) & (index > 0)]
    assert torch.allclose(
        a, info["sigma"][:, None].expand_as(a), atol=1e-6
    )  # actions: the sample's t
    assert not torch.allclose(v, a[:, :1].expand_as(v))  # video: its own t
