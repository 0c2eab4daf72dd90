"""An earlier triangulating decoder against today's: speed side by side, and accuracy (issue 12 item 16).

    .venv/bin/python benchmarks/decoder_speed.py [--against 14eac40] [--rounds 3] [--reps 5]

The earlier decoder is `git show <against>:` of decoder.py and peaks.py (default: the
last commit before the decoder stopped building heatmap planes), copied to a temporary
folder and imported as a separate package (git state untouched). Inputs are made like
benchmarks/codec.py: cameras on a ring around (0, 0, 0.3), random poses, Gaussian noise,
clipped to [0, 1].
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
OLD = Path(tempfile.gettempdir()) / "old_codec"


def load_old(commit: str):
    OLD.mkdir(exist_ok=True)
    for name in ("decoder", "peaks"):
        src = subprocess.run(
            ["git", "show", f"{commit}:src/actionimages/codec/{name}.py"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        src = src.replace("from actionimages.codec.peaks import", "from old_codec.peaks import")
        (OLD / f"{name}.py").write_text(src)
    (OLD / "__init__.py").write_text("")
    sys.path.insert(0, str(OLD.parent))
    import old_codec.decoder as old

    return old


sys.path.insert(0, str(REPO / "benchmarks"))
import actionimages.codec.decoder as new  # noqa: E402
from actionimages import encode_action_images  # noqa: E402
from actionimages.geometry import camera_ring, geodesic_angle  # noqa: E402
from codec import CENTER, poses  # noqa: E402
from codec import degrade as codec_degrade  # noqa: E402


def degrade(imgs, kind, rng):
    """Clean, Gaussian noise ("noise0.05"), blur or occlusion, as in benchmarks/codec.py."""
    if kind == "clean":
        return imgs
    if kind.startswith("noise"):
        return imgs + rng.normal(0, float(kind[5:]), imgs.shape).astype(np.float32)
    return codec_degrade(imgs, kind, rng)


def make(S, T=60, kind="noise0.05", radius=1.0, seed=0, gripper=None):
    cams = camera_ring(2, S, center=CENTER, radius=radius, seed=seed)
    pos, rot, g = poses(T, 100 + seed)
    if gripper is not None:
        g = np.full(T, float(gripper))
    imgs = encode_action_images(pos, rot, g, cams)
    imgs = degrade(imgs, kind, np.random.default_rng(seed))
    return np.clip(imgs, 0, 1), cams, pos, rot, g


def speed(old, rounds, reps):
    rows = []
    for S in (256, 64):
        imgs, cams, *_ = make(S)
        T = imgs.shape[1]
        for m in (old, new):
            m.decode_action_images(imgs, cams)  # warm-up
        res = {"old": [], "new": []}
        for _ in range(rounds):  # alternate, so load changes on the shared CPU hit both
            for name, m in (("old", old), ("new", new)):
                ts = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    m.decode_action_images(imgs, cams)
                    ts.append(time.perf_counter() - t0)
                res[name].append(T / float(np.median(ts)))
        ratio = [n / o for n, o in zip(res["new"], res["old"], strict=True)]
        rows.append((S, res["old"], res["new"], ratio))
    return rows


def errors(dec, pos, rot, g):
    dp = np.linalg.norm(dec.position - pos, axis=-1) * 1000
    dr = np.degrees(geodesic_angle(dec.rotation, rot))
    dg = np.abs(dec.gripper - g)
    return dp, dr, dg, dec.visible.mean(), int((~dec.ok).sum())


def accuracy(old, sizes, kinds, grips, seeds):
    rows, diffs = [], []
    for S in sizes:
        for kind in kinds:
            for grip in grips:
                acc = {"old": [], "new": []}
                d = {"pos_mm": 0.0, "rot_deg": 0.0, "grip": 0.0, "conf": 0.0, "vis_flips": 0}
                for seed in range(seeds):
                    radius = (0.5, 1.0, 1.5)[seed % 3]
                    imgs, cams, pos, rot, g = make(S, kind=kind, radius=radius, seed=seed,
                                                   gripper=grip)  # fmt: skip
                    do = old.decode_action_images(imgs, cams)
                    dn = new.decode_action_images(imgs, cams)
                    acc["old"].append(errors(do, pos, rot, g))
                    acc["new"].append(errors(dn, pos, rot, g))
                    d["pos_mm"] = max(d["pos_mm"], 1000 * np.abs(do.position - dn.position).max())
                    d["rot_deg"] = max(d["rot_deg"], np.degrees(geodesic_angle(do.rotation, dn.rotation)).max())  # fmt: skip
                    d["grip"] = max(d["grip"], np.abs(do.gripper - dn.gripper).max())
                    d["conf"] = max(d["conf"], np.abs(do.confidence - dn.confidence).max())
                    d["vis_flips"] += int((do.visible != dn.visible).sum())
                gname = {None: "random", 1.0: "open", 0.0: "closed"}[grip]
                cat = {n: [np.concatenate([x[i] for x in acc[n]]) for i in range(3)] for n in acc}
                for name in ("old", "new"):
                    dp, dr, dg = cat[name]
                    found = np.mean([x[3] for x in acc[name]])
                    filled = sum(x[4] for x in acc[name])
                    rows.append([str(S), kind, gname, name,
                                 f"{np.median(dp):.4g}", f"{np.percentile(dp, 95):.4g}",
                                 f"{np.median(dr):.4g}", f"{np.percentile(dr, 95):.4g}",
                                 f"{np.median(dg):.4g}", f"{dg.max():.4g}",
                                 f"{found:.4f}", str(filled)])  # fmt: skip
                    print(" | ".join(rows[-1]), flush=True)
                # Paired per-step differences, new - old: mean +- standard error.
                paired = []
                for i in range(2):
                    e = cat["new"][i] - cat["old"][i]
                    paired.append(f"{e.mean():+.2e} +- {e.std() / np.sqrt(len(e)):.1e}")
                diffs.append([str(S), kind, gname, f"{d['pos_mm']:.2e}",
                              f"{d['rot_deg']:.2e}", f"{d['grip']:.2e}", f"{d['conf']:.2e}",
                              str(d["vis_flips"]), *paired])  # fmt: skip
                print("diff", " | ".join(diffs[-1]), flush=True)
    return rows, diffs


ACC_HEADER = ["size", "images", "gripper", "decoder", "pos med (mm)", "pos p95 (mm)",
              "rot med (deg)", "rot p95 (deg)", "grip med", "grip max", "points found",
              "filled steps"]  # fmt: skip
DIFF_HEADER = ["size", "images", "gripper", "max position diff (mm)", "max rotation diff (deg)",
               "max gripper diff", "max confidence diff", "visible flags that differ",
               "pos err new-old (mm, mean +- se)", "rot err new-old (deg, mean +- se)"]  # fmt: skip


def other_inputs(old):
    """Old against new on other input kinds: largest output differences."""
    rows = []

    def case(name, imgs, cams, **kw):
        do = old.decode_action_images(imgs, cams, **kw)
        dn = new.decode_action_images(imgs, cams, **kw)
        f = lambda a: np.asarray(a.cpu() if isinstance(a, torch.Tensor) else a, np.float64)  # noqa: E731
        d = {k: float(np.nanmax(np.abs(f(getattr(do, k)) - f(getattr(dn, k))), initial=0))
             for k in ("position", "rotation", "gripper", "confidence")}  # fmt: skip
        flips = int((f(do.visible) != f(dn.visible)).sum())
        rows.append([name, *(f"{d[k]:.1e}" for k in d), str(flips)])
        print(" | ".join(rows[-1]), flush=True)

    for S in (64, 256):
        imgs, cams, *_ = make(S)
        case(f"{S} paper method, noise 0.05", imgs, cams, method="paper")
        clean, cams_c, *_ = make(S, kind="clean")
        case(f"{S} paper method, clean", clean, cams_c, method="paper")
        mask = np.ones((2, imgs.shape[1]), bool)
        mask[1, ::3] = False
        case(f"{S} view_mask (a view missing in 1/3 of the steps)", imgs, cams, view_mask=mask)
        case(f"{S} float64 input", imgs.astype(np.float64), cams)
        case(f"{S} torch float16 input", torch.from_numpy(imgs).half(), cams)
        t = torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 1, 4, 2, 3)))
        case(f"{S} non-contiguous torch input", t.permute(0, 1, 3, 4, 2), cams)
        raw, cams_r, *_ = make(S, kind="noise0.1")  # not clipped by make? it is: overshoot below
        case(f"{S} unclipped (x 1.3 - 0.15)", raw * 1.3 - 0.15, cams_r)
    imgs, cams, *_ = make(150)  # W = 150 is not a multiple of 8
    case("150 (odd width), noise 0.05", imgs, cams)
    return rows


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", default="14eac40", help="commit of the earlier decoder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=12, help="scenes (x 60 steps) per accuracy row")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--extra", action="store_true", help="also noise 0.1, blur, occlusion")
    ap.add_argument("--extra-seeds", type=int, default=36)
    ap.add_argument("--other", action="store_true", help="paper method, masks, dtypes, layouts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    old = load_old(args.against)
    if not args.skip_speed:
        rows = speed(old, args.rounds, args.reps)
        print("\n## Speed: time steps / s, 2 views x 60 steps, noise 0.05, 1 thread, "
              f"median of {args.reps} decodes per round\n")  # fmt: skip
        print(table(["size", "old (per round)", "new (per round)", "ratio (per round)"],
                    [[str(S), ", ".join(f"{x:.0f}" for x in o), ", ".join(f"{x:.0f}" for x in n),
                      ", ".join(f"{x:.2f}x" for x in r)] for S, o, n, r in rows]))  # fmt: skip
    if not args.skip_accuracy:
        rows, diffs = accuracy(old, (64, 256), ("clean", "noise0.05"), (None, 1.0, 0.0),
                               args.seeds)  # fmt: skip
        print(f"\n## Accuracy ({args.seeds} scenes x 60 steps per row)\n")
        print(table(ACC_HEADER, rows))
        print("\n## Old against new, same inputs\n")
        print(table(DIFF_HEADER, diffs))
    if args.other:
        rows = other_inputs(old)
        print("\n## Other inputs, old against new: largest differences\n")
        print(table(["input", "position (m)", "rotation (matrix entries)", "gripper",
                     "confidence", "visible flags that differ"], rows))  # fmt: skip
    if args.extra:
        rows, diffs = accuracy(old, (128, 256), ("noise0.1", "blur", "occlusion"), (None,),
                               args.extra_seeds)  # fmt: skip
        print(f"\n## Extra degradations ({args.extra_seeds} scenes x 60 steps per row)\n")
        print(table(ACC_HEADER, rows))
        print()
        print(table(DIFF_HEADER, diffs))


if __name__ == "__main__":
    main()
