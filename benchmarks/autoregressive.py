"""The autoregressive loop's chunks (issue 11): Flash (1 step) against 4 and 10, and where a chunk's time goes.

    .venv/bin/python benchmarks/autoregressive.py --models runs/tiny-ar runs/tiny-ar-flash \
        --bidirectional models/tiny [--episodes 4] [--quick]

On held-out expert episodes (in-domain seeds 10,000+, never rolled out or trained on),
each 9-frame clip is replayed through the policy's own :class:`AutoregressivePlanner` as
the closed loop would run it (its default: views written, not poses): prefill with frame
0, plan chunk 1 (frames 1-4), show the planner the 4 recorded observations, plan chunk 2
(frames 5-8) against the cache holding them. Plans are decoded as the policy decodes them
(the current rotation kept where the rotation points are found in no view). Each chunk's decoded positions are compared with the recorded ones
(median over frames, mm; 2 views), for every model and step count, and timed on one
thread. The breakdown wraps the transformer, the latent codec and the geometric decoder
and counts the rest (batch building, action-image drawing, scheduler) as "other". A
bidirectional model, when given, is timed planning its whole 9-frame clip (one
closed-loop re-plan) in the same run, for the ratio.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
VIEWS = ("front", "left_shoulder")


class Timers:
    """Wall time spent inside wrapped callables, by name (nested calls are not double counted
    because the wrapped parts never call each other)."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def wrap(self, obj, attr: str, name: str) -> None:
        fn = getattr(obj, attr)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[name] += time.perf_counter() - t0

        setattr(obj, attr, timed)


def observations(clip: dict) -> list[dict]:
    pos, rot, grip = clip["trajectory"]
    return [
        {"images": {v: clip["images"][i][j] for i, v in enumerate(VIEWS)},
         "cameras": {v: clip["cameras"][i][j] for i, v in enumerate(VIEWS)},
         "instruction": clip["instruction"], "ee_position": pos[j], "ee_rotation": rot[j],
         "gripper": float(grip[j])}
        for j in range(len(pos))
    ]  # fmt: skip


def run_model(path: str, clips: list[dict], steps: int, timers: Timers | None = None):
    """Per-chunk errors (m, per frame) and seconds per chunk plan (+ decode) of one model."""
    from actionimages.codec import decoder as dec_module
    from actionimages.infer.pipeline import WorldActionPipeline
    from actionimages.policy.autoregressive import AutoregressivePlanner

    pipe = WorldActionPipeline.from_pretrained(path)
    planner = AutoregressivePlanner(pipe, pipe.default_sampling.replace(steps=steps))
    decode = dec_module.decode_action_images
    if timers is not None:
        timers.wrap(pipe.wam.transformer, "forward_tokens", "transformer")
        timers.wrap(pipe.wam.latent_codec, "encode", "latent codec")
        timers.wrap(pipe.wam.latent_codec, "decode", "latent codec")
        decode = _timed(decode, timers, "action decoder")
    errors, seconds, failures = {1: [], 2: []}, [], 0
    for clip in clips:
        obs = observations(clip)
        planner.reset()
        for c, (start, stop) in enumerate(((0, 4), (4, 8))):
            for o in obs[1 : start + 1] if c else ():  # the chunk just executed, as observed
                planner.observe(o, VIEWS)
            t0 = time.perf_counter()
            plan = planner.plan(obs[start], VIEWS)
            try:
                traj = decode(plan.actions, plan.cams, layout=pipe.clip.layout, sigma=pipe.clip.sigma,
                              fallback_rotation=obs[start]["ee_rotation"])  # as the policy decodes  # fmt: skip
            except ValueError:
                traj = None
            seconds.append(time.perf_counter() - t0)
            if traj is None:
                failures += 1
                continue
            truth = clip["trajectory"][0][start + 1 : stop + 1]
            errors[c + 1].extend(np.linalg.norm(traj.position[1:] - truth, axis=1).tolist())
    return {k: np.asarray(v) for k, v in errors.items()}, np.asarray(seconds), failures


def _timed(fn, timers: Timers, name: str):
    holder = type("H", (), {})()
    holder.f = fn
    timers.wrap(holder, "f", name)
    return holder.f


