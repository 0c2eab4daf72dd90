"""The autoregressive closed loop (DreamZero Algorithm 2) for a chunked world action model.

``PolicyConfig(loop="autoregressive")`` drives an :class:`AutoregressivePlanner`: the same
``reset()`` / ``select_action(obs)`` policy, with memory. Within a **window** of one clip
(the model's T frames, F latent frames):

    1. prefill   chunk 0 = the current views, written clean into the KV cache, with the
                 model's own action frame 0 denoised (DreamZero's prefill); with
                 ``write_poses`` the current pose (proprioception drawn as an action
                 image) is written instead and nothing is denoised
    2. plan      denoise the next chunk's video and action tokens only, against the cache,
                 decode its action images, and hand the policy its 4 K actions
    3. execute   the policy runs them and shows the planner every observation
    4. write     the executed chunk goes into the cache as it really happened: the observed
                 views replace the predicted video frames (frames not yet observed, under
                 asynchronous execution, keep their prediction) and the action frames keep
                 the model's sample, as DreamZero writes video only; with ``write_poses``
                 the observed poses replace them too; back to 2

**Context limit (a cap):** a window holds one training clip (the tiny model: 9 frames,
2 chunks of 4 control steps after the prefill), since the packed layout fixes every
clip's rotary positions. When it is full, the next window starts from the latest
observation with an empty cache.

**Asynchronous execution** (``PolicyConfig.latency`` = L): the policy asks for the next
chunk while L actions are still queued; the planner writes what it has observed so far
and plans the chunk that starts when the queue runs out, so within a window no action
is dropped. A new window starts from the observation L steps before its actions act, so
its first L frames are skipped (as in the bidirectional loop).
"""

from __future__ import annotations

import numpy as np
import torch

from actionimages.clips import ClipConfig
from actionimages.infer.chunked import ChunkSession
from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline
from actionimages.model.masking import TASKS, VISIBLE, task_frame_states
from actionimages.model.packing import ACTION, frame_roles
from actionimages.policy.planners import Plan, observation_views


