"""``actionimages generate | a2v | label | eval``: the trained model's capabilities from the shell.

actionimages generate --checkpoint models/tiny --data data/sim-train --episode 3 --out outputs/gen
actionimages generate --checkpoint models/tiny --images front.png left.png --cameras cams.json \
    --instruction "press the red button" --out outputs/gen
actionimages a2v      --checkpoint models/tiny --data data/sim-train --episode 3 --out outputs/a2v
actionimages label    --checkpoint models/tiny --data data/sim-train --episode 3 --out outputs/label
actionimages eval     --checkpoint models/tiny --split in_domain,zero_shot_cameras --out outputs/eval

A dataset episode gives everything (frames, cameras, instruction, recorded trajectory);
from files: ``--images`` (one PNG per view, generate/a2v) or ``--videos`` (one MP4 per view,
label), ``--cameras`` (a JSON list of ``Camera.to_dict()``, one per view) and, for a2v,
``--trajectory`` (JSON with "position" (T, 3), "rotation" (T, 3, 3), "gripper" (T,)).
Each writes ``<mode>.mp4`` (real next to generated, action images overlaid) and
``trajectory.json`` (decoded 7-DoF actions, and the recorded ones when known).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    for mode, text in (("generate", "first frame(s) -> future video + action images + trajectory"),
                       ("a2v", "trajectory -> video (action-conditioned generation)"),
                       ("label", "video -> action images -> 7-DoF trajectory")):  # fmt: skip
        p = sub.add_parser(mode, help=text)
        p.add_argument(
            "--checkpoint", required=True, help="run, checkpoint or shipped model folder"
        )
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--data", help="LeRobot dataset to take an episode from")
        p.add_argument("--episode", type=int, default=0)
        p.add_argument("--start", type=int, default=0, help="first frame of the clip")
        p.add_argument("--views", default=None, help="comma-separated views (default: the first 2)")
        p.add_argument("--images", nargs="+", help="PNG per view (generate, a2v)")
        p.add_argument("--videos", nargs="+", help="MP4 per view (label)")
        p.add_argument("--cameras", type=Path, help="JSON list of Camera.to_dict(), one per view")
        p.add_argument("--trajectory", type=Path, help="JSON trajectory (a2v)")
        p.add_argument("--instruction", default=None)
        _sampling_args(p)
        p.set_defaults(func=_run_mode, mode=mode)

    e = sub.add_parser("eval", help="success rates + generation metrics + report for a checkpoint")
    e.add_argument(
        "--checkpoint", required=True, help="model folder, or expert / random / ground-truth"
    )
    e.add_argument("--split", default="in_domain,zero_shot_cameras", help="comma-separated splits")
    e.add_argument("--tasks", default=None, help="comma-separated tasks (default: each split's)")
    e.add_argument("--episodes", type=int, default=10, help="rollouts per task and split")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--views", default="front,left_shoulder")
    e.add_argument(
        "--loop",
        choices=("closed", "open", "autoregressive"),
        default="closed",
        help="autoregressive: chunk by chunk with a KV cache (a chunked model, e.g. tiny-ar)",
    )
    e.add_argument("--replan-every", type=int, default=4)
    e.add_argument(
        "--write-poses",
        action="store_true",
        help="autoregressive loop: also write the observed poses into the cache (default: views only)",
    )
    e.add_argument("--latency", type=int, default=0,
                   help="asynchronous execution: control steps between an observation and its "
                        "plan acting (closed loop, < --replan-every); 0 = synchronous")  # fmt: skip
    e.add_argument("--anchor", choices=("absolute", "current"), default="absolute",
                   help="current: execute each plan's motion from the measured pose (its decoded "
                        "frame 0 moved onto it); absolute: the decoded poses as they are")  # fmt: skip
    e.add_argument("--max-plans", type=int, default=None,
                   help="plans per episode (open loop with 1: the paper's one-trial setting)")  # fmt: skip
    e.add_argument(
        "--smoothing",
        type=int,
        default=0,
        help="chunk smoothing window (odd, >= 5; DreamZero 21), 0 = off",
    )
    e.add_argument("--videos", type=int, default=1, help="rollout MP4s per task")
    e.add_argument(
        "--metrics-episodes", type=int, default=2, help="held-out episodes per task for Tables 4-6"
    )
    e.add_argument("--lpips-weights", default=None, help="local LPIPS (AlexNet) weights")
    e.add_argument("--i3d-weights", default=None, help="local I3D weights for FVD")
    e.add_argument("--workers", type=int, default=1, help="rollout processes")
    e.add_argument("--max-steps", type=int, default=None, help="episode limit (default: task's)")
    e.add_argument("--first-episode", type=int, default=0,
                   help="seed index of the first episode (tune on a range the report does not use)")  # fmt: skip
    _sampling_args(e)
    e.set_defaults(func=_run_eval)


def _sampling_args(p: argparse.ArgumentParser) -> None:
    # None: the model folder's own default (its config.json "sampling"), as the policy does
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--scheduler", choices=("euler", "unipc"), default=None)
    p.add_argument("--shift", type=float, default=None)
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (paper 10, release 7.5)")
    p.add_argument(
        "--cache", type=float, default=None, help="velocity-cache cosine threshold (e.g. 0.99)"
    )
    p.add_argument("--seed", type=int, default=0)


def _sampling(args):
    """The checkpoint's default sampling settings with the flags given on top."""
    from actionimages.infer.pipeline import SamplingConfig

    if args.checkpoint in ("expert", "random", "ground-truth"):
        base = SamplingConfig()
    else:
        from actionimages.infer.loading import sampling_defaults

        base = SamplingConfig(**sampling_defaults(args.checkpoint))
    given = {"steps": args.steps, "scheduler": args.scheduler, "shift": args.shift,
             "guidance": args.guidance}  # fmt: skip
    return base.replace(**{k: v for k, v in given.items() if v is not None},
                        cache_threshold=args.cache, seed=args.seed)  # fmt: skip


