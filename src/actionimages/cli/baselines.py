"""``actionimages baseline ...``: train and evaluate the behaviour-cloning baseline.

actionimages baseline train-bc --data /work/data/sim-train --out runs/bc-tiny --steps 20000 \
    --batch-size 16 --preset tiny
actionimages baseline eval-bc --checkpoint runs/bc-tiny --split in_domain --episodes 20 \
    --out runs/bc-tiny/eval-in_domain
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="baseline policies: train-bc, eval-bc")
    base = p.add_subparsers(dest="baseline_command", required=True, metavar="SUBCOMMAND")

    t = base.add_parser("train-bc", help="train multi-view behaviour cloning (resumes from --out)")
    t.add_argument("--data", nargs="+", required=True, help="LeRobot v3 dataset folder(s)")
    t.add_argument("--out", type=Path, required=True, help="run folder (reopened to resume)")
    t.add_argument("--steps", type=int, required=True, help="total optimiser steps")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--preset", default="tiny", help="BCConfig preset: tiny or debug")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this")
    t.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    t.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a BCConfig field (JSON values: 1e-4, true, [32,64])")  # fmt: skip
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    e = base.add_parser("eval-bc", help="evaluate a trained BC policy on the simulator")
    e.add_argument("--checkpoint", type=Path, required=True, help="a train-bc output folder")
    e.add_argument("--split", default="in_domain", help="in_domain, zero_shot_cameras, ...")
    e.add_argument("--tasks", default=None, help="comma-separated tasks (default: the split's)")
    e.add_argument("--episodes", type=int, default=20, help="episodes per task")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    e.add_argument("--views", default="front,left_shoulder", help="comma-separated views")
    e.add_argument("--execute", type=int, default=4, help="poses executed per predicted chunk")
    e.add_argument("--image-size", type=int, default=None,
                   help="simulator image size (default: the model's)")  # fmt: skip
    e.add_argument("--videos", type=int, default=2, help="rollout videos per task")
    e.add_argument("--max-steps", type=int, default=None, help="episode limit (default: task's)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_eval)


def config_from_args(preset: str, overrides: list[str]):
    """A :class:`BCConfig` preset with ``KEY=VALUE`` overrides (values parsed as JSON)."""
    from actionimages.baselines.bc import BCConfig
    from actionimages.cli.overrides import parse_overrides

    values = parse_overrides(overrides, BCConfig)
    return BCConfig.preset(preset, **values)


def _train(args: argparse.Namespace) -> int:
    import torch

    from actionimages.baselines.bc_train import train_bc

    torch.set_num_threads(args.threads)
    info = train_bc(config_from_args(args.preset, args.set), args.data, args.out, args.steps,
                    args.batch_size, args.seed, args.max_minutes, args.num_workers,
                    progress=not args.quiet)  # fmt: skip
    loss = info["last_log"].get("loss")
    print(f"{args.out}: step {info['step']} ({info['stopped']}), "
          f"loss {'n/a' if loss is None else f'{loss:.4f}'}, "
          f"{info['samples_per_second_last_run']:.1f} samples/s")  # fmt: skip
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)  # PyBullet is single-threaded; leave cores to others
    from actionimages.baselines.bc import BCPolicy
    from actionimages.eval.harness import EvalConfig, evaluate, markdown_table
    from actionimages.sim.record import parse_list

    views = parse_list(args.views)
    policy = BCPolicy.load(args.checkpoint, views=views, execute=args.execute)
    size = args.image_size or policy.config.image_size
    cfg = EvalConfig(split=args.split, tasks=parse_list(args.tasks) if args.tasks else None,
                     episodes=args.episodes, cameras=views, image_size=(size, size),
                     videos_per_task=args.videos, max_steps=args.max_steps)  # fmt: skip
    name = f"bc:{args.checkpoint}"
    summary = evaluate(policy, cfg, args.out, name=name, progress=not args.quiet)
    print(markdown_table(summary), end="")
    print(f"wrote {args.out / 'results.json'}")
    return 0
