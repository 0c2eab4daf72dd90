"""Codec benchmark: encode throughput and decode accuracy (issue 2).

    .venv/bin/python benchmarks/codec.py            # full run, appends to BENCHMARKS.md
    .venv/bin/python benchmarks/codec.py --quick    # smaller, prints only

Throughput is reported as a ratio to ``fill_`` on the same output tensor, measured
interleaved in the same run (absolute CPU times on a shared machine mean little).
Accuracy: median and p95 position error (mm), rotation error (deg) and gripper error
for both decoders, against image size and ray samples, on clean images and on images
degraded like generated ones (noise, blur, an occluding patch).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from scipy.spatial.transform import Rotation

from actionimages import decode_action_images, encode_action_images
from actionimages.codec.roundtrip import ERROR_HEADER, markdown_table, roundtrip_errors
from actionimages.geometry import Camera, camera_ring, geodesic_angle

ROOT = Path(__file__).resolve().parents[1]
CENTER = np.array([0.0, 0.0, 0.3])


def poses(T: int, seed: int):
    rng = np.random.default_rng(seed)
    pos = CENTER + rng.uniform(-0.08, 0.08, (T, 3))
    return pos, Rotation.random(T, random_state=seed).as_matrix(), rng.uniform(0, 1, T)


# --- 1. Encode throughput -----------------------------------------------------------
def encode_throughput(sizes, T=41, reps=15):
    rows, raw = [], {}
    for S in sizes:
        cams = camera_ring(2, S, center=CENTER, seed=0)
        pos, rot, g = poses(T, 0)
        buf = torch.empty(2, T, S, S, 3)
        encode_action_images(pos, rot, g, cams, out=buf)  # warm-up
        t_enc, t_fill, t_enc_new, t_fill_new = [], [], [], []
        for _ in range(reps):  # interleaved, so load changes hit both sides alike
            t0 = time.perf_counter()
            encode_action_images(pos, rot, g, cams, out=buf)
            t1 = time.perf_counter()
            buf.fill_(0.5)
            t2 = time.perf_counter()
            encode_action_images(pos, rot, g, cams)
            t3 = time.perf_counter()
            torch.empty(2, T, S, S, 3).fill_(0.5)
            t4 = time.perf_counter()
            t_enc.append(t1 - t0)
            t_fill.append(t2 - t1)
            t_enc_new.append(t3 - t2)
            t_fill_new.append(t4 - t3)
        enc, fill = np.median(t_enc), np.median(t_fill)
        enc_new, fill_new = np.median(t_enc_new), np.median(t_fill_new)
        frames = 2 * T
        raw[S] = dict(encode_fps=frames / enc, fill_fps=frames / fill, ratio=fill / enc,
                      encode_new_fps=frames / enc_new, ratio_new=fill_new / enc_new)  # fmt: skip
        rows.append([f"{S}", f"{frames / enc:,.0f}", f"{frames / fill:,.0f}", f"{fill / enc:.2f}",
                     f"{frames / enc_new:,.0f}", f"{fill_new / enc_new:.2f}"])  # fmt: skip
    header = ["size", "encode frames/s (out=)", "fill_ frames/s", "ratio (>= 0.5 wanted)",
              "encode frames/s (new tensor)", "ratio vs empty+fill_"]  # fmt: skip
    return markdown_table(header, rows), raw


# --- 2. Decode accuracy ----------------------------------------------------------------
def degrade(imgs: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Damage (V, T, H, W, 3) action images the way a generator might."""
    V, T, H, W, _ = imgs.shape
    if kind == "clean":
        return imgs
    if kind.startswith("noise"):
        return imgs + rng.normal(0, float(kind[5:]), imgs.shape).astype(np.float32)
    if kind == "blur":  # 1% of the image size, on H and W only
        return gaussian_filter(imgs, sigma=(0, 0, 0.01 * H, 0.01 * W, 0)).astype(np.float32)
    if kind == "occlusion":  # one square (20% of the side) per frame, in a random view
        out = imgs.copy()
        side = max(1, int(0.2 * min(H, W)))
        for t in range(T):  # per frame, not per pixel
            v, i, j = rng.integers(V), rng.integers(H - side + 1), rng.integers(W - side + 1)
            out[v, t, i : i + side, j : j + side] = rng.uniform(0, 1)
        return out
    raise ValueError(kind)


def decode_accuracy(sizes, kinds, samples, T=60, radii=(0.5, 1.0, 1.5)):
    rows, raw = [], []
    for S in sizes:
        for kind in kinds:
            for method, ray in [("triangulate", None)] + [("paper", k) for k in samples]:
                errs, t_dec = [], 0.0
                for r_i, radius in enumerate(radii):
                    cams = camera_ring(2, S, center=CENTER, radius=radius, seed=r_i)
                    pos, rot, g = poses(T, seed=100 + r_i)
                    imgs = degrade(
                        encode_action_images(pos, rot, g, cams), kind, np.random.default_rng(r_i)
                    )
                    kw = {"ray_samples": ray} if ray else {}
                    t0 = time.perf_counter()
                    dec = decode_action_images(np.clip(imgs, 0, 1), cams, method=method, **kw)
                    t_dec += time.perf_counter() - t0
                    errs.append((pos, rot, g, dec))
                pos = np.concatenate([e[0] for e in errs])
                rot = np.concatenate([e[1] for e in errs])
                g = np.concatenate([e[2] for e in errs])
                dec = type(errs[0][3])(
                    method=method,
                    **{f: np.concatenate([getattr(e[3], f) for e in errs], axis=1 if f == "visible" else 0)
                       for f in ("position", "rotation", "gripper", "confidence", "points", "visible",
                                 "views_used", "reprojection_error")},
                )  # fmt: skip
                e = roundtrip_errors(pos, rot, g, dec)
                name = method if ray is None else f"paper K={ray}"
                fps = len(pos) / t_dec
                rows.append([str(S), kind, name, *e.row(), f"{fps:,.0f}"])
                raw.append(
                    dict(size=S, degradation=kind, decoder=name, frames_per_s=fps, **e.__dict__)
                )
                print(" | ".join(rows[-1]), flush=True)
    header = ["size", "images", "decoder", *ERROR_HEADER, "decode frames/s"]
    return markdown_table(header, rows), raw