def _inputs(args, pipe) -> dict:
    """Views (V x frames), cameras, instruction and trajectory from a dataset episode or files."""
    from actionimages.geometry.camera import Camera

    T = pipe.clip.num_frames
    if args.data:
        from actionimages.data.lerobot import LeRobotDataset

        ds = LeRobotDataset(args.data)
        views = args.views.split(",") if args.views else ds.calibrated_cameras[:2]
        n = ds.episode_length(args.episode)
        idx = np.minimum(np.arange(args.start, args.start + T), n - 1)
        ep = ds.read_episode(args.episode, cameras=views, frames=idx)
        return {"frames": [ep.images[v] for v in views], "cameras": [list(ep.cameras[v]) for v in views],
                "instruction": args.instruction or ep.instruction,
                "trajectory": (ep.position, ep.rotation, ep.gripper)}  # fmt: skip
    if not args.cameras:
        raise ValueError("give --data (a dataset episode) or --cameras with --images/--videos")
    cams = [Camera.from_dict(d) for d in _read_json(args.cameras, "a list of camera dicts")]
    if args.mode == "label":
        from actionimages.data.video import read_video

        frames = [read_video(p, max_frames=T) for p in (args.videos or [])]
    else:
        from PIL import Image

        frames = []
        for p in args.images or []:
            try:
                frames.append(np.asarray(Image.open(p).convert("RGB"))[None])
            except (OSError, Image.UnidentifiedImageError) as err:  # not an image, or truncated
                raise ValueError(f"{p}: not a readable image ({err})") from None
    if len(frames) != len(cams):
        raise ValueError(f"{len(frames)} image/video files but {len(cams)} cameras")
    traj = None
    if args.trajectory:
        d = _read_json(args.trajectory, 'an object with "position", "rotation", "gripper"')
        missing = [
            k for k in ("position", "rotation", "gripper") if not isinstance(d, dict) or k not in d
        ]
        if missing:
            raise ValueError(
                f'{args.trajectory}: trajectory lacks {missing}; it needs "position" (T, 3), '
                '"rotation" (T, 3, 3) and "gripper" (T,)'
            )
        traj = tuple(
            np.asarray(d[k], dtype=np.float64) for k in ("position", "rotation", "gripper")
        )
    if args.mode == "a2v" and traj is None:
        raise ValueError("a2v needs --trajectory (or --data)")
    return {"frames": frames, "cameras": [[c] for c in cams], "instruction": args.instruction or "",
            "trajectory": traj}  # fmt: skip


