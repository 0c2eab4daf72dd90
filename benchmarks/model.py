"""Model / training benchmark: latent-codec quality and tiny-model training throughput.

    .venv/bin/python benchmarks/model.py [--out outputs/bench_model] [--episodes 12]

1. Records ``--episodes`` expert episodes in the built-in simulator (5 training tasks,
   front / left_shoulder / right_shoulder cameras, 64 x 64, H.264) unless already there.
2. Cuts clips with the data sampler (``ClipConfig.debug()``: 2 views x 9 frames at 64 x 64),
   fits the patch-PCA codec of the ``tiny`` model on the clips of the first episodes and
   measures, on clips of the held-out last episodes: PSNR of simulator video and of action
   images after encode + decode, and the 7-DoF error of ``decode_action_images`` on the
   reconstructed action images next to its error on the original ones.
3. Times ``Trainer.train_step`` of the ``tiny`` model (batch 2, codec + cached MiniLM text
   + forward + backward + AdamW; data loading excluded) with ``torch.set_num_threads(1)``.
4. Overfits one batch with the ``debug`` model (fixed noise / timesteps / tasks, 300 steps).

Prints a Markdown report (also written to ``<out>/report.md``).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


def record_sim(out: Path, episodes: int) -> Path:
    from actionimages.sim import TRAIN_TASKS
    from actionimages.sim.record import RecordConfig, record

    data = out / "sim"
    cfg = RecordConfig(tasks=TRAIN_TASKS, episodes=episodes, cameras=("front", "left_shoulder", "right_shoulder"),
                       image_size=(64, 64), video_codec="h264")  # fmt: skip
    record(cfg, data, progress=False)
    return data


def clips_of(sampler, episodes, per_episode: int, seed: int):
    rng = np.random.default_rng(seed)
    return [sampler.clip(0, int(k), rng) for k in episodes for _ in range(per_episode)]


def codec_section(data: Path) -> tuple[list[str], object]:
    from actionimages.codec.decoder import decode_action_images
    from actionimages.codec.roundtrip import roundtrip_errors
    from actionimages.data.sampler import ClipConfig, ClipSampler, cameras_of
    from actionimages.model.config import ModelConfig
    from actionimages.model.latent import PatchPCACodec, psnr

    sampler = ClipSampler([data], ClipConfig.debug())
    n = sampler.datasets[0].num_episodes
    fit_eps, eval_eps = range(0, n - 3), range(n - 3, n)
    chw = lambda x: x.permute(0, 4, 1, 2, 3).float()  # (V, T, H, W, 3) -> (V, 3, T, H, W)  # noqa: E731
    mc = ModelConfig.preset("tiny")
    t0 = time.perf_counter()
    fit = clips_of(sampler, fit_eps, 6, seed=0)
    codec = PatchPCACodec(mc.out_channels, mc.temporal_factor, mc.spatial_factor)
    codec.fit(chw(torch.cat([c["video"], c["actions"]])) for c in fit)
    fit_s = time.perf_counter() - t0

    held = [c for c in clips_of(sampler, eval_eps, 4, seed=1) if bool(c["tasks"][0])]
    vid_psnr, act_psnr, errs_orig, errs_rec = [], [], [], []
    for c in held:
        video, actions = chw(c["video"]), chw(c["actions"])
        rv, ra = codec.decode(codec.encode(video)), codec.decode(codec.encode(actions))
        vid_psnr.append(psnr(rv, video))
        act_psnr.append(psnr(ra, actions))
        cams = [cameras_of(c, v) for v in range(video.shape[0])]
        truth = (
            c["position"].double().numpy(),
            c["rotation"].double().numpy(),
            c["gripper"].double().numpy(),
        )
        for images, errs in ((actions, errs_orig), (ra, errs_rec)):
            img = (
                ((images.permute(0, 2, 3, 4, 1) + 1) / 2).double().numpy()
            )  # (V, T, H, W, 3) in [0, 1]
            errs.append(roundtrip_errors(*truth, decode_action_images(img, cams)))

    def med(errs, field):
        return float(np.median([getattr(e, field) for e in errs]))

    lines = [
        f"Patch-PCA codec of the `tiny` model ({mc.out_channels} channels, space-time patches 3 x 4 x 8 x 8, "
        f"48x fewer numbers than pixels), fitted in {fit_s:.1f} s on {2 * len(fit)} clips "
        f"({len(fit)} samples x video + action) from {len(fit_eps)} simulator episodes; "
        f"{codec.explained_variance:.4f} of the patch variance kept. Held out: {len(held)} clips "
        f"(2 views x 9 frames at 64 x 64) from {len(eval_eps)} other episodes.",
        "",
        "| held-out metric | original action images | after PCA encode + decode |",
        "|---|---|---|",
        f"| PSNR, simulator video (dB) | - | {np.mean(vid_psnr):.2f} (min {np.min(vid_psnr):.2f}) |",
        f"| PSNR, action images (dB) | - | {np.mean(act_psnr):.2f} (min {np.min(act_psnr):.2f}) |",
        f"| position error, median of clip medians (mm) | {med(errs_orig, 'position_mm_median'):.3g} "
        f"| {med(errs_rec, 'position_mm_median'):.3g} |",
        f"| position error, median of clip p95 (mm) | {med(errs_orig, 'position_mm_p95'):.3g} "
        f"| {med(errs_rec, 'position_mm_p95'):.3g} |",
        f"| rotation error, median (deg) | {med(errs_orig, 'rotation_deg_median'):.3g} "
        f"| {med(errs_rec, 'rotation_deg_median'):.3g} |",
        f"| gripper error, median (max over clips) | {med(errs_orig, 'gripper_median'):.3g} "
        f"({max(e.gripper_max for e in errs_orig):.3g}) | {med(errs_rec, 'gripper_median'):.3g} "
        f"({max(e.gripper_max for e in errs_rec):.3g}) |",
    ]
    return lines, (sampler, codec)


def throughput_section(sampler, codec, steps: int = 20) -> list[str]:
    from torch.utils.data import default_collate

    from actionimages.model.config import ModelConfig
    from actionimages.model.text import CachedTextEncoder, build_text_encoder
    from actionimages.model.transformer import ActionImagesWanTransformer
    from actionimages.model.wam import WorldActionModel
    from actionimages.train.config import TrainConfig
    from actionimages.train.trainer import Trainer

    mc = ModelConfig.preset("tiny")
    text = CachedTextEncoder(build_text_encoder(mc.text_encoder, mc.text_dim, mc.text_length))
    wam = WorldActionModel(mc, ActionImagesWanTransformer.from_model_config(mc), codec, text)
    cfg = TrainConfig.preset(
        "tiny", output_dir="outputs/bench_model/run", report_to="none", save_every=0
    )
    trainer = Trainer(cfg, dataset=sampler, wam=wam, resume=False)
    batch = default_collate([sampler[i] for i in range(cfg.batch_size)])
    enc = wam.encode_batch(batch)
    params = sum(p.numel() for p in wam.transformer.parameters())
    tokens = enc.latents.shape[2] * (enc.latents.shape[3] // 2) * (enc.latents.shape[4] // 2)
    for _ in range(3):  # warm-up (MiniLM cache filled, allocator warm)
        trainer.train_step(batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(batch)
    dt = (time.perf_counter() - t0) / steps
    return [
        f"`tiny` model: {params / 1e6:.2f} M parameters (4 blocks, width 128), {tokens} tokens per sample "
        f"(2 views x (video + action) x 3 latent frames x 4 x 4 tokens), batch {cfg.batch_size}, float32, "
        "`torch.set_num_threads(1)`. One step = PCA encode + cached MiniLM text + forward + backward + "
        "AdamW; data loading excluded (see the Data section for the loader).",
        "",
        "| step time (ms) | training samples/s |",
        "|---|---|",
        f"| {dt * 1000:.0f} | {cfg.batch_size / dt:.2f} |",
    ]


def overfit_section(steps: int = 300) -> list[str]:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.model.helpers import debug_wam, synthetic_batch

    wam = debug_wam(seed=0)
    enc = wam.encode_batch(synthetic_batch(2))
    opt = torch.optim.AdamW(wam.transformer.parameters(), lr=2e-3)
    losses = []
    for _ in range(steps):
        loss, _ = wam.loss(enc, torch.Generator().manual_seed(0), (1, 1, 1, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return [
        f"Single-batch overfit (`debug` model, fixed noise/timesteps/tasks, AdamW 2e-3): loss "
        f"{losses[0]:.4f} -> {min(losses[-10:]):.3g} in {steps} steps ({losses[0] / min(losses[-10:]):.3g}x lower; "
        "the test requires >= 10x)."
    ]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path("outputs/bench_model"))
    ap.add_argument("--episodes", type=int, default=12)
    args = ap.parse_args()
    data = record_sim(args.out, args.episodes)
    codec_lines, (sampler, codec) = codec_section(data)
    report = [
        "## Model / training",
        "",
        f"`benchmarks/model.py`. Device: {platform.machine()} CPU, shared 2-core VM, no GPU lent to this "
        f"session; `torch.set_num_threads(1)`; torch {torch.__version__}; {date.today().isoformat()}.",
        "",
        *codec_lines,
        "",
        *throughput_section(sampler, codec),
        "",
        *overfit_section(),
    ]
    text = "\n".join(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
