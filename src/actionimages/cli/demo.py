"""``actionimages demo`` (the main job) and ``actionimages export``: the shipped default model."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from actionimages.eval.demo import DemoConfig

    d = DemoConfig()
    p = sub.add_parser(
        "demo", help="main job: the default model as a zero-shot policy in the simulator"
    )
    p.add_argument(
        "--model", default=d.model, help="model folder (default: the shipped models/tiny)"
    )
    p.add_argument("--out", default=d.out, help="output folder")
    p.add_argument("--episodes", type=int, default=d.episodes, help="episodes per in-domain task")
    p.add_argument(
        "--camera-episodes",
        type=int,
        default=d.camera_episodes,
        help="episodes per task, held-out cameras",
    )
    p.add_argument(
        "--metrics-episodes",
        type=int,
        default=d.metrics_episodes,
        help="expert episodes per task for Tables 4-6",
    )
    p.add_argument("--workers", type=int, default=d.workers, help="rollout processes")
    p.add_argument("--steps", type=int, default=d.steps, help="denoising steps per plan")
    p.add_argument(
        "--loop",
        choices=("closed", "autoregressive"),
        default=d.loop,
        help="autoregressive: chunk by chunk with a KV cache (needs a chunked model)",
    )
    p.add_argument(
        "--latency",
        type=int,
        default=d.latency,
        help="asynchronous execution: control steps between an observation and its plan acting",
    )
    p.set_defaults(func=_run_demo)

    e = sub.add_parser(
        "export", help="write a shipped model folder (EMA weights, config, codec) from a run"
    )
    e.add_argument("--run", type=Path, required=True, help="training run or checkpoint folder")
    e.add_argument("--out", type=Path, required=True)
    e.set_defaults(func=_run_export)


def _run_demo(args: argparse.Namespace) -> int:
    from actionimages.eval.demo import DemoConfig, run_demo

    run_demo(DemoConfig(model=args.model, out=args.out, episodes=args.episodes, camera_episodes=args.camera_episodes,
                        metrics_episodes=args.metrics_episodes, workers=args.workers, steps=args.steps,
                        loop=args.loop, latency=args.latency))  # fmt: skip
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from actionimages.infer.loading import export_model

    out = export_model(args.run, args.out)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 2**20
    print(f"exported {args.run} -> {out} ({size:.1f} MB)")
    return 0
