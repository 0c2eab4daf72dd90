"""Simulator benchmark (issue 3): rendering speed, expert throughput and success rates.

    .venv/bin/python benchmarks/sim.py                 # full run, prints a Markdown section
    .venv/bin/python benchmarks/sim.py --quick         # 3 episodes per task, fewer frames
    .venv/bin/python benchmarks/sim.py --json out.json # also keep the raw numbers

Measured:
- rendering: observations per second (all views rendered once) and view images per
  second, 2 and 4 static views at 128 and 256 px, low-polygon and full Panda meshes;
- expert episodes per minute: physics only, and with 4 static views + wrist at 128 px
  (what ``sim record`` does, video encoding excluded);
- scripted-expert success over 20 seeded episodes per task: every task with training
  cameras/looks (training tasks on ``in_domain``, held-out tasks on ``zero_shot_tasks``),
  and the fully held-out settings (``zero_shot`` / ``zero_shot_visual``);
- the random-walk policy's success on the same seeds.
Success rates do not depend on cameras, so those episodes run without rendering.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import numpy as np
import torch

from actionimages.eval.harness import wilson_interval
from actionimages.sim import HELDOUT_TASKS, SIM_TASKS, ExpertPolicy, RandomPolicy, make_env
from actionimages.sim.record import rollout

STATIC4 = ("front", "left_shoulder", "right_shoulder", "overhead")


def render_rate(views: tuple[str, ...], size: int, mesh: str, n: int) -> float:
    """Observations per second (every view rendered once per observation)."""
    with make_env("pick_cup", views, size, split="train", robot_mesh=mesh) as env:
        env.reset(seed=0)
        env.observe()  # warm-up
        t0 = time.perf_counter()
        for _ in range(n):
            env.observe()
        return n / (time.perf_counter() - t0)


def expert_rate(cameras: tuple[str, ...], episodes: int) -> float:
    """Expert episodes per minute over a mix of tasks (one episode each, cycling)."""
    tasks = list(SIM_TASKS)
    envs = {t: make_env(t, cameras, 128, split="train") for t in tasks}
    try:
        t0 = time.perf_counter()
        for k in range(episodes):
            env = envs[tasks[k % len(tasks)]]
            rollout(env, ExpertPolicy(env), seed=k)
        return episodes / (time.perf_counter() - t0) * 60
    finally:
        for env in envs.values():
            env.close()


def success(task: str, split: str, policy: str, episodes: int) -> dict:
    from actionimages.sim import get_split

    seeds = [get_split(split).episode_seed(k) for k in range(episodes)]
    with make_env(task, (), 32, split=split) as env:
        outcomes, steps = [], []
        for seed in seeds:
            pol = ExpertPolicy(env) if policy == "expert" else RandomPolicy(seed)
            if policy == "expert":
                _, _, ok = rollout(env, pol, seed)
            else:
                obs = env.reset(seed=seed)
                pol.reset()
                done = False
                while not done:
                    obs, _, done, _ = env.step(pol.select_action(obs))
                ok = env.success()
            outcomes.append(bool(ok))
            steps.append(env.steps)
    s = int(sum(outcomes))
    return {"successes": s, "episodes": episodes, "rate": s / episodes,
            "wilson95": wilson_interval(s, episodes), "mean_steps": float(np.mean(steps)),
            "failed_seeds": [sd for sd, o in zip(seeds, outcomes, strict=True) if not o]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    episodes = 3 if args.quick else args.episodes
    n = 10 if args.quick else 40
    out: dict = {"date": datetime.date.today().isoformat(), "machine": platform.machine(),
                 "processor": platform.processor() or "unknown"}  # fmt: skip

    render = {}
    for mesh in ("low", "full"):
        for views in (STATIC4[:2], STATIC4):
            for size in (128, 256):
                if mesh == "full" and size == 256 and len(views) == 2:
                    continue
                render[f"{mesh}/{len(views)}/{size}"] = render_rate(views, size, mesh, n)
    out["render_obs_per_s"] = render
    out["expert_episodes_per_min"] = {
        "physics_only": expert_rate((), 10 if args.quick else 30),
        "5_views_128px": expert_rate((*STATIC4, "wrist"), 10 if args.quick else 20),
    }
    rows = {}
    for task in SIM_TASKS:
        held = task in HELDOUT_TASKS
        rows[task] = {
            "expert_train_looks": success(task, "zero_shot_tasks" if held else "in_domain", "expert", episodes),
            "expert_heldout": success(task, "zero_shot" if held else "zero_shot_visual", "expert", episodes),
            "random": success(task, "zero_shot_tasks" if held else "in_domain", "random", episodes),
        }  # fmt: skip
        print(task, {k: v["rate"] for k, v in rows[task].items()}, flush=True)
    out["success"] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    print(markdown(out, episodes))


def markdown(out: dict, episodes: int) -> str:
    r = out["render_obs_per_s"]
    lines = [
        "| mesh | views | 128 px: obs/s (images/s) | 256 px: obs/s (images/s) |",
        "|---|---:|---|---|",
    ]
    for mesh in ("low", "full"):
        for v in (2, 4):
            cells = []
            for size in (128, 256):
                x = r.get(f"{mesh}/{v}/{size}")
                cells.append("-" if x is None else f"{x:.1f} ({x * v:.0f})")
            lines.append(f"| {mesh} | {v} | {cells[0]} | {cells[1]} |")
    e = out["expert_episodes_per_min"]
    lines += ["", f"Expert episodes per minute: {e['physics_only']:.0f} physics only, "
              f"{e['5_views_128px']:.0f} with 4 static views + wrist at 128 px.", "",
              f"| task | split | expert, training looks ({episodes} ep) | expert, held-out looks "
              f"({episodes} ep) | random ({episodes} ep) |", "|---|---|---|---|---|"]  # fmt: skip
    for task, row in out["success"].items():
        split = "zero-shot task" if task in HELDOUT_TASKS else "training task"
        cells = []
        for key in ("expert_train_looks", "expert_heldout", "random"):
            c = row[key]
            lo, hi = c["wilson95"]
            cells.append(f"{c['successes']}/{c['episodes']} ({100 * lo:.0f}-{100 * hi:.0f}%)")
        lines.append(f"| {task} | {split} | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
