"""The unified world action model: latent codec + text encoder + transformer, and its loss.

Sampling is the inference pipeline's (:mod:`actionimages.infer.pipeline`), the one sampler.

Reads the data sampler's items (see ``actionimages.data.sampler``), collated to a batch:

    video, actions   (B, V, T, H, W, 3) in [-1, 1]   (channels last, as the sampler gives them)
    plucker          (B, V, T, h, w, 6) rays relative to frame 0 of view 0
    tasks            (B, 4) bool allowed tasks;  instruction  list of B str

and turns it into one packed latent sequence [video_v1, action_v1, video_v2, ...]
(:mod:`packing`) with per-frame states from the task (:mod:`masking`). Training is flow
matching on the predicted frames only:

    x_t = (1 - t) x + t eps,   v = eps - x,   loss = mean over predicted tokens |f(x_t) - v|^2

In the autoregressive mode (``ModelConfig.chunk_frames`` K > 0) the loss is teacher-forced
(DreamZero Algorithm 1): every chunk draws its own t, and the transformer runs once over
[clean copy; noisy copy] of the sequence with Fig. 11's mask, so each noisy chunk is
denoised against clean copies of the earlier chunks, as it is against the KV cache at
inference. The four tasks apply unchanged (their frame states decide what is noised).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from actionimages.model.blob_loss import blob_centroid_loss, predicted_clean, source_frames
from actionimages.model.camera import plucker_to_latent_frames
from actionimages.model.causal import (
    block_causal_mask,
    chunk_of_packed_frame,
    num_chunks,
    teacher_forcing_mask,
)
from actionimages.model.config import ModelConfig
from actionimages.model.flow import add_noise, flash_sigmas, sample_sigmas
from actionimages.model.masking import (
    PREDICTED,
    UNKNOWN,
    VISIBLE,
    frame_states,
    frame_timesteps,
    sample_tasks,
    to_tokens,
)
from actionimages.model.packing import (
    ACTION,
    VIDEO,
    frame_roles,
    from_frame_deltas,
    pack_camera,
    pack_clips,
    to_frame_deltas,
    unpack_clips,
)


@dataclass
class EncodedBatch:
    """A batch in latent space (all tensors on the model's device)."""

    latents: torch.Tensor  # (B, C, 2 V F, h, w) packed clean latents
    camera: torch.Tensor | None  # (B, 2 V F, C_cam, hc, wc)
    context: torch.Tensor  # (B, S, text_dim)
    allowed: torch.Tensor  # (B, 4) bool
    num_views: int
    frames_per_clip: int
    frame_valid: torch.Tensor | None = None  # (B, 2 V F) bool: False for padded latent frames
    image_context: torch.Tensor | None = None  # (B, V N, image_dim) CLIP tokens (Wan 2.1 I2V)


def latent_frame_valid(
    frame_valid: torch.Tensor, temporal_factor: int, num_views: int
) -> torch.Tensor:
    """(B, T) source-frame validity -> (B, 2 V F) packed latent-frame validity.

    Latent frame 0 is source frame 0; latent frame f >= 1 covers source frames
    1 + (f - 1) tf .. f tf and is valid only if all of them are (a frame of repeated
    padding teaches the model to stop, which the episode did not do).
    """
    valid = frame_valid.bool()
    B, T = valid.shape
    rest = valid[:, 1:].reshape(B, (T - 1) // temporal_factor, temporal_factor).all(-1)
    per_clip = torch.cat([valid[:, :1], rest], dim=1)  # (B, F)
    Fr = per_clip.shape[1]
    _, _, index = frame_roles(num_views, Fr)
    return per_clip[:, index]  # (B, 2VF)


class WorldActionModel(nn.Module):
    """Holds the transformer (trained) and the frozen latent codec, text and image encoders."""

    def __init__(
        self, config: ModelConfig, transformer: nn.Module, latent_codec: nn.Module,
        text_encoder: nn.Module, image_encoder: nn.Module | None = None,
    ):  # fmt: skip
        super().__init__()
        self.config, self.transformer = config, transformer
        self.latent_codec, self.text_encoder = latent_codec, text_encoder
        self.image_encoder = image_encoder  # Wan 2.1 I2V's CLIP tower, else None
        for frozen in (latent_codec, text_encoder, image_encoder):
            if frozen is not None:
                frozen.requires_grad_(False)
        if latent_codec.latent_channels != config.out_channels:
            raise ValueError(
                f"latent codec gives {latent_codec.latent_channels} channels, model expects "
                f"{config.out_channels}"
            )
        if (image_encoder is None) != (config.image_encoder is None):
            raise ValueError(f"model {config.name!r}: image_encoder {config.image_encoder!r} needs "
                             "exactly one image encoder module")  # fmt: skip

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    # --- batch -> latents -------------------------------------------------------------
    @torch.no_grad()
    def encode_batch(self, batch: dict) -> EncodedBatch:
        video, actions, plucker = batch["video"], batch["actions"], batch["plucker"]
        if video.ndim != 6 or video.shape != actions.shape or video.shape[-1] != 3:
            raise ValueError(
                f"video/actions must be (B, V, T, H, W, 3), got {tuple(video.shape)}, {tuple(actions.shape)}"
            )
        if plucker.ndim != 6 or plucker.shape[-1] != 6:
            raise ValueError(f"plucker must be (B, V, T, h, w, 6), got {tuple(plucker.shape)}")
        for name in ("video", "actions", "plucker"):
            if not torch.isfinite(batch[name]).all():
                raise ValueError(f"batch[{name!r}] contains NaN or inf")
        # channels last -> first: (B, V, T, H, W, c) -> (B, V, c, T, H, W)
        video, actions, plucker = (x.permute(0, 1, 5, 2, 3, 4) for x in (video, actions, plucker))
        B, V, _, T, H, W = video.shape
        dev = self.device
        if self.config.action_representation == "vector":
            lat_v = self.latent_codec.encode(
                video.flatten(0, 1).to(dev, torch.float32)
            )  # (B*V, C, F, h, w)
            lat_v = lat_v.unflatten(0, (B, V))  # (B, V, C, F, h, w)
            lat_a = self.action_latents(batch, lat_v.shape[2:])  # (B, V, C, F, h, w)
        else:
            both = torch.cat([video, actions], dim=1).flatten(0, 1)  # (B*2V, 3, T, H, W)
            lat = self.latent_codec.encode(both.to(dev, torch.float32))  # (B*2V, C, F, h, w)
            lat = lat.unflatten(0, (B, 2 * V))  # (B, 2V, C, F, h, w)
            lat_v, lat_a = lat[:, :V], lat[:, V:]
        latents = pack_clips(lat_v, lat_a)  # (B, C, 2VF, h, w)
        if self.config.frame_deltas != "none":  # the space the transformer diffuses in
            latents = to_frame_deltas(latents, V, self.delta_modalities)
        Fr = lat_v.shape[3]
        camera = self.camera_input(
            plucker.to(dev, torch.float32), (T, H, W)
        )  # (B, 2VF, Cc, hc, wc)
        context = self.text_encoder.encode(list(batch["instruction"])).to(dev)
        valid = None
        if "frame_valid" in batch:
            valid = latent_frame_valid(
                batch["frame_valid"], self.latent_codec.temporal_factor, V
            ).to(dev)
        image = None
        if self.image_encoder is not None:  # every view's current frame, tokens concatenated
            first = video[:, :, :, 0].flatten(0, 1).to(dev, torch.float32)  # (B*V, 3, H, W)
            image = (
                self.image_encoder.encode(first).unflatten(0, (B, V)).flatten(1, 2)
            )  # (B, V N, D)
        return EncodedBatch(latents, camera, context, batch["tasks"].to(dev).bool(), V, Fr, valid,
                            image)  # fmt: skip

    def action_latents(self, batch: dict, latent_shape) -> torch.Tensor:
        """Vector representation: (B, T) poses of ``batch`` -> (B, V, C, F, h, w), the same for every view."""
        from actionimages.model.action_vector import pose_to_vector, vectors_to_latents

        C, _, h, w = latent_shape
        V = batch["video"].shape[1]
        vec = pose_to_vector(
            *(batch[k].to(self.device, torch.float32) for k in ("position", "rotation", "gripper"))
        )
        lat = vectors_to_latents(
            vec, self.latent_codec.temporal_factor, (C, h, w)
        )  # (B, C, F, h, w)
        return lat[:, None].expand(-1, V, -1, -1, -1, -1)  # (B, V, C, F, h, w)

    def camera_input(self, plucker: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        """(B, V, 6, T, h, w) Plücker maps -> the camera encoder's (B, 2 V F, C_cam, hc, wc) input."""
        B, V = plucker.shape[:2]
        if self.config.camera_encoder == "token":
            cam = plucker_to_latent_frames(
                plucker.flatten(0, 1), self.latent_codec.temporal_factor
            )  # (B*V, F, 6tf, h, w)
        else:
            # Release layout: direction and moment / 3 encoded by the video codec as two clips.
            full = F.interpolate(
                plucker.flatten(0, 1), size=size, mode="nearest"
            )  # (B*V, 6, T, H, W)
            direction, moment = full[:, :3].clamp(-1, 1), (full[:, 3:] / 3).clamp(-1, 1)
            cam = torch.cat(
                [self.latent_codec.encode(direction), self.latent_codec.encode(moment)], dim=1
            )  # (B*V, 2C, F, h, w)
            cam = cam.transpose(1, 2)  # (B*V, F, 2C, h, w)
        return pack_camera(cam.unflatten(0, (B, V)))  # (B, 2VF, Cc, hc, wc)

    def plain_latents(self, x: torch.Tensor, num_views: int) -> torch.Tensor:
        """(B, C, 2VF, h, w) latents of the diffusion space -> the codec's (undo frame deltas)."""
        if self.config.frame_deltas == "none":
            return x
        return from_frame_deltas(x, num_views, self.delta_modalities)

    @property
    def delta_modalities(self) -> tuple[int, ...]:
        return (VIDEO, ACTION) if self.config.frame_deltas == "all" else (VIDEO,)

    # --- model call -------------------------------------------------------------------
    def velocity(
        self, x_t, sigma_frames, clean, states, enc: EncodedBatch, context=None
    ) -> torch.Tensor:
        """Run the transformer on noisy packed latents at timesteps 1000 sigma.

        Per token (B, L) by default; one per sample (B,) for Wan 2.1 weights
        (``timestep_per_token`` False): the predicted frames' t, or 1000 if none is predicted.
        """
        p_t, p_h, p_w = self.config.patch_size
        tokens_per_frame = (x_t.shape[-2] // p_h) * (x_t.shape[-1] // p_w)
        if self.config.timestep_per_token:
            timestep = to_tokens(sigma_frames[:, ::p_t] * 1000.0, tokens_per_frame)  # (B, L)
        else:
            pred = states == PREDICTED  # (B, 2VF)
            t_pred = torch.where(pred, sigma_frames, torch.zeros_like(sigma_frames)).amax(1)
            timestep = torch.where(pred.any(1), t_pred, torch.ones_like(t_pred)) * 1000.0  # (B,)
        x_in = x_t
        if (
            self.config.condition_channels
        ):  # Wan I2V weights: [noisy, 4 x visible mask, visible clean latents]
            vis = (
                (states == VISIBLE)
                .to(x_t.dtype)[:, None, :, None, None]
                .expand(-1, 4, -1, *x_t.shape[-2:])
            )
            x_in = torch.cat([x_t, vis, clean * vis[:, :1]], dim=1)
        ctx = enc.context if context is None else context
        if self.config.chunk_frames:  # autoregressive: block-causal over chunks
            mask = block_causal_mask(2 * enc.num_views, enc.frames_per_clip,
                                     self.config.chunk_frames, tokens_per_frame).to(x_t.device)  # fmt: skip
            return self.transformer(x_in, timestep, ctx, camera=enc.camera, attention_mask=mask)
        if enc.image_context is None:
            return self.transformer(x_in, timestep, ctx, camera=enc.camera)
        return self.transformer(x_in, timestep, ctx, camera=enc.camera,
                                encoder_hidden_states_image=enc.image_context)  # fmt: skip

    def teacher_forced_velocity(self, x_t, sigma_frames, clean, states, enc: EncodedBatch,
                                context) -> torch.Tensor:  # fmt: skip
        """Velocity of the noisy sequence ``x_t`` (B, C, 2VF, h, w), each chunk seeing clean
        copies of the earlier ones (Fig. 11): one pass over [clean; noisy], 2L tokens.

        The clean copy is what the KV cache holds at inference: every frame clean at t = 0,
        except UNKNOWN frames (actions of video-only clips), which stay pure noise at t = 1.
        """
        p_h, p_w = self.config.patch_size[1:]
        tokens_per_frame = (x_t.shape[-2] // p_h) * (x_t.shape[-1] // p_w)
        unknown = states == UNKNOWN  # (B, 2VF)
        clean_in = torch.where(unknown[:, None, :, None, None], x_t, clean)
        sigma_clean = unknown.to(sigma_frames.dtype)  # (B, 2VF): 0, or 1 where unknown
        both = torch.cat([clean_in, x_t], dim=2)  # (B, C, 4VF, h, w)
        timestep = to_tokens(torch.cat([sigma_clean, sigma_frames], 1) * 1000.0, tokens_per_frame)
        camera = None if enc.camera is None else torch.cat([enc.camera, enc.camera], dim=1)
        mask = teacher_forcing_mask(2 * enc.num_views, enc.frames_per_clip,
                                    self.config.chunk_frames, tokens_per_frame).to(x_t.device)  # fmt: skip
        out = self.transformer(both, timestep, context, camera=camera, attention_mask=mask,
                               rotary_repeat=2)  # (B, C, 4VF, h, w)  # fmt: skip
        return out[:, :, x_t.shape[2] :]  # the noisy copy's velocity

    # --- training loss ----------------------------------------------------------------
    def loss(self, enc: EncodedBatch, generator: torch.Generator, task_ratios, prompt_dropout: float = 0.0,
             shift: float = 1.0, sampling: str = "uniform", tasks: torch.Tensor | None = None,
             action_weight: float = 1.0, first_action_prob: float = 0.0,
             keep: torch.Tensor | None = None, blob_weight: float = 0.0):  # fmt: skip
        """Flow-matching loss over predicted tokens. Returns (loss, info dict with tasks/states/sigma).

        ``first_action_prob``: per sample, the probability that frame 0 of the action clips
        (the current pose) is a visible condition (:mod:`masking`). Latent frames made only
        of padding past an episode's end (``enc.frame_valid``) carry no loss, nor do samples
        with ``keep`` (B,) False (the exact task mix drops surplus video-only clips).
        ``blob_weight`` > 0 adds that times :mod:`blob_loss` (where the implied clean action
        images put their blobs; patch-PCA latent codec only); info["blob"] holds it.
        """
        x = enc.latents
        B = x.shape[0]
        if tasks is None:
            tasks = sample_tasks(enc.allowed.cpu(), task_ratios, generator)  # (B,)
        known = None
        if first_action_prob > 0:
            known = torch.rand(B, generator=generator) < first_action_prob  # (B,)
        states = frame_states(tasks, enc.num_views, enc.frames_per_clip, known).to(x.device)
        K, F = self.config.chunk_frames, enc.frames_per_clip
        # Noise levels: one per sample, or one per chunk in the autoregressive mode.
        n = num_chunks(F, K) if K else 1
        chunk = chunk_of_packed_frame(2 * enc.num_views, F, K).to(x.device) if K else None

        def per_frame(s: torch.Tensor) -> torch.Tensor:  # (B n,) -> (B,) or (B, 2VF)
            return s.to(x.device).view(B, n)[:, chunk] if K else s.to(x.device)

        if sampling == "flash":  # decoupled: video and action clips get their own t
            sigma_v, sigma = (per_frame(s) for s in flash_sigmas(B * n, shift, generator))
            modality = frame_roles(enc.num_views, F)[0].to(x.device)  # (2VF,)
            sigma_frames = torch.where(modality == ACTION, frame_timesteps(states, sigma),
                                       frame_timesteps(states, sigma_v))  # fmt: skip
        else:
            sigma = per_frame(sample_sigmas(B * n, shift, sampling, generator))
            sigma_frames = frame_timesteps(states, sigma)  # (B, 2VF)
        noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        x_t, target = add_noise(x, noise, sigma_frames[:, None, :, None, None])
        context = enc.context
        drop = torch.rand(B, generator=generator) < prompt_dropout
        if drop.any():
            empty = self.text_encoder.encode([""]).to(x.device)  # (1, S, D)
            context = torch.where(drop.to(x.device)[:, None, None], empty, context)
        if K:  # teacher forcing: noisy chunks against clean copies of the earlier ones
            pred = self.teacher_forced_velocity(x_t, sigma_frames, x, states, enc, context)
        else:
            pred = self.velocity(x_t, sigma_frames, x, states, enc, context)
        predicted = states == PREDICTED  # (B, 2VF)
        if enc.frame_valid is not None:
            predicted = predicted & enc.frame_valid
        if keep is not None:
            predicted = predicted & keep.to(predicted.device)[:, None]
        mask = predicted[:, None, :, None, None].to(pred.dtype)  # (B, 1, 2VF, 1, 1)
        weight = mask
        if action_weight != 1.0:
            # Action frames carry a few blobs among empty tokens, a sparse signal next to
            # the video: weighting them up makes the model localise them sooner.
            modality = frame_roles(enc.num_views, enc.frames_per_clip)[0].to(x.device)  # (2VF,)
            w = torch.where(modality == ACTION, action_weight, 1.0).to(pred.dtype)
            weight = mask * w[None, None, :, None, None]
        err = (pred.float() - target.float()).pow(2) * weight
        denom = weight.sum() * x.shape[1] * x.shape[3] * x.shape[4]
        loss = err.sum() / denom.clamp_min(1)
        info = {"tasks": tasks, "states": states, "sigma": sigma, "mask": mask}
        if blob_weight > 0:
            info["blob"] = self.blob_loss(x_t, pred, sigma_frames, x, predicted, enc.num_views)
            loss = loss + blob_weight * info["blob"]
        return loss, info

    def blob_loss(self, x_t, pred, sigma_frames, clean, predicted, num_views: int):
        """:func:`blob_centroid_loss` of the action images implied by ``pred`` against ``clean``'s.

        x_t, pred, clean: (B, C, 2VF, h, w) in the diffusion space; sigma_frames,
        predicted: (B, 2VF). The targets are the clean latents decoded (what the codec
        can represent), not the rendered images.
        """
        decode = getattr(self.latent_codec, "decode_linear", None)
        if self.config.action_representation == "vector":
            raise ValueError("blob_weight needs action images; this model's actions are vectors")
        if decode is None:
            raise ValueError(f"blob_weight needs a linear latent codec (patch-PCA), not "
                             f"{type(self.latent_codec).__name__}")  # fmt: skip
        x0 = predicted_clean(x_t, pred, sigma_frames[:, None, :, None, None])
        _, a_pred = unpack_clips(self.plain_latents(x0, num_views), num_views)  # (B, V, C, F, h, w)
        with torch.no_grad():
            _, a_true = unpack_clips(self.plain_latents(clean, num_views), num_views)
            heat_true = decode(a_true.flatten(0, 1).float())  # (B V, 3, T, H, W)
        heat_pred = decode(a_pred.flatten(0, 1).float())  # (B V, 3, T, H, W)
        modality = frame_roles(num_views, clean.shape[2] // (2 * num_views))[0]
        frames = predicted[:, modality.to(predicted.device) == ACTION]  # (B, V F), view-major
        frames = frames.reshape(-1, clean.shape[2] // (2 * num_views))  # (B V, F)
        return blob_centroid_loss(
            heat_pred, heat_true, source_frames(frames, self.latent_codec.temporal_factor)
        )
