"""``actionimages sim ...``: record expert demos, evaluate policies, inspect the benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VIEWS = "front,left_shoulder,right_shoulder,overhead,wrist"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="the built-in PyBullet benchmark: record, eval, render, info")
    sim = p.add_subparsers(dest="sim_command", required=True, metavar="SUBCOMMAND")

    r = sim.add_parser("record", help="record scripted-expert demos as a LeRobot v3 dataset")
    r.add_argument(
        "--task", required=True, help="task name(s), comma-separated, or 'all' (split's)"
    )
    r.add_argument("--episodes", type=int, required=True, help="episodes the dataset should hold")
    r.add_argument("--out", type=Path, required=True, help="dataset folder (reopened to resume)")
    r.add_argument("--split", default="train", help="split (cameras, looks, seeds); default train")
    _common(r)
    r.add_argument("--fps", type=float, default=10.0, help="control and recording rate")
    r.add_argument("--max-attempts", type=int, default=5, help="expert retries per episode")
    r.add_argument("--allow-heldout", action="store_true", help="record tasks outside the split")
    r.add_argument("--video-codec", choices=("av1", "h264"), default=None,
                   help="video codec of a new dataset (default: AV1, as LeRobot)")  # fmt: skip
    r.set_defaults(func=_record)

    e = sim.add_parser("eval", help="evaluate a policy: results.json, results.md, MP4s")
    e.add_argument("--policy", required=True, help="'expert', 'random' or a checkpoint path")
    e.add_argument("--tasks", default=None, help="comma-separated tasks (default: the split's)")
    e.add_argument("--split", default="in_domain", help="in_domain, zero_shot, ... (see sim info)")
    e.add_argument("--episodes", type=int, default=20, help="episodes per task")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    _common(e)
    e.add_argument("--videos", type=int, default=2, help="rollout videos per task")
    e.add_argument("--overlay", action="store_true", help="draw commanded actions on the videos")
    e.set_defaults(func=_eval)

    v = sim.add_parser("render", help="PNG grid: the first frame of every task from every view")
    v.add_argument("--out", type=Path, default=Path("docs/figures/sim_tasks.png"))
    v.add_argument("--tasks", default="all", help="comma-separated tasks or 'all'")
    v.add_argument("--split", default="train", help="cameras/looks of this split")
    v.add_argument("--seed", type=int, default=0)
    _common(v)
    v.set_defaults(func=_render)

    i = sim.add_parser("info", help="list tasks, splits, cameras and variation presets")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_info)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cameras", default=VIEWS, help=f"comma-separated views (default {VIEWS})")
    p.add_argument("--image-size", type=int, default=128, help="square image size in pixels")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _setup() -> None:
    import torch

    torch.set_num_threads(1)  # PyBullet is single-threaded; leave cores to others


def _record(args: argparse.Namespace) -> int:
    _setup()
    from actionimages.sim.record import RecordConfig, parse_list, record

    cfg = RecordConfig(
        tasks=parse_list(args.task), episodes=args.episodes, split=args.split,
        cameras=parse_list(args.cameras), image_size=(args.image_size, args.image_size),
        fps=args.fps, max_attempts=args.max_attempts, allow_heldout=args.allow_heldout,
        video_codec=args.video_codec,
    )  # fmt: skip
    cfg.resolved_tasks()  # unknown or held-out tasks: refused before anything is recorded
    summary = record(cfg, args.out, progress=not args.quiet)
    print(
        f"{args.out}: {summary['episodes']} episodes ({summary['written']} new, "
        f"{len(summary['failed'])} failed expert rollouts retried)"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    _setup()
    from actionimages.eval.harness import EvalConfig, evaluate, markdown_table
    from actionimages.policy.factory import make_policy
    from actionimages.sim.record import parse_list

    factory = make_policy(args.policy)  # fails fast on a bad path
    cfg = EvalConfig(
        split=args.split, tasks=parse_list(args.tasks) if args.tasks else None,
        episodes=args.episodes, cameras=parse_list(args.cameras),
        image_size=(args.image_size, args.image_size), videos_per_task=args.videos,
        overlay_actions=args.overlay,
    )  # fmt: skip
    summary = evaluate(factory, cfg, args.out, name=str(args.policy), progress=not args.quiet)
    print(markdown_table(summary), end="")
    print(f"wrote {args.out / 'results.json'}")
    return 0


def _render(args: argparse.Namespace) -> int:
    _setup()
    from actionimages.sim.preview import task_grid
    from actionimages.sim.record import parse_list
    from actionimages.sim.splits import get_split
    from actionimages.sim.tasks import SIM_TASKS

    tasks = tuple(SIM_TASKS) if args.tasks == "all" else parse_list(args.tasks)
    get_split(args.split)
    path = task_grid(tasks, parse_list(args.cameras), args.image_size, args.out,
                     split=args.split, seed=args.seed)  # fmt: skip
    print(f"wrote {path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from actionimages.sim import CAMERA_RANGES, SIM_TASKS, SPLITS, VARIATION_PRESETS
    from actionimages.sim.cameras import ALL_VIEWS

    info = {
        "tasks": {n: {"instructions": list(c.instructions), "max_steps": c.max_steps}
                  for n, c in SIM_TASKS.items()},
        "splits": {n: {"tasks": list(s.tasks), "camera_range": s.camera_range,
                       "variation": s.variation, "objects": s.objects,
                       "seed_offset": s.seed_offset, "description": s.description}
                   for n, s in SPLITS.items()},
        "cameras": list(ALL_VIEWS),
        "camera_ranges": sorted(CAMERA_RANGES),
        "variation_presets": sorted(VARIATION_PRESETS),
    }  # fmt: skip
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("tasks:")
    for n, t in info["tasks"].items():
        print(f"  {n:<14} e.g. {t['instructions'][0]!r}")
    print("splits:")
    for n, s in info["splits"].items():
        print(f"  {n:<18} {s['description']}")
        print(f"  {'':<18} tasks: {', '.join(s['tasks'])}")
    print(f"cameras: {', '.join(info['cameras'])}")
    print(f"camera ranges: {', '.join(info['camera_ranges'])}")
    print(f"variation presets: {', '.join(info['variation_presets'])}")
    return 0
