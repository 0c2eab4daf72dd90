"""``actionimages eval``: success rates, generation metrics and a report shaped like the paper's.

    run_evaluation(ModelEvalConfig(checkpoint="models/tiny", splits=("in_domain",)), "outputs/eval")

writes under the output folder:

    metrics.json            everything measured (rollouts per split and task, generation metrics)
    report.md               Tables 2/3 (success with Wilson 95% intervals), 4 (video generation),
                            5 (action-conditioned video), 6 (labelling, TAP-Vid)
    <split>/results.json    the harness's per-episode results;  <split>/videos/*.mp4 rollouts
                            (real views with the plan's action images and decoded path on top,
                            generated views below)

Rollouts of different tasks run in ``workers`` processes (each loads the model once).
``checkpoint`` may also be ``"expert"``, ``"random"`` or ``"ground-truth"`` (the policy fed
ground-truth action images); those have no generation metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from actionimages.eval.harness import EvalConfig, evaluate, wilson_interval
from actionimages.policy.factory import BUILTIN
from actionimages.policy.policy import PolicyConfig


@dataclass(frozen=True)
class ModelEvalConfig:
    """What ``actionimages eval`` runs (rollouts, then metrics on held-out expert episodes)."""

    checkpoint: str
    splits: tuple[str, ...] = ("in_domain", "zero_shot_cameras")
    tasks: tuple[str, ...] | None = None
    episodes: int = 10
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    image_size: int = 64
    videos_per_task: int = 1
    metrics_episodes: int = 2  # held-out expert episodes per task for Tables 4-6 (0 = skip)
    metrics_clips: int | None = None  # at most this many clips per episode (None = all)
    lpips_weights: str | None = None
    i3d_weights: str | None = None
    workers: int = 1
    max_steps: int | None = None
    first_episode: int = 0  # seed index of episode 0 (tuning uses a disjoint range)


def _policy_factory(cfg: ModelEvalConfig):
    from actionimages.policy.factory import make_policy

    return make_policy(cfg.checkpoint, cfg.policy, cfg.image_size)


def _rollouts(cfg: ModelEvalConfig, split: str, tasks: tuple[str, ...], out: Path) -> dict:
    import torch

    torch.set_num_threads(1)
    ec = EvalConfig(split=split, tasks=tasks, episodes=cfg.episodes, cameras=cfg.policy.views,
                    image_size=(cfg.image_size, cfg.image_size), videos_per_task=cfg.videos_per_task,
                    max_steps=cfg.max_steps, first_episode=cfg.first_episode)  # fmt: skip
    # Every worker shows its own bar (its tasks named), with its running success count.
    name = cfg.checkpoint if cfg.workers == 1 else f"{cfg.checkpoint} [{','.join(tasks)}]"
    return evaluate(_policy_factory(cfg), ec, out, name=name, progress=True)


def run_rollouts(cfg: ModelEvalConfig, split: str, out: Path) -> dict:
    """Success rates on one split; tasks spread over ``cfg.workers`` processes."""
    from actionimages.sim.splits import get_split

    tasks = cfg.tasks or get_split(split).tasks
    tasks = tuple(t for t in tasks if t in get_split(split).tasks)
    if cfg.workers <= 1:
        return _rollouts(cfg, split, tasks, out)
    import multiprocessing as mp

    groups = balanced_groups(tasks, cfg.workers)
    with ProcessPoolExecutor(len(groups), mp_context=mp.get_context("spawn")) as pool:
        parts = list(
            pool.map(
                _rollouts, [cfg] * len(groups), [split] * len(groups), groups, [out] * len(groups)
            )
        )
    merged = dict(parts[0], policy=cfg.checkpoint)  # not the first worker's label
    merged["tasks"] = {t: p["tasks"][t] for t in tasks for p in parts if t in p["tasks"]}
    if isinstance(merged.get("config"), dict):  # each worker saw its own group: list them all
        merged["config"] = {**merged["config"], "tasks": list(tasks)}
    rates = [r["success_rate"] for r in merged["tasks"].values()]
    merged["mean_success_rate"] = sum(rates) / len(rates)
    merged["seconds"] = max(p["seconds"] for p in parts)
    from actionimages.eval.harness import markdown_table

    (out / "results.json").write_text(json.dumps(merged, indent=2) + "\n")
    (out / "results.md").write_text(markdown_table(merged))
    return merged


def balanced_groups(tasks, workers: int) -> list[tuple[str, ...]]:
    """Tasks split over workers so each gets about the same number of steps: a failing
    episode runs to the task's step limit, and push_block's is three times press_button's."""
    from actionimages.sim.tasks import get_task

    loads, groups = [0] * workers, [[] for _ in range(workers)]
    for t in sorted(tasks, key=lambda t: -get_task(t).max_steps):
        w = loads.index(min(loads))
        groups[w].append(t)
        loads[w] += get_task(t).max_steps
    return [tuple(g) for g in groups if g]