def accuracy_plot(raw, path: Path, kinds) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decoders = sorted({r["decoder"] for r in raw}, key=lambda d: (d != "triangulate", len(d), d))
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.6))
    for ax, key, label in zip(axes, ["position_mm_median", "rotation_deg_median"],
                              ["median position error (mm)", "median rotation error (deg)"]):  # fmt: skip
        for d in decoders:
            for kind, style in zip(kinds, ["-o", "--s", ":^", "-.v", "-x"]):
                pts = sorted(
                    (r["size"], r[key])
                    for r in raw
                    if r["decoder"] == d and r["degradation"] == kind
                )
                if pts:
                    ax.plot(*zip(*pts), style, label=f"{d}, {kind}", color=f"C{decoders.index(d)}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("image size (px)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center right")
    fig.suptitle("Action-image decoding accuracy, 2 views, points 0.5-1.5 m from the cameras")
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def up_point_under_noise(sizes, noise: float = 0.05, T: int = 40):
    """Gripper state x noise: how often the up point is found (issue 12 item 15).

    With the gripper open the blue background is 0.25, the up blob's own threshold, so
    noise is what loses it; closed, the background is 0.
    """
    rows = []
    for S in sizes:
        eyes = ([1.3, 0.0, 0.7], [0.45, 0.9, 0.7], [0.45, -0.9, 0.7])
        cams = [Camera.look_at(e, [0.45, 0, 0.1], height=S, width=S) for e in eyes]
        for views in (2, 3):
            for g in (1.0, 0.0):
                rng = np.random.default_rng(0)
                pos = rng.uniform([0.35, -0.15, 0.05], [0.6, 0.15, 0.3], (T, 3))
                rot = Rotation.random(T, random_state=1).as_matrix()
                cc = [[c] * T for c in cams[:views]]
                img = encode_action_images(pos, rot, np.full(T, g), cc)
                img = np.clip(img + rng.normal(0, noise, img.shape), 0, 1)
                dec = decode_action_images(img, cc, fallback_rotation=np.eye(3))
                found = (np.asarray(dec.visible)[:, :, 2].sum(0) >= 2).mean()
                angle = geodesic_angle(np.asarray(dec.rotation), rot)
                rows.append([str(S), str(views), "open" if g else "closed", f"{found:.0%}",
                             f"{np.degrees(np.median(angle)):.1f}"])  # fmt: skip
    header = [
        "size",
        "views",
        "gripper",
        f"up point found (noise {noise})",
        "rotation error median (deg)",
    ]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small run; do not touch BENCHMARKS.md"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes_enc = [128, 256] if args.quick else [128, 256, 512]
    sizes_dec = [64, 128] if args.quick else [64, 128, 256, 512]
    kinds = (
        ["clean", "noise0.05"]
        if args.quick
        else ["clean", "noise0.02", "noise0.05", "blur", "occlusion"]
    )
    samples = [256] if args.quick else [64, 256, 1024]

    enc_table, enc_raw = encode_throughput(sizes_enc)
    print(enc_table)
    dec_table, dec_raw = decode_accuracy(sizes_dec, kinds, samples, T=20 if args.quick else 60)
    print(dec_table)
    up_table = up_point_under_noise([64] if args.quick else [64, 256])
    print(up_table)
    if args.quick:
        return
    plot = ROOT / "docs" / "figures" / "codec_accuracy.png"
    accuracy_plot(dec_raw, plot, kinds)
    (ROOT / "docs" / "figures" / "codec_benchmark.json").write_text(
        json.dumps({"encode": enc_raw, "decode": dec_raw}, indent=1)
    )
    device = (
        f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, 1 thread"
    )
    section = (
        f"\n## Codec ({datetime.date.today()}, {device})\n\n"
        f"`benchmarks/codec.py`. Encode: 2 views x 41 frames, medians of 15 interleaved reps.\n\n"
        f"{enc_table}\n\nDecode accuracy (2 views, 3 rigs at 0.5/1.0/1.5 m, 60 random poses each; "
        f"plot: `docs/figures/codec_accuracy.png`):\n\n{dec_table}\n\nGripper state x noise:\n\n{up_table}\n"
    )
    bench = ROOT / "BENCHMARKS.md"
    text = bench.read_text() if bench.exists() else "# Benchmarks\n"
    bench.write_text(text + section)
    print(f"appended to {bench}; plot at {plot}")


if __name__ == "__main__":
    main()
