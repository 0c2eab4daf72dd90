"""Issue 7: the action-image world model against its two baselines, side by side.

    .venv/bin/python benchmarks/baselines.py --episodes 20 [--workers 2]

Policies (all trained on the same recorded data, see models/*/ and the Makefile's
``train-default`` and ``baselines`` targets):

    action images (ours)      models/tiny          world action model, geometric decoding
    low-dim action vectors    models/tiny-lowdim   same backbone, actions as 10-D vectors in latent frames
    multi-view BC             models/bc-tiny       spatial-softmax CNN regressing action chunks

Each runs closed loop (4 steps per chunk, views front + left_shoulder at 64x64) on the
in-domain split (unseen seeds) and on held-out camera poses. Writes
``models/tiny/baselines.json`` (read by the demo's report) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import torch

torch.set_num_threads(1)

POLICIES = (
    ("action images (ours)", "models/tiny", "wam"),
    ("low-dim action vectors (same backbone)", "models/tiny-lowdim", "wam"),
    ("multi-view BC", "models/bc-tiny", "bc"),
)
SPLITS = ("in_domain", "zero_shot_cameras")


def evaluate_policy(
    name: str,
    path: str,
    kind: str,
    split: str,
    episodes: int,
    out: Path,
    reuse: bool = False,
    workers: int = 1,
) -> dict:
    if reuse and (out / "results.json").is_file():  # a finished earlier run of the same setting
        res = json.loads((out / "results.json").read_text())
        if all(r["episodes"] == episodes for r in res["tasks"].values()):
            return res
    from actionimages.eval.evaluate import ModelEvalConfig, run_rollouts
    from actionimages.eval.harness import EvalConfig, evaluate

    if kind == "wam":
        return run_rollouts(
            ModelEvalConfig(
                checkpoint=path,
                splits=(split,),
                episodes=episodes,
                videos_per_task=1,
                workers=workers,
            ),
            split,
            out,
        )
    cfg = EvalConfig(split=split, episodes=episodes, cameras=("front", "left_shoulder"), image_size=(64, 64),
                     videos_per_task=1)  # fmt: skip
    from actionimages.policy import PolicyConfig, make_policy

    return evaluate(make_policy(path, PolicyConfig()), cfg, out, name=name)


def training_note(path: str) -> str:
    p = Path(path)
    if (p / "train_info.json").is_file():
        info = json.loads((p / "train_info.json").read_text())
        return f"{info.get('samples_seen', '?')} clips, {info.get('wall_seconds', 0) / 60:.0f} min"
    if (p / "config.json").is_file():
        c = json.loads((p / "config.json").read_text())
        t = c.get("train", {})
        return f"{c.get('step', 0) * t.get('batch_size', 0)} clips ({c.get('step')} steps x {t.get('batch_size')})"
    return ""


def main() -> None:
    from actionimages.eval.harness import wilson_interval

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=10, help="episodes per task and split")
    ap.add_argument("--out", type=Path, default=Path("outputs/baselines"))
    ap.add_argument("--json", type=Path, default=Path("models/tiny/baselines.json"))
    ap.add_argument(
        "--only", default=None, help="comma-separated model folders to evaluate (default: all)"
    )
    ap.add_argument("--reuse", action="store_true", help="reuse finished results under --out")
    ap.add_argument("--ours", default="models/tiny", help="the action-image model to compare")
    ap.add_argument("--workers", type=int, default=1, help="rollout processes (world models)")
    args = ap.parse_args()
    t0 = time.time()
    rows = []
    policies = [(n, args.ours if p == "models/tiny" else p, k) for n, p, k in POLICIES]
    for name, path, kind in policies:
        if args.only and path not in args.only.split(","):
            continue
        if not Path(path).exists():
            print(f"skipping {name}: {path} not found (make baselines)")
            continue
        row = {"name": name, "path": path, "training": training_note(path), "splits": {}}
        for split in SPLITS:
            res = evaluate_policy(
                name,
                path,
                kind,
                split,
                args.episodes,
                args.out / Path(path).name / split,
                args.reuse,
                args.workers,
            )
            s = sum(r["successes"] for r in res["tasks"].values())
            n = sum(r["episodes"] for r in res["tasks"].values())
            row["splits"][split] = {"rate": s / n, "successes": s, "episodes": n, "ci": list(wilson_interval(s, n)),
                                    "per_task": {t: r["success_rate"] for t, r in res["tasks"].items()}}  # fmt: skip
            print(f"{name} / {split}: {s}/{n}", flush=True)
        rows.append(row)
    data = {"date": date.today().isoformat(), "episodes_per_task": args.episodes, "splits": list(SPLITS),
            "policies": rows, "seconds": round(time.time() - t0)}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    from actionimages.eval.demo import baselines_table

    print("\n".join(baselines_table(args.json)))


if __name__ == "__main__":
    main()
