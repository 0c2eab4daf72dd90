"""The ``actionimages`` command.

Each command group lives in its own module with an ``add_parser(subparsers)``
function; this file lists them explicitly (no registry) and dispatches. Heavy imports
happen inside the command handlers so ``actionimages --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from actionimages.cli import baselines as baselines_cli
from actionimages.cli import codec as codec_cli
from actionimages.cli import data as data_cli
from actionimages.cli import demo as demo_cli
from actionimages.cli import infer as infer_cli
from actionimages.cli import sim as sim_cli
from actionimages.cli import train as train_cli

# Command groups, in the order --help shows them.
GROUPS = [demo_cli, codec_cli, data_cli, sim_cli, train_cli, infer_cli, baselines_cli]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actionimages",
        description="Action images: pixel-grounded multi-view action representations.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # Bad input is the user's to fix: print the message, not a traceback.
        print(f"actionimages {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ArithmeticError as err:  # e.g. training's NonFiniteLossError: a diverged run
        print(f"actionimages {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
