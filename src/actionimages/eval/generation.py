"""Generation, action-conditioned and labelling metrics on held-out episodes (paper Tables 4-6).

For every clip of T frames cut from a held-out expert episode:

    generate   first frame -> video and action images; video vs real (PSNR, SSIM, LPIPS, FVD)
               and decoded actions vs the recorded ones (3-D error in m / deg, 2-D error in px)
    a2v        first frame + recorded trajectory -> video; video vs real
    label      real video -> action images -> trajectory; 3-D error and TAP-Vid metrics of the
               three semantic points tracked in every view

All comparisons are at the model's resolution, in the model frame the inputs are framed in
(:func:`actionimages.infer.inputs.make_batch`), on the predicted frames 1..T-1 only.
LPIPS and FVD run when their networks are given (local weights, see ``eval.lpips`` and
``eval.fvd``), and are otherwise reported as missing rather than guessed.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from actionimages.eval.metrics import action_errors_3d, psnr, ssim, tapvid_metrics
from actionimages.infer.pipeline import PipelineOutput, SamplingConfig, WorldActionPipeline


def episode_clips(
    episode, views, num_frames: int, stride: int | None = None, frame_step: int = 1
) -> list[dict]:
    """Windows of ``num_frames`` frames of a recorded :class:`Episode` (every ``stride`` frames).

    ``frame_step``: episode frames per clip frame (a model trained at a lower frame rate
    than the episode's, e.g. 4 for 2.5 fps clips of a 10 fps episode).
    """
    span = (num_frames - 1) * frame_step + 1  # episode frames one clip covers
    stride = stride or span - 1
    T = len(episode.position)
    clips = []
    for start in range(0, max(1, T - span + 1), stride):
        idx = np.minimum(np.arange(start, start + span, frame_step), T - 1)
        clips.append({
            "images": [episode.images[v][idx] for v in views],  # V x (T, H, W, 3) uint8
            "cameras": [[episode.cameras[v][i] for i in idx] for v in views],
            "trajectory": (episode.position[idx], episode.rotation[idx], episode.gripper[idx]),
            "instruction": episode.instruction, "task": episode.task, "start": start,
        })  # fmt: skip
    return clips


def _project(points: np.ndarray, cams) -> tuple[np.ndarray, np.ndarray]:
    """(T, P, 3) world points, V x T cameras -> pixels (V, T, P, 2) and in-image mask (V, T, P)."""
    uv = np.zeros((len(cams), *points.shape[:2], 2))
    inside = np.zeros((len(cams), *points.shape[:2]), dtype=bool)
    for v, cv in enumerate(cams):
        for t, cam in enumerate(cv):  # V x T camera calls, not per pixel
            px, depth = cam.project(points[t])
            uv[v, t] = px
            inside[v, t] = (
                (depth > 0)
                & (px[:, 0] >= 0)
                & (px[:, 0] < cam.width)
                & (px[:, 1] >= 0)
                & (px[:, 1] < cam.height)
            )
    return uv, inside


def _points(position, rotation, clip) -> np.ndarray:
    from actionimages.codec.encoder import semantic_points

    pts = semantic_points(torch.as_tensor(position, dtype=torch.float64), torch.as_tensor(rotation, dtype=torch.float64),
                          clip.axis_length, clip.layout)  # fmt: skip
    return pts.numpy()  # (T, 3, 3)


class GenerationEvaluator:
    """Accumulates per-clip metrics for the three modes; ``summary()`` averages them."""

    def __init__(
        self, pipeline: WorldActionPipeline, sampling: SamplingConfig, lpips=None, i3d=None
    ) -> None:
        sampling = sampling or pipeline.default_sampling  # None: the model's own settings
        self.pipe, self.sampling, self.lpips, self.i3d = pipeline, sampling, lpips, i3d
        self.values: dict[str, list[float]] = defaultdict(list)
        # per predicted frame (3-D) and per visible point (2-D): the medians the targets use
        self.per_frame: dict[str, list[float]] = defaultdict(list)
        self.videos: dict[str, list[np.ndarray]] = defaultdict(list)  # for FVD: (T, H, W, 3) uint8
        self.examples: list[dict] = []

    def _video_metrics(self, prefix: str, out: PipelineOutput, real: torch.Tensor) -> None:
        pred = out.video[0][:, 1:]  # (V, T-1, H, W, 3) predicted frames only
        gt = real[:, 1:]
        self.values[f"{prefix}/psnr"].append(psnr(pred, gt))
        self.values[f"{prefix}/ssim"].append(ssim(pred, gt))
        if self.lpips is not None:
            from actionimages.eval.lpips import lpips_distance

            self.values[f"{prefix}/lpips"].append(
                float(lpips_distance(self.lpips, pred.flatten(0, 1), gt.flatten(0, 1)).mean())
            )
        self.videos[f"{prefix}/pred"].extend((pred.numpy() * 255).round().astype(np.uint8))
        self.videos[f"{prefix}/real"].extend((gt.numpy() * 255).round().astype(np.uint8))

    def _action_metrics(self, prefix: str, out: PipelineOutput, cams, trajectory) -> dict | None:
        try:
            traj = self.pipe.decode_actions(out, cams)
        except ValueError:  # nothing decodable in the generated action images
            self.values[f"{prefix}/decode_failures"].append(1.0)
            return None
        self.values[f"{prefix}/decode_failures"].append(0.0)
        pos, rot, grip = (np.asarray(a) for a in trajectory)
        err = action_errors_3d(traj.position[1:], pos[1:], traj.rotation[1:], rot[1:])
        frame_err = np.linalg.norm(np.asarray(traj.position[1:]) - pos[1:], axis=-1)  # (T-1,)
        self.per_frame[f"{prefix}/pos_err_m"].extend(frame_err.tolist())
        # The same error split in two: frame 0 (the current pose: grounding) and the motion
        # from it (what a policy anchored at its measured pose executes, PolicyConfig.anchor).
        dec = np.asarray(traj.position, dtype=np.float64)  # (T, 3)
        self.values[f"{prefix}/frame0_err_m"].append(float(np.linalg.norm(dec[0] - pos[0])))
        motion = np.linalg.norm((dec[1:] - dec[:1]) - (pos[1:] - pos[:1]), axis=-1)  # (T-1,)
        self.per_frame[f"{prefix}/motion_err_m"].extend(motion.tolist())
        self.values[f"{prefix}/pos_err_m"].append(err["pos_mean_m"])
        self.values[f"{prefix}/rot_err_deg"].append(err["rot_mean_deg"])
        self.values[f"{prefix}/gripper_err"].append(
            float(np.abs(traj.gripper[1:] - grip[1:]).mean())
        )
        clip = self.pipe.clip
        uv_p, in_p = _project(
            _points(traj.position, traj.rotation, clip)[1:], [c[1:] for c in cams]
        )
        uv_g, in_g = _project(_points(pos, rot, clip)[1:], [c[1:] for c in cams])
        both = in_p & in_g
        if both.any():
            px = np.linalg.norm(uv_p - uv_g, axis=-1)[both]  # (N,) every visible point
            self.values[f"{prefix}/err_2d_px"].append(float(px.mean()))
            self.per_frame[f"{prefix}/err_2d_px"].extend(px.tolist())
        return {"traj": traj, "uv_pred": uv_p, "in_pred": in_p, "uv_true": uv_g, "in_true": in_g}

    @torch.no_grad()
    def add(self, clip: dict) -> None:
        pipe, cfg = self.pipe, self.sampling
        full, cams = pipe.make_batch(
            clip["images"], clip["cameras"], clip["instruction"], clip["trajectory"]
        )
        real = (full["video"][0] + 1) / 2  # (V, T, H, W, 3) in [0, 1]
        first = [im[0] for im in clip["images"]]
        first_cams = [c[0] for c in clip["cameras"]]
        # generate: the policy's mode
        pos, rot, grip = clip["trajectory"]
        state = (pos[0], rot[0], grip[0]) if pipe.takes_state else None
        gen_batch, _ = pipe.make_batch(first, first_cams, clip["instruction"], state=state)
        gen = pipe(gen_batch, "generate", cfg)
        self._video_metrics("generate", gen, real)
        self._action_metrics("generate", gen, cams, clip["trajectory"])
        # a2v: the recorded trajectory drawn as action images (or as vectors)
        a2v_batch = dict(full)
        a2v_batch["video"] = gen_batch["video"]  # only frame 0 is seen
        a2v = pipe(a2v_batch, "a2v", cfg)
        self._video_metrics("a2v", a2v, real)
        # label: the real video -> actions (given the first pose when the model takes it)
        label = pipe(dict(full, first_action_known=state is not None), "label", cfg)
        res = self._action_metrics("label", label, cams, clip["trajectory"])
        if res is not None:
            V, Tm, P = res["in_true"].shape
            # TAP-Vid: each (view, semantic point) is a track over the predicted frames.
            tracks = lambda uv: uv.transpose(0, 2, 1, 3).reshape(V * P, Tm, 2)  # noqa: E731  (V, T, P, 2) -> (V P, T, 2)
            occl = lambda m: ~m.transpose(0, 2, 1).reshape(V * P, Tm)  # noqa: E731
            tv = tapvid_metrics(tracks(res["uv_pred"]), occl(res["in_pred"]), tracks(res["uv_true"]), occl(res["in_true"]),
                                image_size=(pipe.clip.height, pipe.clip.width))  # fmt: skip
            for k, v in tv.items():
                if np.isfinite(v):
                    self.values[f"label/tapvid_{k}"].append(float(v))
        if state is not None:  # and in the paper's setting: no pose given, the video alone
            self._action_metrics("label_nopose", pipe(dict(full, first_action_known=False), "label", cfg),
                                 cams, clip["trajectory"])  # fmt: skip
        if len(self.examples) < 4:
            self.examples.append(
                {"task": clip["task"], "real": real, "generate": gen, "a2v": a2v, "label": label}
            )

    def summary(self) -> dict:
        out = {k: float(np.mean(v)) for k, v in sorted(self.values.items())}
        for k, v in sorted(self.per_frame.items()):  # medians over frames / points, not clips
            out[f"{k}_median"] = float(np.median(v))
        out["clips"] = len(self.values.get("generate/psnr", []))
        if self.i3d is not None:
            from actionimages.eval.fvd import fvd

            for mode in ("generate", "a2v"):
                pred, real = self.videos[f"{mode}/pred"], self.videos[f"{mode}/real"]
                if len(pred) >= 2:
                    out[f"{mode}/fvd"] = fvd(self.i3d, np.stack(pred), np.stack(real))
        return out
