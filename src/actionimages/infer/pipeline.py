"""The sampling pipeline: one trained world action model, four capabilities (paper Sec. 4).

    pipe = WorldActionPipeline.from_pretrained("models/tiny")
    batch, cams = pipe.make_batch(images, cameras, "press the red button")
    out = pipe(batch, mode="generate", config=SamplingConfig(steps=10, guidance=1.0))
    traj = pipe.decode_actions(out, cams)            # 7-DoF trajectory (T steps)

Modes (the masking tasks of training, :mod:`actionimages.model.masking`):

    generate   first frame of each view -> future video + action images (the policy)
    a2v        first frame + a trajectory (drawn as action images) -> video
    label      a whole video -> action images -> trajectory
    video      first frame -> video only (the action slots are held at pure noise)

As in diffusers, the model (``WorldActionModel``) and the scheduler (diffusers'
``FlowMatchEulerDiscreteScheduler`` or ``UniPCMultistepScheduler`` with flow sigmas) are
separate, and the loop below is written out step by step. Two speed options follow
DreamZero (Sec. 3.2, A.5): classifier-free guidance in one batched call, and velocity
caching, which skips the transformer while successive velocities keep pointing the same
way (cosine similarity above ``cache_threshold``) and reuses the last one. An
autoregressive model (``chunk_frames`` > 0) is sampled chunk by chunk against a KV cache
(:mod:`actionimages.infer.chunked`), with both options; ``steps=1`` is Flash sampling.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from actionimages.model.masking import TASKS, UNKNOWN, VISIBLE, frame_timesteps, task_frame_states
from actionimages.model.packing import unpack_clips
from actionimages.model.wam import EncodedBatch, WorldActionModel

MODES = {
    "generate": "joint",
    "a2v": "action_to_video",
    "label": "video_to_action",
    "video": "video_only",
}
SCHEDULERS = ("euler", "unipc")


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample. Paper: 50 steps, guidance 10; the authors' release: guidance 7.5.

    Attributes:
        steps: denoising steps.  scheduler: "euler" or "unipc".  shift: flow shift s.
        guidance: classifier-free guidance scale (1 = off: one model call per step).
        batched_cfg: conditional and unconditional passes in one batch (one call) rather than two.
        cache_threshold: velocity caching; None = off, else skip the model while the cosine
            similarity of the last two computed velocities is above this (e.g. 0.99).
        cache_window: at most this many steps in a row reuse a cached velocity.
        seed: the initial noise.
    """

    steps: int = 10
    scheduler: str = "euler"
    shift: float = 1.0
    guidance: float = 1.0
    batched_cfg: bool = True
    cache_threshold: float | None = None
    cache_window: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.shift <= 0 or self.guidance < 0:
            raise ValueError("shift must be > 0 and guidance >= 0")
        if self.cache_threshold is not None and not -1 <= self.cache_threshold <= 1:
            raise ValueError(
                f"cache_threshold is a cosine similarity in [-1, 1], got {self.cache_threshold}"
            )

    def replace(self, **changes) -> SamplingConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class PipelineOutput:
    """Generated clips, channels last, in [0, 1].

    video: (B, V, T, H, W, 3).  actions: (B, V, T, H, W, 3) action images (None for a
    vector-action model).  action_vectors: (B, T, 10) for a vector-action model, else None.
    model_calls: transformer forward passes made (CFG batched counts once).
    """

    video: torch.Tensor
    actions: torch.Tensor | None
    action_vectors: torch.Tensor | None
    model_calls: int
    mode: str


