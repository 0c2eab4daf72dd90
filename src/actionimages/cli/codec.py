"""``actionimages codec-demo``: the action-image codec round trip on the RLBench sample."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codec-demo",
        help="codec round trip: RLBench sample -> action images -> decoded actions",
    )
    p.add_argument(
        "--rlbench", type=Path, default=None, help="RLBench task folder or episode folder"
    )
    p.add_argument("--out", type=Path, default=Path("outputs/codec-demo"), help="output folder")
    p.add_argument("--size", type=int, default=128, help="action-image size in pixels")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from actionimages.eval.codec_demo import run_codec_demo

    run_codec_demo(args.rlbench, args.out, size=args.size)
    return 0