class AutoregressivePlanner:
    """Chunk-by-chunk planning with a KV cache that real observations are written into."""

    def __init__(
        self, pipeline: WorldActionPipeline, sampling: SamplingConfig | None = None,
        write_poses: bool = False,
    ) -> None:  # fmt: skip
        K = pipeline.wam.config.chunk_frames
        if not K:
            raise ValueError(
                "loop 'autoregressive' needs a model trained in the autoregressive mode "
                "(ModelConfig.chunk_frames > 0, e.g. the tiny-ar preset); this one is bidirectional"
            )
        if pipeline.vector_actions:
            raise ValueError("loop 'autoregressive' draws real poses as action images: "
                             "the vector-action baseline has none")  # fmt: skip
        self.pipeline, self.sampling = pipeline, sampling or pipeline.default_sampling
        self.write_poses = write_poses
        self.tf = pipeline.wam.latent_codec.temporal_factor
        self.chunk_steps = K * self.tf  # control steps per chunk (clips at the control rate)
        self.reset()

    @property
    def clip(self) -> ClipConfig:
        return self.pipeline.clip

    def reset(self) -> None:
        self.session: ChunkSession | None = None
        self.history: list[tuple[list[np.ndarray], tuple]] = []  # window frames seen so far
        self.next_chunk = 0
        self.windows = self.calls = 0
        self._last_obs: dict | None = None

    def observe(self, obs: dict, views) -> None:
        """Record the observation of this control step (every step, before planning)."""
        if self.session is not None:
            images, _ = observation_views(obs, views)
            self.history.append((images, _pose(obs)))
        self._last_obs = obs

    # --- planning -------------------------------------------------------------------------
    def plan(self, obs: dict, views, pending: int = 0) -> Plan:
        """The next chunk's plan; its frame 0 is the pose at the step it starts acting,
        ``pending`` steps from now (the actions still queued)."""
        full = self.session is None or self.next_chunk >= self.session.num_chunks
        if full:
            start = self._start_window(obs, views)
            first = pending  # a new window's frame 0 is now: skip what falls before its turn
            while self.next_chunk * self.chunk_steps <= first and self._more():
                self._denoise_next(write_back=True)  # its chunk would act too late: skip on
        else:
            start = None
            self._write_executed(views)
            first = (self.next_chunk - 1) * self.chunk_steps  # the end of the executed chunk
        out = self._denoise_next()
        last = (self.next_chunk - 1) * self.chunk_steps
        cams = self._cams if start is None else start
        sl = slice(first, last + 1)
        info = {
            "model_calls": self.session.calls,
            "window": self.windows,
            "chunk": self.next_chunk - 1,
        }
        return Plan(out.actions[0][:, sl].numpy(), [c[sl] for c in cams], out.video[0][:, sl].numpy(),
                    None, info)  # fmt: skip

    def _more(self) -> bool:
        return self.next_chunk + 1 < self.session.num_chunks

    def _start_window(self, obs: dict, views):
        """Prefill: chunk 0 = the current views and pose, clean, into a fresh cache."""
        pipe = self.pipeline
        images, cameras = observation_views(obs, views)
        self.history = [(images, _pose(obs))]
        self._instruction, self._cameras = obs["instruction"], cameras
        batch, cams = self._batch()
        enc = pipe.wam.encode_batch(batch)
        states = task_frame_states(TASKS.index("joint"), enc.num_views, enc.frames_per_clip)
        states = states[None].to(enc.latents.device)  # (1, 2VF)
        seed = self.sampling.seed + self.windows  # a new noise draw per window, reproducible
        noise = torch.randn(enc.latents.shape, generator=torch.Generator().manual_seed(seed))
        held = torch.where((states == VISIBLE)[:, None, :, None, None], enc.latents, noise)
        empty = pipe.empty_context(enc.context) if self.sampling.guidance != 1.0 else None
        self.session = ChunkSession.start(
            pipe.wam, enc, states, held, self.sampling.guidance, empty
        )
        self._enc, self._cams, self._out = enc, cams, None
        if self.write_poses:
            self.session.write(0, enc.latents)  # the observation itself: nothing to denoise
        else:  # the views only: the model's own guess of the current action frame
            self.session.denoise(0, pipe.scheduler_for(self.sampling), self.sampling)
            self.session.write(0)
        self.next_chunk, self.windows = 1, self.windows + 1
        return cams

    def _denoise_next(self, write_back: bool = False):
        """Denoise chunk ``next_chunk`` and decode the window (pixels of every frame)."""
        s, pipe = self.session, self.pipeline
        s.denoise(self.next_chunk, pipe.scheduler_for(self.sampling), self.sampling)
        if write_back:  # planned but never executed: the cache keeps the prediction
            s.write(self.next_chunk)
        self.next_chunk += 1
        self.calls += 1
        self._out = pipe._decode(s.x, self._enc, s.calls, "generate")
        return self._out

    def _write_executed(self, views) -> None:
        """Write the chunk just executed: observed frames real, the rest as predicted."""
        c = self.next_chunk - 1
        batch, _ = self._batch()
        seen = len(self.history)
        video = self._out.video[0] * 2 - 1  # (V, T, H, W, 3) predicted, in [-1, 1]
        actions = self._out.actions[0] * 2 - 1
        batch["video"][0, :, seen:] = video[:, seen:]
        batch["actions"][0, :, seen:] = actions[:, seen:]
        real = self.pipeline.wam.encode_batch(batch).latents  # (1, C, 2VF, h, w)
        if not self.write_poses:  # video only: the action clips keep their own sample
            action = frame_roles(self._enc.num_views, self._enc.frames_per_clip)[0] == ACTION
            real[:, :, action.to(real.device)] = self.session.x[:, :, action.to(real.device)]
        self.session.write(c, real)

    def _batch(self):
        """The window's clip: the frames seen so far (the last one repeated after them),
        real action images drawn from the observed poses."""
        T = self.clip.num_frames
        idx = np.minimum(np.arange(T), len(self.history) - 1)
        frames = [np.stack([self.history[i][0][v] for i in idx]) for v in range(len(self._cameras))]
        pos, rot, grip = (np.stack([self.history[i][1][k] for i in idx]) for k in range(3))
        return self.pipeline.make_batch(frames, self._cameras, self._instruction,
                                        trajectory=(pos, rot, grip))  # fmt: skip


def _pose(obs: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """(position (3,), rotation (3, 3), gripper) of the end effector in ``obs``."""
    return (np.asarray(obs["ee_position"], np.float64), np.asarray(obs["ee_rotation"], np.float64),
            float(obs["gripper"]))  # fmt: skip