def heldout_episodes(
    tasks, views, image_size: int, per_task: int, split: str = "in_domain", first: int = 0
):
    """Expert episodes with seeds no rollout uses (index 10_000 + first + k of ``split``).

    The reported generation metrics use ``first=0``; recipe search uses ``first=100`` (a
    validation set of its own, ``scripts/quick_eval.py``), so no choice is made on them.
    """
    from actionimages.sim.env import make_env
    from actionimages.sim.expert import ExpertPolicy
    from actionimages.sim.record import rollout, to_episode
    from actionimages.sim.splits import get_split

    episodes = []
    for task in tasks:
        with make_env(task, views, image_size, split=split) as env:
            for k in range(per_task):
                obs, acts, ok = rollout(
                    env, ExpertPolicy(env), get_split(split).episode_seed(10_000 + first + k)
                )
                episodes.append(to_episode(env, obs, acts, ok))
    return episodes


def generation_metrics(cfg: ModelEvalConfig, tasks) -> dict:
    from actionimages.clips import source_frames_per_clip_frame
    from actionimages.eval.generation import GenerationEvaluator, episode_clips
    from actionimages.infer.pipeline import WorldActionPipeline

    pipe = WorldActionPipeline.from_pretrained(cfg.checkpoint)
    lp = i3 = None
    if cfg.lpips_weights:
        from actionimages.eval.lpips import load_lpips

        lp = load_lpips(cfg.lpips_weights)
    if cfg.i3d_weights:
        from actionimages.eval.fvd import load_i3d

        i3 = load_i3d(cfg.i3d_weights)
    ev = GenerationEvaluator(pipe, cfg.policy.sampling, lp, i3)
    from tqdm import tqdm

    eps = heldout_episodes(tasks, cfg.policy.views, cfg.image_size, cfg.metrics_episodes)
    clips = [
        c
        for ep in eps
        for c in episode_clips(
            ep,
            cfg.policy.views,
            pipe.clip.num_frames,
            frame_step=source_frames_per_clip_frame(ep.fps, pipe.clip.fps),
        )[: cfg.metrics_clips]
    ]
    for c in tqdm(clips, desc="generation metrics", unit="clip"):
        ev.add(c)
    return ev.summary() | {"episodes": len(eps)}


def run_evaluation(cfg: ModelEvalConfig, out: str | Path) -> dict:
    """Everything ``actionimages eval`` does; returns the metrics dict it writes."""
    from actionimages.sim.splits import get_split

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    metrics = {"checkpoint": cfg.checkpoint, "date": dt.date.today().isoformat(),
               "config": json.loads(json.dumps(asdict(cfg), default=str)), "rollouts": {}}  # fmt: skip
    for split in cfg.splits:
        metrics["rollouts"][split] = run_rollouts(cfg, split, out / split)
    if cfg.metrics_episodes and cfg.checkpoint not in BUILTIN:
        tasks = cfg.tasks or get_split("in_domain").tasks
        metrics["generation"] = generation_metrics(cfg, tasks)
    metrics["seconds"] = round(time.time() - t0, 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(metrics))
    return metrics


