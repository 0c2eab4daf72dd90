"""``actionimages data ...``: import datasets to LeRobot v3, summarise and preview them."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="datasets: import (RLBench, DROID, Bridge), info, preview")
    cmds = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    def importer(name: str, help_: str, func, calibration: bool) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_)
        p.add_argument("src", type=Path, help="source dataset folder")
        p.add_argument("dst", type=Path, help="LeRobot v3 dataset to create or append to")
        p.add_argument("--views", nargs="+", default=None, help="cameras to keep (default: all)")
        p.add_argument("--codec", choices=["av1", "h264"], default="av1", help="video codec")
        p.add_argument("--limit", type=int, default=None, help="import at most this many episodes")
        if calibration:
            p.add_argument("--calibration", type=Path, default=None,
                           help="camera JSON (see actionimages.data.calibration); without it "
                                "episodes are video-only")  # fmt: skip
        p.set_defaults(func=func)
        return p

    importer("import-rlbench", "RLBench demo folders -> LeRobot v3", _import_rlbench, False)
    importer("import-droid", "DROID (LeRobot port) -> LeRobot v3 in SPEC conventions",
             _import_droid, True)  # fmt: skip
    importer("import-bridge", "BridgeV2 (LeRobot port) -> LeRobot v3 (video-only unless calibrated)",
             _import_bridge, True)  # fmt: skip

    p = cmds.add_parser("info", help="summarise a LeRobot v3 dataset")
    p.add_argument("root", type=Path)
    p.set_defaults(func=_info)

    p = cmds.add_parser(
        "preview", help="MP4 with action images over each view + 3-D trajectory PNG"
    )
    p.add_argument("root", type=Path)
    p.add_argument("--episode", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="output folder (default outputs/preview)")
    p.add_argument("--size", type=int, default=None, help="resize views to SIZE x SIZE")
    p.set_defaults(func=_preview)


def _config(args: argparse.Namespace):
    from actionimages.data.lerobot import VideoConfig, WriterConfig

    return WriterConfig(video=VideoConfig().with_codec(args.codec))


def _views(args: argparse.Namespace):
    return tuple(args.views) if args.views else None


def _import_rlbench(args: argparse.Namespace) -> int:
    from actionimages.data.rlbench import import_rlbench

    n = import_rlbench(args.src, args.dst, _views(args), config=_config(args), limit=args.limit)
    print(f"imported {n} episodes into {args.dst}")
    return 0


def _import_droid(args: argparse.Namespace) -> int:
    from actionimages.data.droid import import_droid

    n = import_droid(args.src, args.dst, args.calibration, _views(args), _config(args), args.limit)
    print(f"imported {n} episodes into {args.dst}")
    return 0


def _import_bridge(args: argparse.Namespace) -> int:
    from actionimages.data.bridge import import_bridge

    n = import_bridge(args.src, args.dst, args.calibration, _views(args), _config(args), args.limit)
    print(f"imported {n} episodes into {args.dst}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from actionimages.data.preview import dataset_summary

    print(dataset_summary(args.root))
    return 0


def _preview(args: argparse.Namespace) -> int:
    from actionimages.data.preview import write_preview

    out = args.out or Path("outputs/preview") / args.root.name
    for path in write_preview(args.root, args.episode, out, size=args.size):
        print(f"wrote {path}")
    return 0
