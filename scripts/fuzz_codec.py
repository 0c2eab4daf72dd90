"""Run the codec fuzzer many times: every call must return finite output or raise ValueError.

.venv/bin/python scripts/fuzz_codec.py --calls 10000
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.codec.test_fuzz import fuzz_case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    outcomes: Counter[str] = Counter()
    failures = []
    for seed in tqdm(range(args.seed, args.seed + args.calls), desc="fuzz", unit="call"):
        try:
            outcomes[fuzz_case(seed)] += 1
        except Exception:  # anything else is a bug worth printing
            outcomes["crash"] += 1
            failures.append((seed, traceback.format_exc()))
    print(dict(outcomes))
    for seed, tb in failures[:5]:
        print(f"--- seed {seed}\n{tb}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