def make_scheduler(config: SamplingConfig):
    """A diffusers flow-matching scheduler for ``config`` (the same sigmas as training: 1 -> 0)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if config.scheduler == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=config.shift)
    return UniPCMultistepScheduler(
        num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
        flow_shift=config.shift, solver_order=2,
    )  # fmt: skip


class WorldActionPipeline:
    """Model + clip settings; ``__call__`` samples one mode (see the module docstring)."""

    def __init__(
        self, wam: WorldActionModel, clip, default_sampling: SamplingConfig | None = None
    ) -> None:
        self.wam, self.clip = wam, clip
        # what ``__call__`` uses when given no config: the model folder's own settings
        self.default_sampling = default_sampling or SamplingConfig()
        # One scheduler, created once for the default settings (diffusers schedulers carry
        # their shift in their config, so another shift or kind gets its own, kept too).
        self.scheduler = make_scheduler(self.default_sampling)
        self._schedulers = {_scheduler_key(self.default_sampling): self.scheduler}
        self._empty_context: torch.Tensor | None = None

    @classmethod
    def from_pretrained(
        cls, path, device: str = "cpu", use_ema: bool = True
    ) -> WorldActionPipeline:
        from actionimages.infer.loading import load_world_action_model

        wam, info = load_world_action_model(path, device, use_ema)
        return cls(wam, info.clip, SamplingConfig(**info.sampling))

    @property
    def vector_actions(self) -> bool:
        return self.wam.config.action_representation == "vector"

    @property
    def takes_state(self) -> bool:
        """Whether the model was trained to be given the current pose (frame 0 of the actions)."""
        return self.wam.config.first_action_prob > 0

    def make_batch(self, images, cameras, instruction: str, trajectory=None, state=None):
        """See :func:`actionimages.infer.inputs.make_batch`."""
        from actionimages.infer.inputs import make_batch

        return make_batch(self.clip, images, cameras, instruction, trajectory, state)

    def compile(self, **kwargs) -> None:
        """``torch.compile`` the transformer (optional; measured in BENCHMARKS.md)."""
        self.wam.transformer = torch.compile(self.wam.transformer, **kwargs)

    # --- the sampling loop --------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self, batch: dict, mode: str = "generate", config: SamplingConfig | None = None
    ) -> PipelineOutput:
        config = config or self.default_sampling
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        wam = self.wam
        # 1. Encode the conditions: clean latents of the given frames, cameras, text.
        enc = wam.encode_batch(batch)
        x0 = enc.latents  # (B, C, 2VF, h, w)
        B, dev = x0.shape[0], x0.device
        # 2. Frame states of the mode: VISIBLE frames stay clean, the rest start from noise.
        #    A model trained with a known first action is given the current pose when the
        #    batch carries it (``make_batch(state=...)``).
        known = bool(batch.get("first_action_known", False)) and wam.config.first_action_prob > 0
        states = task_frame_states(
            TASKS.index(MODES[mode]), enc.num_views, enc.frames_per_clip, known
        )
        states = states[None].expand(B, -1).to(dev)  # (B, 2VF)
        generator = torch.Generator().manual_seed(config.seed)
        noise = torch.randn(x0.shape, generator=generator).to(dev, x0.dtype)
        visible = (states == VISIBLE)[:, None, :, None, None]  # (B, 1, 2VF, 1, 1)
        unknown = (states == UNKNOWN)[:, None, :, None, None]
        generated = (~(visible | unknown)).expand(-1, x0.shape[1], -1, *x0.shape[-2:])
        held = torch.where(visible, x0, noise)  # what visible and unknown frames are held at
        x = held.clone()
        # 3. Guidance: the unconditional context is the empty prompt (trained by prompt dropout).
        use_cfg = config.guidance != 1.0
        cond_enc, pair_enc = enc, None
        if use_cfg:
            empty = self.empty_context(enc.context)
            uncond_enc = dataclasses.replace(enc, context=empty)
            if config.batched_cfg:
                pair_enc = _stack_encoded(enc, uncond_enc)
        # 4. Timesteps: the scheduler's sigmas from 1 to 0 (flow matching: t = 1000 sigma).
        scheduler = self.scheduler_for(config)
        scheduler.set_timesteps(sigmas=_linear_sigmas(config.steps), device=dev)
        if wam.config.chunk_frames:  # 5'. autoregressive model: chunk by chunk, KV-cached
            from actionimages.infer.chunked import sample_chunks

            if use_cfg and not config.batched_cfg:
                raise ValueError("the autoregressive sampler batches guidance (one cache holds both "
                                 "halves): batched_cfg=False is not supported there")  # fmt: skip
            empty = self.empty_context(enc.context) if use_cfg else None
            x, calls = sample_chunks(wam, enc, states, held, scheduler, config, empty)
            return self._decode(x, enc, calls, mode)
        calls, cached_v, prev_v, reuse_left = 0, None, None, 0
        # 5. Denoise.
        for i, t in enumerate(scheduler.timesteps):
            sigma = float(scheduler.sigmas[i])
            sigma_frames = frame_timesteps(states, torch.full((B,), sigma, device=dev))  # (B, 2VF)
            if cached_v is not None and reuse_left > 0:
                v, reuse_left = cached_v, reuse_left - 1  # 5a. velocity cache hit: skip the model
            else:
                if use_cfg and pair_enc is not None:  # 5b. conditional + unconditional in one call
                    both = wam.velocity(torch.cat([x, x]), sigma_frames.repeat(2, 1), held.repeat(2, 1, 1, 1, 1),
                                        states.repeat(2, 1), pair_enc)  # fmt: skip
                    v_cond, v_uncond = both.chunk(2)
                    calls += 1
                elif use_cfg:
                    v_cond = wam.velocity(x, sigma_frames, held, states, cond_enc)
                    v_uncond = wam.velocity(x, sigma_frames, held, states, uncond_enc)
                    calls += 2
                else:
                    v_cond, v_uncond = wam.velocity(x, sigma_frames, held, states, cond_enc), None
                    calls += 1
                v = v_cond if v_uncond is None else v_uncond + config.guidance * (v_cond - v_uncond)
                v = v.to(x.dtype)
                # 5c. Decide whether the next steps may reuse this velocity (DreamZero's rule).
                if config.cache_threshold is not None and prev_v is not None:
                    # Over the generated frames only: the clean and pure-noise frames' outputs
                    # are discarded, and counting them would inflate the similarity.
                    cos = torch.nn.functional.cosine_similarity(
                        v[generated].flatten(), prev_v[generated].flatten(), dim=0
                    )
                    reuse_left = (
                        config.cache_window if min(float(cos), 1.0) > config.cache_threshold else 0
                    )
                prev_v = cached_v = v
            # 5d. Scheduler step on all frames, then hold visible (clean) and unknown (noise) frames.
            x = scheduler.step(v, t, x, return_dict=False)[0]
            x = torch.where(visible | unknown, held, x)
        # 6. Decode latents to pixels (and vectors for a vector-action model).
        return self._decode(x, enc, calls, mode)

    def _decode(self, x: torch.Tensor, enc: EncodedBatch, calls: int, mode: str) -> PipelineOutput:
        wam, V = self.wam, enc.num_views
        video, actions = unpack_clips(wam.plain_latents(x, V), V)  # (B, V, C, F, h, w) each
        B = video.shape[0]
        if self.vector_actions:
            from actionimages.model.action_vector import latents_to_vectors

            pixels = wam.latent_codec.decode(video.flatten(0, 1).float())  # (B*V, 3, T, H, W)
            vec = latents_to_vectors(
                actions.mean(1).float(), wam.latent_codec.temporal_factor
            )  # (B, T, 10)
            act_pixels = None
        else:
            both = torch.cat([video, actions], 1).flatten(0, 1).float()  # (B*2V, C, F, h, w)
            both = wam.latent_codec.decode(both).unflatten(0, (B, 2 * V))  # (B, 2V, 3, T, H, W)
            pixels, act_pixels = (
                both[:, :V].flatten(0, 1),
                both[:, V:].flatten(0, 1),
            )  # (B*V, 3, T, H, W)
            vec = None
        to_img = lambda p: ((p.unflatten(0, (B, V)).permute(0, 1, 3, 4, 5, 2) + 1) / 2).clamp(0, 1)  # noqa: E731
        # (B*V, 3, T, H, W) -> (B, V, T, H, W, 3) in [0, 1]
        return PipelineOutput(
            to_img(pixels), None if act_pixels is None else to_img(act_pixels), vec, calls, mode
        )

    def scheduler_for(self, config: SamplingConfig):
        """The pipeline's scheduler for ``config``'s kind and shift (made once per pair)."""
        key = _scheduler_key(config)
        if key not in self._schedulers:
            self._schedulers[key] = make_scheduler(config)
        return self._schedulers[key]

    def empty_context(self, like: torch.Tensor) -> torch.Tensor:
        if self._empty_context is None:
            self._empty_context = self.wam.text_encoder.encode([""]).to(like.device, like.dtype)
        return self._empty_context.expand_as(like)

    # --- actions out --------------------------------------------------------------------
    def decode_actions(
        self,
        out: PipelineOutput,
        cams,
        index: int = 0,
        method: str = "triangulate",
        fallback_rotation=None,
    ):
        """The decoded trajectory of batch item ``index`` (:class:`DecodedActions`, NumPy, T steps).

        Action images go through the geometric decoder with the model-frame cameras ``cams``
        (from :meth:`make_batch`); a vector-action model's vectors are read directly.
        ``fallback_rotation`` (3, 3): used where the rotation points are found in no view.
        """
        from actionimages.codec.decoder import DecodedActions, decode_action_images

        if out.action_vectors is not None:
            from actionimages.model.action_vector import vector_to_pose

            pos, rot, grip = vector_to_pose(out.action_vectors[index].double())
            return DecodedActions.from_pose(pos.numpy(), rot.numpy(), grip.numpy())
        if out.actions is None:
            raise ValueError("this output has no actions (mode 'video'?)")
        images = out.actions[index].double().numpy()  # (V, T, H, W, 3)
        return decode_action_images(images, cams, method=method, layout=self.clip.layout,
                                    sigma=self.clip.sigma, fallback_rotation=fallback_rotation)  # fmt: skip


def preview_sample(
    wam: WorldActionModel, batch: dict, train_config
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training previews (``Trainer(preview=preview_sample)``): joint generation by this pipeline.

    Sampled with the run's preview settings (``sample_steps``, ``guidance``, ``timestep_shift``,
    ``seed``). Returns video and action images, each (B, V, T, H, W, 3) in [0, 1]; a
    vector-action model's action images are blank.
    """
    c = train_config
    sampling = SamplingConfig(steps=c.sample_steps, guidance=c.guidance, shift=c.timestep_shift,
                              seed=c.seed)  # fmt: skip
    out = WorldActionPipeline(wam, c.clip.for_inference(), sampling)(batch, "generate")
    return out.video, out.actions if out.actions is not None else torch.zeros_like(out.video)


def _scheduler_key(config: SamplingConfig) -> tuple[str, float]:
    return config.scheduler, float(config.shift)


def _linear_sigmas(steps: int) -> np.ndarray:
    """(steps,) sigmas 1, 1 - 1/n, ..., 1/n: the training sampler's grid (the scheduler shifts them)."""
    return np.linspace(1.0, 0.0, steps + 1)[:-1]


def _stack_encoded(a: EncodedBatch, b: EncodedBatch) -> EncodedBatch:
    """Two encoded batches as one of twice the size (batched classifier-free guidance)."""
    cat = lambda x, y: None if x is None else torch.cat([x, y])  # noqa: E731
    return dataclasses.replace(
        a, latents=cat(a.latents, b.latents), camera=cat(a.camera, b.camera),
        context=cat(a.context, b.context), allowed=cat(a.allowed, b.allowed),
        frame_valid=cat(a.frame_valid, b.frame_valid), image_context=cat(a.image_context, b.image_context),
    )  # fmt: skip