def run_bidirectional(path: str, clips: list[dict], steps: int):
    """The bidirectional closed loop on the same steps: a fresh plan from frame 0 and one
    from frame 4, each executing its frames 1-4 -> (errors per chunk, seconds per plan)."""
    from actionimages.codec.decoder import decode_action_images
    from actionimages.infer.pipeline import WorldActionPipeline

    pipe = WorldActionPipeline.from_pretrained(path)
    errors, seconds = {1: [], 2: []}, []
    for clip in clips:
        for c, start in enumerate((0, 4)):
            batch, cams = pipe.make_batch([im[start] for im in clip["images"]],
                                          [cv[start] for cv in clip["cameras"]], clip["instruction"])  # fmt: skip
            t0 = time.perf_counter()
            out = pipe(batch, "generate", pipe.default_sampling.replace(steps=steps))
            seconds.append(time.perf_counter() - t0)
            try:
                traj = decode_action_images(out.actions[0].double().numpy()[:, :5], [cv[:5] for cv in cams],
                                            layout=pipe.clip.layout, sigma=pipe.clip.sigma,
                                            fallback_rotation=clip["trajectory"][1][start])  # fmt: skip
            except ValueError:
                continue
            truth = clip["trajectory"][0][start + 1 : start + 5]
            errors[c + 1].extend(np.linalg.norm(traj.position[1:] - truth, axis=1).tolist())
    return {k: np.asarray(v) for k, v in errors.items()}, np.asarray(seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--models", nargs="+", required=True, help="autoregressive model folders or runs"
    )
    ap.add_argument(
        "--bidirectional", default=None, help="a bidirectional model for the time ratio"
    )
    ap.add_argument("--episodes", type=int, default=4, help="held-out expert episodes per task")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 4, 10])
    ap.add_argument("--first", type=int, default=0,
                    help="first held-out episode (100+: the validation set; no BENCHMARKS.md)")  # fmt: skip
    ap.add_argument(
        "--quick", action="store_true", help="one episode of one task; no BENCHMARKS.md"
    )
    args = ap.parse_args()
    from actionimages.eval.evaluate import heldout_episodes
    from actionimages.eval.generation import episode_clips
    from actionimages.sim.splits import get_split

    tasks = ("press_button",) if args.quick else get_split("in_domain").tasks
    eps = heldout_episodes(tasks, VIEWS, 64, 1 if args.quick else args.episodes, first=args.first)
    clips = [c for ep in eps for c in episode_clips(ep, VIEWS, 9)[: 1 if args.quick else 3]]
    rows = ["| model | steps | position error, median (mm): frames 1-4 | frames 5-8 | undecodable chunks | "
            "time per chunk (ms) | vs 10 steps |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    med = lambda e: 1000 * float(np.median(e)) if len(e) else float("nan")  # noqa: E731
    breakdown = {}
    for path in args.models:
        results = {}
        for steps in args.steps:
            timers = Timers() if steps == max(args.steps) else None
            err, sec, fails = run_model(path, clips, steps, timers)
            results[steps] = (err, sec, fails)
            if timers is not None:
                total = float(sec.sum())
                parts = dict(timers.seconds)
                parts["other"] = total - sum(parts.values())
                breakdown[(path, steps)] = (
                    total / len(sec),
                    {k: v / total for k, v in parts.items()},
                )
        ref = float(np.median(results[max(args.steps)][1]))
        for steps, (err, sec, fails) in results.items():
            t = float(np.median(sec))
            rows.append(f"| `{path}` | {steps} | {med(err[1]):.0f} | {med(err[2]):.0f} | {fails}/{len(sec)} | "
                        f"{1000 * t:.0f} | {t / ref:.2f}x |")  # fmt: skip
    lines = rows + [""]
    lines += ["| model, steps | ms per chunk | transformer | latent codec | action decoder | other |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for (path, steps), (per, share) in breakdown.items():
        lines.append(f"| `{path}`, {steps} | {1000 * per:.0f} | "
                     + " | ".join(f"{100 * share.get(k, 0):.0f}%" for k in
                                  ("transformer", "latent codec", "action decoder", "other")) + " |")  # fmt: skip
    if args.bidirectional:
        err, bd = run_bidirectional(args.bidirectional, clips, max(args.steps))
        ar = breakdown[(args.models[0], max(args.steps))][0]
        lines += ["", f"Bidirectional `{args.bidirectional}` in its closed loop on the same steps (a fresh "
                  f"plan from frame 0 and one from frame 4, each executing its first 4 frames, "
                  f"{max(args.steps)} steps): position error {med(err[1]):.0f} mm (frames 1-4) and "
                  f"{med(err[2]):.0f} mm (frames 5-8); {1000 * float(np.median(bd)):.0f} ms per plan "
                  f"(latent decoding included, action decoding not), against {1000 * ar:.0f} ms for an "
                  f"autoregressive chunk of `{args.models[0]}` (action decoding included): "
                  f"{float(np.median(bd)) / ar:.2f}x."]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if not args.quick and args.first == 0:
        device = f"{platform.machine()} CPU, 1 thread, torch {torch.__version__}"
        section = (f"\n## Autoregressive chunks: Flash and the per-chunk time ({date.today()}, {device})\n\n"
                   f"`benchmarks/autoregressive.py --episodes {args.episodes}`: {len(clips)} held-out clips "
                   f"(in-domain seeds 10,000+), 2 chunks each planned as the closed loop does (the first from "
                   f"the prefilled observation, the second after the 4 recorded observations were written "
                   f"into the cache). Errors: decoded position against the recording, per frame.\n\n{text}\n")  # fmt: skip
        bench = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
        bench.write_text(bench.read_text() + section)


if __name__ == "__main__":
    main()
