"""Rank training runs quickly: generation / labelling errors on held-out expert clips.

    python scripts/quick_eval.py runs/exp-state --episodes 2 --clips 3

Prints the GenerationEvaluator summary (predicted frames only) plus per-frame medians of
the 3-D position error, as JSON. A one-off tool for recipe search; the package never
imports it.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--episodes", type=int, default=2, help="held-out episodes per task")
    ap.add_argument("--clips", type=int, default=3, help="clips per episode")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument(
        "--shift", type=float, default=None, help="sampling shift (default: the model's)"
    )
    ap.add_argument("--no-state", action="store_true", help="do not give the current pose")
    ap.add_argument("--first", type=int, default=100,
                    help="first held-out episode index: 100+ is the validation set; the "
                         "reported metrics use 0..")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(1)
    from actionimages.clips import source_frames_per_clip_frame as frame_step
    from actionimages.eval.evaluate import heldout_episodes
    from actionimages.eval.generation import GenerationEvaluator, episode_clips
    from actionimages.infer.pipeline import WorldActionPipeline
    from actionimages.sim.splits import get_split

    pipe = WorldActionPipeline.from_pretrained(args.checkpoint)
    if args.no_state:
        pipe.wam.config = pipe.wam.config.replace(first_action_prob=0.0)
    sampling = pipe.default_sampling.replace(steps=args.steps)
    if args.shift is not None:
        sampling = sampling.replace(shift=args.shift)
    ev = GenerationEvaluator(pipe, sampling)
    views = ("front", "left_shoulder")
    eps = heldout_episodes(get_split("in_domain").tasks, views, 64, args.episodes, first=args.first)
    still = []  # the "hold still" reference: frame 0's pose repeated (mean per clip)
    still_frames = []  # the same per predicted frame (compare with */motion_err_m_median)
    for ep in eps:
        for c in episode_clips(
            ep, views, pipe.clip.num_frames, frame_step=frame_step(ep.fps, pipe.clip.fps)
        )[: args.clips]:
            ev.add(c)
            pos = np.asarray(c["trajectory"][0])
            still.append(float(np.linalg.norm(pos[1:] - pos[0], axis=1).mean()))
            still_frames.extend(np.linalg.norm(pos[1:] - pos[0], axis=1).tolist())
    out = ev.summary()
    out["hold_still/pos_err_m_median"] = float(np.median(still))
    out["hold_still/motion_err_m_median"] = float(np.median(still_frames))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
