"""``actionimages demo``: the shipped default model acting in the simulator, end to end on a CPU.

Loads ``models/tiny`` (trained here, see its MODEL_CARD.md), runs the zero-shot policy in
closed loop on held-out episodes of the built-in benchmark (in-domain tasks with unseen
seeds, and the same tasks seen from held-out camera poses), then measures generation,
action-conditioned generation and labelling on held-out expert episodes, and writes:

    outputs/demo/report.md             success table (Wilson 95%), baselines side by side,
                                       Tables 4-6, figures
    outputs/demo/metrics.json          every number
    outputs/demo/<split>/videos/*.mp4  rollouts: real views with the plan's action images and
                                       decoded path (top), generated views (bottom)
    outputs/demo/figures/*.png         a strip of frames from one rollout per task

The default sizes keep it under 10 minutes on a 2-core laptop CPU (two worker processes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path("models/tiny")


@dataclass(frozen=True)
class DemoConfig:
    model: str = str(DEFAULT_MODEL)
    out: str = "outputs/demo"
    episodes: int = 6  # per in-domain task
    camera_episodes: int = 3  # per task from held-out camera poses
    metrics_episodes: int = 1  # held-out expert episodes per task for Tables 4-6
    metrics_clips: int = 2  # clips per such episode
    workers: int = 2
    steps: int = 10  # denoising steps per plan
    replan_every: int = 4
    loop: str = "closed"  # or "autoregressive" for a chunked model (e.g. one trained as tiny-ar)
    latency: int = 0  # asynchronous execution, control steps
    tasks: tuple[str, ...] | None = None  # None: every in-domain task
    max_steps: int | None = None  # None: each task's own limit (tests shorten it)


def _strip(video: Path, out: Path, frames: int = 6) -> Path | None:
    """A PNG of ``frames`` evenly spaced frames of an MP4 (side by side)."""
    import av
    from PIL import Image

    if not video.is_file():
        return None
    with av.open(str(video)) as c:
        imgs = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    idx = np.linspace(0, len(imgs) - 1, min(frames, len(imgs))).round().astype(int)
    sep = np.full((imgs[0].shape[0], 2, 3), 255, np.uint8)
    row = np.concatenate([x for i in idx for x in (imgs[i], sep)][:-1], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(row).resize((row.shape[1] * 3, row.shape[0] * 3), Image.NEAREST).save(out)
    return out


def baselines_table(path: Path) -> list[str]:
    """The side-by-side table of recorded results (``make baselines`` writes the JSON)."""
    if not path.is_file():
        return [f"(no baseline results at {path}; run `make baselines`)"]
    data = json.loads(path.read_text())
    lines = [
        "| policy | " + " | ".join(data["splits"]) + " | training |",
        "|---|" + "---:|" * len(data["splits"]) + "---|",
    ]
    for row in data["policies"]:
        cells = []
        for s in data["splits"]:
            r = row["splits"].get(s)
            cells.append(
                "n/a"
                if r is None
                else f"{100 * r['rate']:.0f}% ({r['successes']}/{r['episodes']}, {100 * r['ci'][0]:.0f}-{100 * r['ci'][1]:.0f})"
            )
        lines.append(f"| {row['name']} | " + " | ".join(cells) + f" | {row.get('training', '')} |")
    return lines


def run_demo(cfg: DemoConfig | None = None) -> dict:
    from actionimages.eval.evaluate import (
        ModelEvalConfig,
        generation_metrics,
        generation_tables,
        run_rollouts,
        success_table,
    )
    from actionimages.infer.pipeline import SamplingConfig
    from actionimages.policy.policy import PolicyConfig
    from actionimages.sim.splits import get_split

    cfg = cfg or DemoConfig()
    model = Path(cfg.model)
    if not (model / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{model}: no trained model there. The repository ships models/tiny; run from the "
            "repository root, or train it with `make train-default`"
        )
    out = Path(cfg.out)
    policy = PolicyConfig(loop=cfg.loop, replan_every=cfg.replan_every, latency=cfg.latency,
                          sampling=SamplingConfig(steps=cfg.steps))  # fmt: skip
    loop = (f"closed loop, re-plan every {cfg.replan_every} steps" if cfg.loop == "closed"
            else f"{cfg.loop} loop")  # fmt: skip
    if cfg.latency:
        loop += f", latency {cfg.latency} steps"
    metrics: dict = {"model": str(model), "rollouts": {}}
    t0 = time.time()
    for split, n in (("in_domain", cfg.episodes), ("zero_shot_cameras", cfg.camera_episodes)):
        ec = ModelEvalConfig(
            checkpoint=str(model),
            splits=(split,),
            episodes=n,
            policy=policy,
            workers=cfg.workers,
            tasks=cfg.tasks,
            max_steps=cfg.max_steps,
        )
        print(
            f"[demo] {split}: {n} episodes per task, {loop} ({cfg.workers} worker processes)",
            flush=True,
        )
        metrics["rollouts"][split] = run_rollouts(ec, split, out / split)
        print("\n".join(success_table({split: metrics["rollouts"][split]})), flush=True)
    if cfg.metrics_episodes:
        print(
            f"[demo] generation metrics on {cfg.metrics_episodes} held-out expert episode(s) per task",
            flush=True,
        )
        ec = ModelEvalConfig(
            checkpoint=str(model),
            episodes=1,
            policy=policy,
            metrics_episodes=cfg.metrics_episodes,
            metrics_clips=cfg.metrics_clips,
        )
        metrics["generation"] = generation_metrics(ec, cfg.tasks or get_split("in_domain").tasks)
    metrics["seconds"] = round(time.time() - t0, 1)
    figures = {}
    for split in metrics["rollouts"]:
        for task in metrics["rollouts"][split]["tasks"]:
            png = _strip(
                out / split / "videos" / f"{task}_000.mp4",
                out / "figures" / f"{split}_{task}.png",
            )
            if png:
                figures[f"{split}/{task}"] = png.relative_to(out).as_posix()
    metrics["figures"] = figures
    lines = ["# actionimages demo: the default tiny model as a zero-shot policy", "",
             f"Model `{model}` (see its MODEL_CARD.md); {loop}, "
             f"{cfg.steps} Euler steps per plan, views front + left_shoulder at 64x64.", "",
             "## Success rate on held-out episodes", "",
             "Success rate (successes/episodes, Wilson 95% interval in %).", "",
             *success_table(metrics["rollouts"]), "",
             "## Baselines, side by side (recorded by `make baselines`, not re-run by the demo)", "",
             *baselines_table(model / "baselines.json"), ""]  # fmt: skip
    if "generation" in metrics:
        lines += ["## Generation, action-conditioned generation and labelling", ""]
        lines += generation_tables(metrics["generation"])
    lines += ["## Rollouts", "", "Top row: the real views with the current plan's action images and its decoded "
              "path (yellow); bottom row: the generated views. MP4s are under `<split>/videos/`.", ""]  # fmt: skip
    for name, png in figures.items():
        lines += [f"**{name}**", "", f"![{name}]({png})", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    print("\n" + "\n".join(success_table(metrics["rollouts"])))
    print(f"\n{metrics['seconds']:.0f} s; report: {out / 'report.md'}")
    return metrics