def success_table(rollouts: dict) -> list[str]:
    """Tables 2/3: one row per task, one column per split: rate (successes/n, Wilson 95%)."""
    splits = list(rollouts)
    tasks = list(dict.fromkeys(t for s in splits for t in rollouts[s]["tasks"]))
    lines = ["| task | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for t in tasks:
        cells = []
        for s in splits:
            r = rollouts[s]["tasks"].get(t)
            if r is None:
                cells.append("")
                continue
            lo, hi = wilson_interval(r["successes"], r["episodes"])
            cells.append(
                f"{100 * r['success_rate']:.0f}% ({r['successes']}/{r['episodes']}, {100 * lo:.0f}-{100 * hi:.0f})"
            )
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean** | "
        + " | ".join(f"**{100 * rollouts[s]['mean_success_rate']:.1f}%**" for s in splits)
        + " |"
    )
    return lines


def generation_tables(g: dict) -> list[str]:
    """Tables 4-6 as markdown lines from the generation metrics dict."""
    fmt = lambda k, scale=1.0, nd=3: f"{scale * g[k]:.{nd}f}" if k in g else "n/a"  # noqa: E731
    return [
        f"Metrics below: {g.get('clips', 0)} clips from {g.get('episodes', 0)} held-out expert episodes "
        "(in-domain tasks), predicted frames only, at the model's resolution. LPIPS/FVD are n/a "
        "unless their network weights were given.", "",
        "## Video generation from the first frame (Table 4)", "",
        "3-D and 2-D errors: mean over clips / median over predicted frames (3-D) or visible points (2-D).", "",
        "| PSNR (dB) | SSIM | LPIPS | FVD | action 3-D error (mm) | rotation (deg) | 2-D error (px) | undecodable |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {fmt('generate/psnr', nd=2)} | {fmt('generate/ssim')} | {fmt('generate/lpips')} | {fmt('generate/fvd', nd=1)} | "
        f"{fmt('generate/pos_err_m', 1000, 1)} / {fmt('generate/pos_err_m_median', 1000, 1)} | {fmt('generate/rot_err_deg', nd=1)} | "
        f"{fmt('generate/err_2d_px', nd=2)} / {fmt('generate/err_2d_px_median', nd=2)} | "
        f"{fmt('generate/decode_failures', 100, 0)}% |", "",
        "## Action-conditioned video generation (Table 5)", "",
        "| PSNR (dB) | SSIM | LPIPS | FVD |", "|---:|---:|---:|---:|",
        f"| {fmt('a2v/psnr', nd=2)} | {fmt('a2v/ssim')} | {fmt('a2v/lpips')} | {fmt('a2v/fvd', nd=1)} |", "",
        "## Video-to-action labelling (Table 6)", "",
        "| 3-D error (mm) | rotation (deg) | gripper | 2-D error (px) | TAP-Vid AJ | TAP-Vid <δ avg | occlusion acc. |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {fmt('label/pos_err_m', 1000, 1)} / {fmt('label/pos_err_m_median', 1000, 1)} | {fmt('label/rot_err_deg', nd=1)} | "
        f"{fmt('label/gripper_err')} | {fmt('label/err_2d_px', nd=2)} / {fmt('label/err_2d_px_median', nd=2)} | "
        f"{fmt('label/tapvid_average_jaccard')} | "
        f"{fmt('label/tapvid_average_pts_within_thresh')} | {fmt('label/tapvid_occlusion_accuracy')} |", "",
        *([f"Without the current pose (the paper's setting: the video alone): 3-D error "
           f"{fmt('label_nopose/pos_err_m', 1000, 1)} / {fmt('label_nopose/pos_err_m_median', 1000, 1)} mm, "
           f"2-D error {fmt('label_nopose/err_2d_px', nd=2)} / {fmt('label_nopose/err_2d_px_median', nd=2)} px, "
           f"{fmt('label_nopose/decode_failures', 100, 0)}% undecodable.", ""]
          if "label_nopose/decode_failures" in g else []),
    ]  # fmt: skip


def report_markdown(m: dict) -> str:
    lines = [f"# Evaluation of `{m['checkpoint']}` ({m['date']})", "",
             "## Success rate (paper Tables 2 and 3)", "",
             "Success rate (successes/episodes, Wilson 95% interval in %).", "",
             *success_table(m["rollouts"]), ""]  # fmt: skip
    if m.get("generation"):
        lines += generation_tables(m["generation"])
    lines.append(f"Total time: {m['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"
