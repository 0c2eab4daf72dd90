"""Sampling speed-ups (issue 6): batched CFG, velocity caching, torch.compile, as same-run ratios.

    .venv/bin/python benchmarks/sampling.py [--model models/tiny] [--repeats 5]

On held-out simulator clips (recorded here, 2 views x 9 frames at 64 x 64), the ``tiny``
model samples ``generate`` with 10 Euler steps and guidance 7.5 in each variant. Times
are medians over ``--repeats`` interleaved rounds on one CPU thread, reported as ratios
to the plain loop (guidance as two model calls per step) measured in the same run.
Quality change is measured against the plain loop's own output with the same seed:
PSNR of video and action images, and the distance between decoded positions (mm).
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


def clips(pipe, n: int):
    from actionimages.clips import source_frames_per_clip_frame as frame_step
    from actionimages.eval.evaluate import heldout_episodes
    from actionimages.eval.generation import episode_clips

    eps = heldout_episodes(("press_button", "open_drawer"), ("front", "left_shoulder"), 64, 1)
    out = []
    for ep in eps:
        for c in episode_clips(
            ep,
            ("front", "left_shoulder"),
            pipe.clip.num_frames,
            frame_step=frame_step(ep.fps, pipe.clip.fps),
        )[:n]:
            out.append(
                pipe.make_batch(
                    [im[0] for im in c["images"]], [cv[0] for cv in c["cameras"]], c["instruction"]
                )
            )
    return out


def main() -> None:
    from actionimages.eval.metrics import psnr
    from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/tiny")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--clips", type=int, default=2, help="clips per episode")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()

    pipe = WorldActionPipeline.from_pretrained(args.model)
    batches = clips(pipe, args.clips)
    base = SamplingConfig(steps=10, guidance=7.5, batched_cfg=False)
    variants = {
        "plain (CFG as 2 calls)": base,
        "batched CFG": base.replace(batched_cfg=True),
        "cache 0.99 (2 calls)": base.replace(cache_threshold=0.99),
        "batched CFG + cache 0.99": base.replace(batched_cfg=True, cache_threshold=0.99),
        "batched CFG + cache 0.95": base.replace(batched_cfg=True, cache_threshold=0.95),
    }
    times = {k: [] for k in variants}
    outs = {}
    for _ in range(args.repeats):  # interleaved, so load drifts hit every variant alike
        for name, cfg in variants.items():
            t0 = time.perf_counter()
            res = [pipe(b, "generate", cfg) for b, _ in batches]
            times[name].append(time.perf_counter() - t0)
            outs[name] = res
    compiled = None
    if not args.no_compile:
        orig = pipe.wam.transformer
        try:
            comp = torch.compile(orig, dynamic=False)
            cfg = variants["batched CFG"]

            def run(module):
                pipe.wam.transformer = module
                return [pipe(b, "generate", cfg) for b, _ in batches]

            run(comp)  # compiles (not timed)
            ct, plain_t = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                res = run(comp)
                ct.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                run(orig)
                plain_t.append(time.perf_counter() - t0)
            compiled = (np.median(plain_t) / np.median(ct), res)
        except Exception as err:  # a missing compiler toolchain: report, do not hide
            compiled = (None, str(err).splitlines()[0][:120])
        pipe.wam.transformer = orig

    ref = outs["plain (CFG as 2 calls)"]
    t_ref = np.median(times["plain (CFG as 2 calls)"])

    def quality(res):
        # predicted frames only: frame 0 of the video is the given observation in every variant
        vp = np.mean([psnr(a.video[:, :, 1:], b.video[:, :, 1:]) for a, b in zip(res, ref)])
        ap_ = np.mean([psnr(a.actions, b.actions) for a, b in zip(res, ref)])
        mm = []
        for a, b, (_, cams) in zip(res, ref, batches):
            try:
                pa, pb = (
                    pipe.decode_actions(a, cams).position,
                    pipe.decode_actions(b, cams).position,
                )
            except ValueError:  # no decodable blob in one of them
                continue
            mm.append(1000 * np.linalg.norm(pa - pb, axis=1).mean())
        mm = [m for m in mm if np.isfinite(m)]
        return vp, ap_, (f"{np.mean(mm):.2f} ({len(mm)}/{len(res)})" if mm else "n/a")

    rows = ["| variant | speed-up vs plain | model calls / sample | video PSNR vs plain (dB) | action-image PSNR vs plain (dB) | decoded position change, mm (clips decoded) |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name in variants:
        calls = np.mean([o.model_calls for o in outs[name]])
        q = (
            quality(outs[name])
            if name != "plain (CFG as 2 calls)"
            else (float("inf"), float("inf"), "0")
        )
        rows.append(
            f"| {name} | {t_ref / np.median(times[name]):.2f}x | {calls:.1f} | {q[0]:.1f} | {q[1]:.1f} | {q[2]} |"
        )
    if compiled is not None:
        if compiled[0] is None:
            rows.append(f"| torch.compile | failed: {compiled[1]} | | | | |")
        else:
            q = quality(compiled[1])
            rows.append(
                f"| batched CFG + torch.compile (vs batched CFG, same run) | {compiled[0]:.2f}x | 10.0 | {q[0]:.1f} | {q[1]:.1f} | {q[2]} |"
            )
    report = "\n".join([
        f"Sampling speed ({date.today()}, {platform.processor() or platform.machine()}, 1 CPU thread, "
        f"model `{args.model}`, {len(batches)} clips, 2 views x 9 frames at 64x64, 10 Euler steps, guidance 7.5, "
        f"median of {args.repeats} interleaved rounds; plain loop {1000 * t_ref / len(batches):.0f} ms per sample)", "", *rows,
    ])  # fmt: skip
    print(report)
    out = Path("outputs/bench_sampling")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
