"""The sampling pipeline on the debug model: schedulers, modes, guidance and caching."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from actionimages.data.sampler import ClipConfig
from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline
from actionimages.model.packing import unpack_clips
from tests.model.helpers import H, T, W, debug_wam, synthetic_batch

CLIP = ClipConfig(num_frames=T, height=H, width=W)


class ExactVelocity(torch.nn.Module):
    """v* = (x_t - x0) / sigma: the true flow velocity towards known clean latents x0."""

    def __init__(self, config, x0):
        super().__init__()
        self.config, self.x0, self.calls = config, x0, 0
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, timestep, context, camera=None):
        self.calls += 1
        sigma = timestep.view(x.shape[0], x.shape[2], -1)[:, :, 0] / 1000  # (B, F) per-frame noise
        x0 = self.x0.expand(x.shape[0], *self.x0.shape[1:])
        return (x - x0) / sigma.clamp_min(1e-6)[:, None, :, None, None]


def oracle_pipeline(batch):
    wam = debug_wam()
    x0 = wam.encode_batch(batch).latents
    wam.transformer = ExactVelocity(wam.transformer.config, x0)
    return WorldActionPipeline(wam, CLIP), x0


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_exact_velocity_lands_on_the_clean_clip(scheduler, shift):
    batch = synthetic_batch(1)
    pipe, x0 = oracle_pipeline(batch)
    out = pipe(batch, "generate", SamplingConfig(steps=4, scheduler=scheduler, shift=shift))
    video, actions = unpack_clips(x0, 2)
    decode = lambda z: ((pipe.wam.latent_codec.decode(z.flatten(0, 1)) + 1) / 2).clamp(0, 1)  # noqa: E731
    want_video = decode(video).permute(0, 2, 3, 4, 1)  # (V, T, H, W, 3)
    want_actions = decode(actions).permute(0, 2, 3, 4, 1)
    assert torch.allclose(out.video[0], want_video, atol=1e-4)
    assert torch.allclose(out.actions[0], want_actions, atol=1e-4)
    assert out.model_calls == 4


def test_visible_frames_are_kept_per_mode():
    """a2v keeps the given action clip, label keeps the whole video, generate keeps frame 0."""
    batch = synthetic_batch(1)
    pipe = WorldActionPipeline(debug_wam(), CLIP)  # random weights: only the held frames are exact
    enc = pipe.wam.encode_batch(batch)
    video, actions = unpack_clips(enc.latents, 2)

    def decode(z):
        return (
            ((pipe.wam.latent_codec.decode(z.flatten(0, 1)) + 1) / 2)
            .clamp(0, 1)
            .permute(0, 2, 3, 4, 1)
        )

    cfg = SamplingConfig(steps=2)
    a2v = pipe(batch, "a2v", cfg)
    assert torch.allclose(a2v.actions[0], decode(actions), atol=1e-5)
    label = pipe(batch, "label", cfg)
    assert torch.allclose(label.video[0], decode(video), atol=1e-5)
    gen = pipe(batch, "generate", cfg)
    assert not torch.allclose(gen.actions[0], decode(actions), atol=1e-2)
    # the first latent frame of each video clip is the observation in every mode
    first = decode(video)[:, :1]
    assert torch.allclose(gen.video[0][:, :1], first, atol=0.05)


def test_batched_guidance_equals_two_calls_and_seeds_repeat():
    batch = synthetic_batch(1)
    pipe = WorldActionPipeline(debug_wam(), CLIP)
    cfg = SamplingConfig(steps=3, guidance=7.5, seed=3)
    one = pipe(batch, "generate", cfg)
    two = pipe(batch, "generate", cfg.replace(batched_cfg=False))
    assert one.model_calls == 3 and two.model_calls == 6
    assert torch.allclose(one.video, two.video, atol=1e-5)
    assert torch.allclose(one.actions, two.actions, atol=1e-5)
    again = pipe(batch, "generate", cfg)
    other = pipe(batch, "generate", cfg.replace(seed=4))
    assert torch.equal(one.actions, again.actions)
    assert not torch.allclose(one.actions, other.actions)
    no_cfg = pipe(batch, "generate", cfg.replace(guidance=1.0))
    assert not torch.allclose(one.actions, no_cfg.actions)


def test_velocity_cache_skips_calls_when_velocities_agree():
    """The exact velocity to a fixed x0 is constant along the path: caching may skip freely."""
    batch = synthetic_batch(1)
    pipe, _ = oracle_pipeline(batch)
    full = pipe(batch, "generate", SamplingConfig(steps=8))
    cached = pipe(batch, "generate", SamplingConfig(steps=8, cache_threshold=0.99, cache_window=2))
    assert cached.model_calls < full.model_calls
    assert torch.allclose(cached.actions, full.actions, atol=1e-3)
    never = pipe(batch, "generate", SamplingConfig(steps=8, cache_threshold=1.0))
    assert never.model_calls == 8


def test_vector_action_model_round_trips_a_trajectory():
    from actionimages.geometry import quat_xyzw_to_matrix

    wam = debug_wam(action_representation="vector")
    g = torch.Generator().manual_seed(0)
    batch = synthetic_batch(1)
    q = torch.randn(1, T, 4, generator=g)
    batch.update(position=torch.rand(1, T, 3, generator=g) * 0.4 + 0.3,
                 rotation=quat_xyzw_to_matrix(q / q.norm(dim=-1, keepdim=True)),
                 gripper=torch.rand(1, T, generator=g))  # fmt: skip
    x0 = wam.encode_batch(batch).latents
    wam.transformer = ExactVelocity(wam.transformer.config, x0)
    pipe = WorldActionPipeline(wam, CLIP)
    out = pipe(batch, "generate", SamplingConfig(steps=3))
    assert out.actions is None and out.action_vectors.shape == (1, T, 10)
    traj = pipe.decode_actions(out, cams=None)
    assert abs(traj.position - batch["position"][0].numpy()).max() < 1e-4
    assert abs(traj.gripper - batch["gripper"][0].numpy()).max() < 1e-4


def test_bad_arguments_are_refused():
    pipe = WorldActionPipeline(debug_wam(), CLIP)
    with pytest.raises(ValueError, match="mode"):
        pipe(synthetic_batch(1), "dream")
    for bad in ({"steps": 0}, {"scheduler": "ddim"}, {"cache_threshold": 2.0}):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)
    assert dataclasses.is_dataclass(SamplingConfig())


class FlippingVelocity(torch.nn.Module):
    """Huge constant output on held (visible) frames, alternating sign on generated ones."""

    def __init__(self, config, visible):
        super().__init__()
        self.config, self.visible, self.calls = config, visible, 0
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, timestep, context, camera=None):
        self.calls += 1
        sign = 1.0 if self.calls % 2 else -1.0
        vis = self.visible[:, None, :, None, None].expand_as(x)
        return torch.where(vis, torch.full_like(x, 1e3), torch.full_like(x, sign))


def test_velocity_cache_compares_generated_frames_only():
    from actionimages.model.masking import VISIBLE, task_frame_states

    batch = synthetic_batch(1)
    wam = debug_wam()
    visible = task_frame_states("joint", 2, wam.encode_batch(batch).frames_per_clip) == VISIBLE
    wam.transformer = FlippingVelocity(wam.transformer.config, visible[None])
    pipe = WorldActionPipeline(wam, CLIP)
    out = pipe(batch, "generate", SamplingConfig(steps=6, cache_threshold=0.5))
    assert out.model_calls == 6  # generated velocities reverse every call: never reuse


@pytest.mark.parametrize("frame_deltas", ["none", "video", "all"])
def test_a_given_current_pose_is_held_as_action_frame_zero(frame_deltas):
    """make_batch(state=...) draws the pose; a model trained with it keeps it clean."""
    from actionimages.geometry import Camera

    wam = debug_wam(first_action_prob=0.75, frame_deltas=frame_deltas)
    pipe = WorldActionPipeline(wam, CLIP)
    assert pipe.takes_state
    cams = [Camera.look_at([1.2, 0.0, 0.6], [0.5, 0.0, 0.1], height=H, width=W),
            Camera.look_at([0.5, 0.8, 0.6], [0.5, 0.0, 0.1], height=H, width=W)]  # fmt: skip
    img = torch.zeros(H, W, 3, dtype=torch.uint8).numpy()
    rot = torch.diag(torch.tensor([1.0, -1.0, -1.0])).numpy()  # pointing down
    state = (torch.tensor([0.5, 0.0, 0.15]).numpy(), rot, 1.0)
    batch, _ = pipe.make_batch([img, img], cams, "reach", state=state)
    assert batch["first_action_known"]
    drawn = (batch["actions"][0, :, 0] + 1) / 2  # (V, H, W, 3)
    assert drawn[..., 0].max() > 0.9  # the position blob is in both views
    out = pipe(batch, "generate", SamplingConfig(steps=2))
    enc = wam.encode_batch(batch)
    _, actions = unpack_clips(wam.plain_latents(enc.latents, 2), 2)
    want = ((wam.latent_codec.decode(actions.flatten(0, 1)) + 1) / 2).clamp(0, 1)[
        :, :, 0
    ]  # (V, 3, H, W)
    assert torch.allclose(out.actions[0][:, 0], want.permute(0, 2, 3, 1), atol=1e-5)
    # without the flag the same model predicts frame 0 too (the paper's setting)
    plain = pipe(dict(batch, first_action_known=False), "generate", SamplingConfig(steps=2))
    assert not torch.allclose(plain.actions[0][:, 0], want.permute(0, 2, 3, 1), atol=1e-2)
