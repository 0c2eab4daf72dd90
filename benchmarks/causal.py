"""Per-chunk latency of the block-causal model: KV cache against recomputation (issue 11).

    python benchmarks/causal.py [--chunks 8] [--quick]

A random-weight ``tiny``-sized transformer (time does not depend on the weights) on a
packed sequence of 2 views x {video, action} clips, one latent frame per chunk at 64 x 64
(16 tokens a frame). For chunk c, "cached" runs only the chunk's 64 tokens against the KV
cache of chunks 0..c-1 (``forward_tokens``); "recomputed" runs the whole block-causal
sequence of chunks 0..c (``forward`` with the mask), as a model without a cache must.
One denoising call each; medians of interleaved repeats, one thread. Prints a markdown
table (appended to BENCHMARKS.md unless --quick).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import numpy as np
import torch

from actionimages.model.causal import KVCache, block_causal_mask, chunk_tokens
from actionimages.model.config import ModelConfig
from actionimages.model.transformer import ActionImagesWanTransformer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="debug model, 3 chunks; no BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    name, chunks = ("debug", 3) if args.quick else ("tiny", args.chunks)
    mc = ModelConfig.preset(name)
    tr = ActionImagesWanTransformer.from_model_config(mc).eval()
    clips, h = 4, 8  # 2 views x {video, action}; 64 px / spatial factor 8
    n = (h // mc.patch_size[1]) ** 2  # tokens per latent frame
    ctx = torch.randn(1, mc.text_length, mc.text_dim)
    rows = []
    cache = KVCache(len(tr.blocks))
    for c in range(chunks):
        F = c + 1  # the sequence so far: chunks 0..c, one latent frame per clip each
        x = torch.randn(1, mc.in_channels, clips * F, h, h)
        t = torch.full((1, clips * F * n), 500.0)
        cam = torch.zeros(1, clips * F, mc.camera_channels, h, h)
        mask = block_causal_mask(clips, F, 1, n)
        mine = chunk_tokens(c, clips, F, 1, n)
        t_cached, t_full = [], []
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            trial = KVCache(len(tr.blocks))  # the real cache is written once, below
            trial.keys, trial.values = list(cache.keys), list(cache.values)
            t0 = time.perf_counter()
            tr.forward_tokens(x, t, ctx, mine, trial, camera=cam, write=False)
            t_cached.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.no_grad():
                tr(x, t, ctx, camera=cam, attention_mask=mask)
            t_full.append(time.perf_counter() - t0)
        tr.forward_tokens(x, t, ctx, mine, cache, camera=cam, write=True)  # clean chunk c written
        a, b = np.median(t_cached) * 1e3, np.median(t_full) * 1e3
        rows.append(f"| {c} | {a:.1f} | {b:.1f} | {b / a:.1f}x |")
        print(rows[-1], flush=True)
    table = "\n".join(["| chunks already executed | cached (ms / call) | recomputed (ms / call) | speed-up |",
                       "|---:|---:|---:|---:|", *rows])  # fmt: skip
    print(table)
    if args.quick:
        return
    device = (
        f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, 1 thread"
    )
    section = (f"\n## Autoregressive mode: per-chunk latency, KV cache against recomputation "
               f"({datetime.date.today()}, {device})\n\n`benchmarks/causal.py --chunks {chunks}`: "
               f"random-weight `{name}` transformer, 2 views x {{video, action}}, one latent frame "
               f"({n} tokens per clip) per chunk at 64 x 64, one model call, median of "
               f"{args.repeats} interleaved repeats.\n\n{table}\n")  # fmt: skip
    bench = ROOT / "BENCHMARKS.md"
    bench.write_text(bench.read_text() + section)


if __name__ == "__main__":
    main()