def _read_json(path, what: str):
    """A JSON file's content, or a one-line error naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); expected {what}") from None


def _run_mode(args) -> int:
    from actionimages.infer.pipeline import WorldActionPipeline
    from actionimages.viz import overlay_action_images, tile_views, to_uint8, write_mp4

    pipe = WorldActionPipeline.from_pretrained(args.checkpoint)
    inp = _inputs(args, pipe)
    T = pipe.clip.num_frames
    traj = inp["trajectory"]
    if args.mode == "label":
        batch, cams = pipe.make_batch(inp["frames"], inp["cameras"], inp["instruction"])
    else:
        first = [f[0] for f in inp["frames"]]
        batch, cams = pipe.make_batch(first, [c[:1] for c in inp["cameras"]], inp["instruction"],
                                      traj if args.mode == "a2v" else None)  # fmt: skip
    out = pipe(batch, args.mode, _sampling(args))
    args.out.mkdir(parents=True, exist_ok=True)
    gen = to_uint8(out.video[0].numpy())  # (V, T, H, W, 3)
    real = None
    if all(len(f) == T for f in inp["frames"]):
        real_batch, _ = pipe.make_batch(inp["frames"], inp["cameras"], inp["instruction"])
        real = to_uint8((real_batch["video"][0].numpy() + 1) / 2)
    if out.actions is not None:
        gen = overlay_action_images(gen, out.actions[0].numpy())
        if real is not None:
            real = overlay_action_images(real, out.actions[0].numpy())
    rows = gen if real is None else np.concatenate([real, gen])  # (V or 2V, T, H, W, 3)
    video = write_mp4(args.out / f"{args.mode}.mp4", tile_views(rows, columns=gen.shape[0]), fps=10)
    result = {"mode": args.mode, "model_calls": out.model_calls, "video": str(video)}
    if args.mode != "a2v" and (out.actions is not None or out.action_vectors is not None):
        try:
            dec = pipe.decode_actions(out, cams)
            result["decoded"] = {
                "position": dec.position.tolist(), "rotation": dec.rotation.tolist(),
                "gripper": dec.gripper.tolist(), "confidence": dec.step_confidence.tolist(),
            }  # fmt: skip
        except ValueError as err:
            result["decoded"] = {"error": str(err)}
    if traj is not None:
        result["recorded"] = {
            k: np.asarray(v).tolist() for k, v in zip(("position", "rotation", "gripper"), traj)
        }
        if isinstance(result.get("decoded"), dict) and "position" in result["decoded"]:
            err = np.linalg.norm(
                np.asarray(result["decoded"]["position"]) - np.asarray(traj[0]), axis=1
            )
            result["position_error_m"] = err.tolist()
            print(f"mean position error vs the recording: {1000 * err.mean():.1f} mm")
    (args.out / "trajectory.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {video} and {args.out / 'trajectory.json'}")
    return 0


def _run_eval(args) -> int:
    from actionimages.eval.evaluate import ModelEvalConfig, run_evaluation
    from actionimages.policy.policy import PolicyConfig

    pc = PolicyConfig(views=tuple(args.views.split(",")), loop=args.loop, replan_every=args.replan_every,
                      max_plans=args.max_plans, smoothing=args.smoothing, sampling=_sampling(args),
                      latency=args.latency, write_poses=args.write_poses, anchor=args.anchor)  # fmt: skip
    cfg = ModelEvalConfig(
        checkpoint=args.checkpoint, splits=tuple(args.split.split(",")),
        tasks=tuple(args.tasks.split(",")) if args.tasks else None, episodes=args.episodes, policy=pc,
        videos_per_task=args.videos, metrics_episodes=args.metrics_episodes,
        lpips_weights=args.lpips_weights, i3d_weights=args.i3d_weights, workers=args.workers, first_episode=args.first_episode,
        max_steps=args.max_steps,
    )  # fmt: skip
    m = run_evaluation(cfg, args.out)
    print((args.out / "report.md").read_text())
    print(f"wrote {args.out}/metrics.json, report.md and rollout videos ({m['seconds']:.0f} s)")
    return 0
