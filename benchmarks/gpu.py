"""One prepared GPU run (issue 14): Table 7 timing, VAE, training throughput, accelerate configs.

    timeout 480 python benchmarks/gpu.py                     # one CUDA GPU, at most 8 minutes
    .venv/bin/python benchmarks/gpu.py --quick --device cpu  # the dry run the test suite runs

All weights are randomly initialised (time does not depend on them; nothing is downloaded).
Results go to a JSON file (``--out``, rewritten atomically after every section) and, at
the end, a section appended to BENCHMARKS.md (under ``--quick`` only when ``--bench-md`` is
given). Each section has its own time budget (shares of ``--time-limit``, rebalanced as
sections finish early) and its own try/except, so one failure keeps the others.

Sections (JSON keys; run in the order vae, inference, training, autoregressive, accelerate):

    environment     device, torch / CUDA / cuDNN / diffusers / accelerate versions, the
                    attention backend (diffusers' dispatcher and the SDPA kernel it lands on)
    inference       the paper's Table 7 shape: ``wan2.2-ti2v-5b``, bf16, 2 views x {video,
                    action} x 41 frames at 512^2 (44 latent frames of 16 x 16 tokens = 11,264
                    tokens). One denoising step = ``WorldActionModel.velocity`` on the
                    conditional and unconditional inputs batched (batch 2, as the pipeline's
                    batched CFG calls it); 50 x that against the paper's 49.1 s on one H100;
                    the full ``WorldActionPipeline`` 50-step run (VAE encode + 50 steps +
                    decode) with and without velocity caching (model calls saved, PSNR of the
                    cached output against the uncached one); the step again after
                    ``torch.compile`` (regional: diffusers' ``compile_repeated_blocks``).
                    Weights are bf16 and the calls run under ``torch.autocast(bfloat16)``,
                    because the pipeline hands the transformer float32 latents.
    vae             diffusers ``AutoencoderKLWan`` with the Wan2.2-TI2V-5B VAE architecture
                    (vae/config.json of Wan-AI/Wan2.2-TI2V-5B-Diffusers; latent mean 0 and
                    std 1 since the weights are random), bf16: encode + decode of the 164
                    frames (4 clips x 41 frames) at 512^2 in one batch, as the pipeline does.
    training        one ``Trainer.train_step`` of the 5B model (the ``paper`` preset: bf16
                    autocast over float32 master weights, gradient checkpointing, AdamW, clip
                    1.0), batch 1, 2 views x 2 modalities x 41 frames at 256^2 and 512^2.
                    Latents are given (the VAE encode is timed in ``vae``). Step time,
                    tokens/s, peak memory, MFU; forward + backward alone as well, and alone
                    when the AdamW state does not fit (then said so).
    autoregressive  per-chunk latency of the block-causal mode (one latent frame of every
                    clip per chunk), KV cache against recomputation, bf16
    accelerate      ``accelerate launch --config_file configs/accelerate/{fsdp,
                    deepspeed_zero2,deepspeed_zero3}.yaml --num_processes 1 -m
                    actionimages.cli.main train --preset debug`` for 4 steps on a small
                    synthetic LeRobot dataset written here (2 episodes, 2 views at 64^2; no
                    simulator needed), checkpoint every 2; then a copy of the step-2
                    checkpoint resumed to step 4 and compared with the uninterrupted run
                    (weights and final loss). DeepSpeed is installed from PyPI when missing
                    (``DS_BUILD_OPS=0``, torch pinned; ``--wheelhouse`` for offline machines).
                    Under ``--quick`` on CPU the three launches are skipped and the same
                    resume check runs without accelerate.

FLOP count (forward pass of one sample; it equals ``torch.utils.flop_counter`` on the model
exactly, which the training section checks at its first size). With L video/action tokens,
S text tokens, width d, FFN width f, n blocks, c_in / c_out latent channels times the patch
volume, q the timestep frequency width, t the text width and c the camera features per token
(camera_channels x subgrid^2):

    patch embedding   2 L c_in d                      output projection   2 L d c_out
    timestep (per token: Wan2.2 TI2V)  2 L (q d + d^2) + 2 L d (6 d)
    text embedding    2 S (t d + d^2)
    per block:  self-attention Q, K, V, O 8 L d^2;   scores and values 4 L^2 d (full attention)
                camera projection 2 L c d;           projector (after self-attention) 2 L d^2
                cross-attention Q, O 4 L d^2;  K, V 4 S d^2;  scores and values 4 L S d
                feed-forward 4 L d f

A training step counts 3x the forward (backward = 2x) for MFU; with gradient checkpointing the
GPU computes 4x (HFU, also reported). MFU = counted FLOPs / step time / the device's dense
bf16 peak (``PEAK_BF16_TFLOPS``, keyed by device name; H100 SXM and H200: 989 TFLOP/s).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "gpu.json"
DEFAULT_QUICK_OUT = REPO / "benchmarks" / "results" / "gpu-quick.json"
PAPER_TABLE7_S = 49.1  # the paper's Table 7: 5B, 50 steps with CFG, 1 H100
SECTIONS = ("environment", "inference", "vae", "training", "autoregressive", "accelerate")
RUN_ORDER = ("environment", "vae", "inference", "training", "autoregressive", "accelerate")
# Shares of the time limit; a section's budget is its share of what is left, so time a
# section does not use goes to the later ones.
SHARES = {"environment": 0.03, "vae": 0.10, "inference": 0.36, "training": 0.20,
          "autoregressive": 0.04, "accelerate": 0.27}  # fmt: skip

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets. The
# first entry whose key is in torch.cuda.get_device_name() wins, so specific names come first.
PEAK_BF16_TFLOPS = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
)

# diffusers' AutoencoderKLWan arguments of the Wan2.2-TI2V-5B VAE (48 latent channels,
# 16x spatial / 4x temporal compression, 2x2 pixel patches, residual up/down sampling).
WAN22_VAE = {
    "base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2, "attn_scales": [], "temperal_downsample": [False, True, True],
    "dropout": 0.0, "is_residual": True, "in_channels": 12, "out_channels": 12,
    "patch_size": 2, "scale_factor_temporal": 4, "scale_factor_spatial": 16,
}  # fmt: skip
# The same architecture, narrow, for the CPU dry run (z_dim is set to the model's channels).
QUICK_VAE = {**WAN22_VAE, "base_dim": 8, "decoder_base_dim": 8, "num_res_blocks": 1}

ACCELERATE_CONFIGS = {
    "fsdp": "configs/accelerate/fsdp.yaml",
    "deepspeed_zero2": "configs/accelerate/deepspeed_zero2.yaml",
    "deepspeed_zero3": "configs/accelerate/deepspeed_zero3.yaml",
}
INSTRUCTION = "pick up the red block and put it in the bowl"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Shapes of one run: the paper's on a GPU, tiny ones for the CPU dry run."""

    model: str
    views: int
    frames: int
    size: int  # inference and VAE resolution
    train_sizes: tuple[int, ...]
    vae: dict
    steps: int = 50
    guidance: float = 7.5
    shift: float = 5.0
    step_repeats: int = 3
    train_repeats: int = 3

    @classmethod
    def paper(cls, model: str = "wan2.2-ti2v-5b") -> Plan:
        return cls(model, 2, 41, 512, (256, 512), WAN22_VAE)

    @classmethod
    def quick(cls, model: str = "debug") -> Plan:
        return cls(model, 2, 9, 64, (64, 128), QUICK_VAE, train_repeats=2)


class SectionTimeout(BaseException):
    """Raised by the alarm when a section runs past its hard budget (not an ``Exception``,
    so no ``except Exception`` inside a section swallows it)."""


class Context:
    def __init__(self, args: argparse.Namespace, plan: Plan, device: torch.device):
        self.args, self.plan, self.device = args, plan, device
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.time_limit
        self.section_end = self.deadline
        self.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu-bench-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.codec = None  # the VAE codec, built by the vae section, reused by inference
        self.results: dict = {}
        self.src_on_path = False

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def left(self) -> float:
        """Seconds left in the current section's budget."""
        return self.section_end - time.monotonic()

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


# --- small helpers ----------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int = 3, warmup: int = 1):
    """(median seconds, list of seconds, last output) of ``fn()`` after ``warmup`` calls."""
    out = None
    for _ in range(warmup):
        out = fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(sorted(times)[len(times) // 2]), times, out


def reset_peak(device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device, res: dict, key: str) -> None:
    """Store peak allocated GPU memory (GiB) under ``key``, or say why not."""
    if device.type == "cuda":
        res[key] = torch.cuda.max_memory_allocated(device) / 2**30
        res[key.replace("allocated", "reserved")] = torch.cuda.max_memory_reserved(device) / 2**30
    else:
        res.setdefault("unavailable", {})[key] = "CPU run: no CUDA memory statistics"


def free(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:500]


def tail(text: str, chars: int = 3000) -> str:
    return text[-chars:]


def is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def peak_bf16_tflops(name: str) -> float | None:
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return tflops
    return None


def _clean(obj):
    """JSON-safe copy: non-finite floats become the strings 'nan' / 'inf' / '-inf'."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        obj = obj.item()
    if hasattr(obj, "item") and not isinstance(obj, (bool, int, float, str)):
        obj = obj.item()  # NumPy scalars
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json(path: Path, results: dict) -> None:
    """Write ``results`` to ``path`` atomically (temporary file in the same folder + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_clean(results), f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def alarm(seconds: float):
    """Raise SectionTimeout in the main thread after ``seconds`` (POSIX; a no-op elsewhere)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def handler(signum, frame):
        raise SectionTimeout(f"section ran past its budget of {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_cmd(cmd, timeout: float, env=None, cwd=REPO) -> tuple[int | str, str, float]:
    """Run ``cmd`` in its own process group; (return code or 'timeout', output, seconds).

    On a timeout or an exception (the section's alarm) the whole group this call started is
    killed, so launchers' child processes do not outlive it.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=max(timeout, 1.0))
        rc: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, rc = (proc.communicate()[0] or "") + f"\n[killed after {timeout:.0f} s]", "timeout"
    except BaseException:
        _kill_group(proc)
        proc.communicate()
        raise
    return rc, out or "", time.perf_counter() - t0


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# --- model pieces -----------------------------------------------------------------------
def forward_flops(mc, tokens: int, text_tokens: int, frames: int | None = None) -> dict:
    """Analytic forward FLOPs of one sample (see the module docstring); parts and "total"."""
    L, S, d, f, n = tokens, text_tokens, mc.inner_dim, mc.ffn_dim, mc.num_layers
    patch = math.prod(mc.patch_size)
    q, t = mc.freq_dim, mc.text_dim
    if mc.camera_encoder == "token":
        camera = 2 * L * mc.camera_channels * mc.camera_subgrid**2 * d
    else:  # one vector per latent frame
        camera = 2 * (frames or 0) * math.prod(mc.camera_pool) * d
    parts = {
        "patch_embedding": 2 * L * mc.in_channels * patch * d,
        "timestep_embedding": 2 * L * (q * d + d * d) + 2 * L * d * 6 * d,
        "text_embedding": 2 * S * (t * d + d * d),
        "self_attention_projections": n * 8 * L * d * d,
        "self_attention_scores_values": n * 4 * L * L * d,
        "camera_projection": n * camera,
        "projector": n * 2 * L * d * d,
        "cross_attention_projections": n * (4 * L * d * d + 4 * S * d * d),
        "cross_attention_scores_values": n * 4 * L * S * d,
        "feed_forward": n * 4 * L * d * f,
        "output_projection": 2 * L * d * mc.out_channels * patch,
    }
    parts["total"] = sum(parts.values())
    return parts


def tokens_of(mc, views: int, frames: int, size: int, spatial: int) -> tuple[int, int, int]:
    """(latent frames per clip F, latent side h, tokens L) of V views x {video, action} clips."""
    F = 1 + (frames - 1) // mc.temporal_factor
    h = size // spatial
    p_t, p_h, p_w = mc.patch_size
    return F, h, (2 * views * F // p_t) * (h // p_h) * (h // p_w)


def build_transformer(mc, device, dtype, backend: str | None):
    from actionimages.model.transformer import ActionImagesWanTransformer

    with torch.device(device):
        model = ActionImagesWanTransformer.from_model_config(mc)
    model = model.to(dtype)
    if backend:
        model.set_attention_backend(backend)
    return model


def build_vae_codec(ctx: Context, z_dim: int):
    from diffusers import AutoencoderKLWan

    from actionimages.model.latent import WanVAECodec

    cfg = {**ctx.plan.vae, "z_dim": z_dim}
    with torch.device(ctx.device):
        vae = AutoencoderKLWan(**cfg, latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim)
    vae = vae.to(torch.bfloat16).eval().requires_grad_(False)
    return WanVAECodec(vae).to(ctx.device)


def text_encoder(mc):
    from actionimages.model.text import CachedTextEncoder, HashTextEncoder

    # UMT5 needs downloaded weights; the hash encoder gives the same (S, text_dim) shape.
    return CachedTextEncoder(HashTextEncoder(mc.text_dim, mc.text_length))


def placeholder_codec(mc, spatial: int):
    from actionimages.model.latent import PatchPCACodec

    return PatchPCACodec(mc.out_channels, mc.temporal_factor, spatial)


def pixel_batch(views: int, frames: int, size: int, seed: int = 0) -> dict:
    """A collated sampler-style batch (channels last): random video, action images, Plücker maps."""
    g = torch.Generator().manual_seed(seed)
    shape = (1, views, frames, size, size, 3)
    return {
        "video": torch.rand(shape, generator=g) * 2 - 1,
        "actions": torch.rand(shape, generator=g) * 2 - 1,
        "plucker": torch.randn(1, views, frames, size // 8, size // 8, 6, generator=g),
        "tasks": torch.ones(1, 4, dtype=torch.bool),
        "instruction": [INSTRUCTION],
    }


# --- sections ---------------------------------------------------------------------------
def section_environment(ctx: Context, res: dict) -> None:
    import accelerate
    import diffusers
    import transformers

    res["python"] = platform.python_version()
    res["platform"] = platform.platform()
    res["cpu_count"] = os.cpu_count()
    res["torch"] = torch.__version__
    res["cuda"] = torch.version.cuda or "none (CPU build)"
    res["cudnn"] = (
        str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none"
    )
    res["diffusers"] = diffusers.__version__
    res["accelerate"] = accelerate.__version__
    res["transformers"] = transformers.__version__
    rc, out, _ = run_cmd(
        [sys.executable, "-c", "import deepspeed; print(deepspeed.__version__)"], 60
    )
    res["deepspeed"] = out.strip().splitlines()[-1] if rc == 0 and out.strip() else "not installed"
    try:
        rc, out, _ = run_cmd(["git", "rev-parse", "--short", "HEAD"], 10)
    except OSError:  # no git on the machine
        rc = None
    if rc == 0:
        dirty = run_cmd(["git", "status", "--porcelain", "--untracked-files=no"], 10)[1].strip()
        res["git_commit"] = out.strip() + (" (uncommitted changes)" if dirty else "")
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        res["device"] = torch.cuda.get_device_name(ctx.device)
        res["device_memory_gib"] = props.total_memory / 2**30
        res["multiprocessors"] = props.multi_processor_count
        res["compute_capability"] = f"{props.major}.{props.minor}"
    else:
        res["device"] = f"CPU ({platform.processor() or platform.machine()})"
        res["torch_threads"] = torch.get_num_threads()
    peak = ctx.args.peak_tflops or (peak_bf16_tflops(res["device"]) if ctx.cuda else None)
    if peak:
        res["peak_bf16_tflops"] = peak
        res["peak_source"] = "--peak-tflops" if ctx.args.peak_tflops else "PEAK_BF16_TFLOPS table"
    else:
        res.setdefault("unavailable", {})["peak_bf16_tflops"] = (
            "no dense bf16 peak known for this device (pass --peak-tflops)"
        )
    res["attention"] = attention_info(ctx)


def attention_info(ctx: Context) -> dict:
    """diffusers' attention backend and, for its native one, the SDPA kernel torch picks."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    active = _AttentionBackendRegistry.get_active_backend()[0]
    info = {
        "diffusers_backend": ctx.args.attention_backend or getattr(active, "value", str(active))
    }
    if info["diffusers_backend"] != "native":
        return info
    mc = _model_config(ctx)
    dtype = torch.bfloat16
    q = torch.randn(
        1, mc.num_attention_heads, 256, mc.attention_head_dim, device=ctx.device, dtype=dtype
    )
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    ops = sorted(
        {e.key for e in prof.key_averages() if e.key.startswith("aten::_") and "attention" in e.key}
    )
    kinds = {"flash": "flash", "efficient": "memory-efficient", "cudnn": "cuDNN", "math": "math"}
    kernel = next((v for k, v in kinds.items() if any(k in op for op in ops)), "unknown")
    info["sdpa_ops"] = ops
    info["sdpa_kernel"] = kernel + (" (CPU)" if not ctx.cuda else "")
    return info


def _model_config(ctx: Context):
    from actionimages.model.config import ModelConfig

    return ModelConfig.preset(ctx.plan.model)


def section_vae(ctx: Context, res: dict) -> None:
    p, dev = ctx.plan, ctx.device
    mc = _model_config(ctx)
    res["config"] = {**p.vae, "z_dim": mc.out_channels}
    clips = 2 * p.views
    res["clips"], res["frames"], res["size"] = clips, clips * p.frames, p.size
    t0 = time.perf_counter()
    codec = build_vae_codec(ctx, mc.out_channels)
    sync(dev)
    res["build_s"] = time.perf_counter() - t0
    res["parameters_m"] = sum(x.numel() for x in codec.vae.parameters()) / 1e6
    g = torch.Generator().manual_seed(1)
    video = (torch.rand(clips, 3, p.frames, p.size, p.size, generator=g) * 2 - 1).to(dev)
    with torch.no_grad():  # warm-up: lazy CUDA / cuDNN initialisation on a small clip
        codec.decode(codec.encode(video[:1, :, :5, : p.size // 4, : p.size // 4]))
        sync(dev)
        reset_peak(dev)
        enc_s, dec_s, tries = [], [], 0
        while len(enc_s) < 2 and tries < 4:
            tries += 1
            if enc_s and ctx.left() < 2.5 * (enc_s[0] + dec_s[0]):
                break
            oom = None
            try:
                t0 = time.perf_counter()
                z = codec.encode(video)
                sync(dev)
                enc_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                codec.decode(z)
                sync(dev)
                dec_s.append(time.perf_counter() - t0)
            except Exception as err:
                if not is_oom(err) or codec.vae.use_slicing:
                    raise
                oom = first_line(err)
            if oom:  # the whole batch did not fit: one clip at a time, from the start
                res["sliced"] = f"one clip at a time (vae.enable_slicing) after {oom}"
                enc_s, dec_s, z = [], [], None
                free(dev)
                codec.vae.enable_slicing()
                reset_peak(dev)
        if not enc_s:
            raise RuntimeError("no encode + decode finished")
    res["latent_shape"] = list(z.shape)
    res["encode_s"], res["decode_s"] = min(enc_s), min(dec_s)
    res["encode_decode_s"] = res["encode_s"] + res["decode_s"]
    res["frames_per_s_encode"] = res["frames"] / res["encode_s"]
    res["frames_per_s_decode"] = res["frames"] / res["decode_s"]
    res["repeats"] = len(enc_s)
    peak_gib(dev, res, "peak_allocated_gib")
    ctx.codec = codec


def section_inference(ctx: Context, res: dict) -> None:
    from actionimages.data.sampler import ClipConfig
    from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline, _stack_encoded
    from actionimages.model.latent import psnr
    from actionimages.model.masking import TASKS, VISIBLE, frame_timesteps, task_frame_states
    from actionimages.model.wam import WorldActionModel

    p, dev, args = ctx.plan, ctx.device, ctx.args
    mc = _model_config(ctx)
    codec = ctx.codec
    if codec is None:
        codec = placeholder_codec(mc, p.vae["scale_factor_spatial"]).to(dev)
        res["codec_note"] = "the VAE section failed: a patch-PCA placeholder codec stands in"
    F, _, L = tokens_of(mc, p.views, p.frames, p.size, codec.spatial_factor)
    res["model"], res["dtype"] = mc.name, "bfloat16 weights, torch.autocast(bfloat16)"
    res["shape"] = {"views": p.views, "frames": p.frames, "size": p.size, "latent_frames": 2 * p.views * F,
                    "tokens": L, "text_tokens": mc.text_length, "batch_cfg": 2}  # fmt: skip
    t0 = time.perf_counter()
    transformer = build_transformer(mc, dev, torch.bfloat16, args.attention_backend).eval()
    sync(dev)
    res["build_s"] = time.perf_counter() - t0
    res["parameters_b"] = sum(x.numel() for x in transformer.parameters()) / 1e9
    wam = WorldActionModel(mc, transformer, codec, text_encoder(mc))
    clip = ClipConfig(num_frames=p.frames, height=p.size, width=p.size, num_views=p.views)
    pipe = WorldActionPipeline(wam, clip)
    batch = pixel_batch(p.views, p.frames, p.size)

    # One denoising step: the pipeline's batched-CFG call of the model (batch 2).
    with torch.no_grad(), ctx.autocast():
        t0 = time.perf_counter()
        enc = wam.encode_batch(batch)
        sync(dev)
        res["encode_batch_s"] = time.perf_counter() - t0
    states = task_frame_states(TASKS.index("joint"), enc.num_views, enc.frames_per_clip)[None].to(
        dev
    )
    uncond = dataclasses.replace(enc, context=pipe.empty_context(enc.context))
    pair = _stack_encoded(enc, uncond)
    noise = torch.randn(enc.latents.shape, generator=torch.Generator().manual_seed(0)).to(dev)
    held = torch.where((states == VISIBLE)[:, None, :, None, None], enc.latents, noise)
    sigma = frame_timesteps(states, torch.full((1,), 0.5, device=dev))
    x2, s2, h2, st2 = (
        torch.cat([held, held]),
        sigma.repeat(2, 1),
        held.repeat(2, 1, 1, 1, 1),
        states.repeat(2, 1),
    )

    def step():
        with torch.no_grad(), ctx.autocast():
            return wam.velocity(x2, s2, h2, st2, pair)

    def two_calls():
        with torch.no_grad(), ctx.autocast():
            return (wam.velocity(held, sigma, held, states, enc),
                    wam.velocity(held, sigma, held, states, uncond))  # fmt: skip

    reset_peak(dev)
    step_s, times, v_eager = timed(step, dev, p.step_repeats, warmup=1)
    res["step_batched_cfg_s"], res["step_batched_cfg_all_s"] = step_s, times
    res["step_two_calls_s"] = timed(two_calls, dev, 1, warmup=0)[0]
    peak_gib(dev, res, "step_peak_allocated_gib")
    res["denoise_50_extrapolated_s"] = 50 * step_s
    res["paper_table7_s"] = PAPER_TABLE7_S
    res["extrapolated_over_paper"] = 50 * step_s / PAPER_TABLE7_S
    fl = 2 * forward_flops(mc, L, mc.text_length)["total"]
    res["step_tflop"] = fl / 1e12
    res["step_tflops_achieved"] = fl / step_s / 1e12
    peak = ctx.results["environment"].get("peak_bf16_tflops")
    if peak:
        res["step_mfu"] = res["step_tflops_achieved"] / peak
    else:
        res.setdefault("unavailable", {})["step_mfu"] = "no bf16 peak known for this device"

    # Full pipeline: 50 steps (VAE encode + denoise + decode), uncached and with velocity caching.
    cfg = SamplingConfig(
        steps=p.steps, guidance=p.guidance, shift=p.shift, batched_cfg=True, seed=0
    )
    vae_s = ctx.results["vae"].get("encode_decode_s", 2 * res["encode_batch_s"])
    estimate = vae_s + p.steps * step_s * 1.1 + 2
    want_compile = args.compile == "on" or (args.compile == "auto" and ctx.cuda)
    reserve = 60 if want_compile else 0  # room for the compile measurement
    runs = {}
    for name, c in (
        ("uncached", cfg),
        ("cached", cfg.replace(cache_threshold=args.cache_threshold)),
    ):
        key = f"pipeline_{name}"
        need = estimate if name == "uncached" else 0.8 * estimate
        if ctx.left() < need + reserve:
            res[key] = {"status": "skipped", "reason": f"needs about {need:.0f} s, {ctx.left():.0f} s left in the section budget"}  # fmt: skip
            continue
        reset_peak(dev)
        res[key] = {"status": "error", "error": "did not finish within the section budget"}
        t0 = time.perf_counter()
        try:
            with ctx.autocast():
                out = pipe(batch, "generate", c)
            sync(dev)
        except Exception as err:
            res[key] = {
                "status": "error",
                "error": first_line(err),
                "traceback": tail(traceback.format_exc()),
            }
            continue
        wall = time.perf_counter() - t0
        runs[name] = out
        r = {"steps": p.steps, "wall_s": wall, "model_calls": out.model_calls,
             "steps_saved": p.steps - out.model_calls}  # fmt: skip
        if name == "cached":
            r["cache_threshold"], r["cache_window"] = c.cache_threshold, c.cache_window
        peak_gib(dev, r, "peak_allocated_gib")
        res[key] = r
    if "uncached" in runs:
        res["pipeline_uncached"]["over_paper"] = res["pipeline_uncached"]["wall_s"] / PAPER_TABLE7_S
    if "uncached" in runs and "cached" in runs:
        ref, out, r = runs["uncached"], runs["cached"], res["pipeline_cached"]
        r["speedup_vs_uncached"] = res["pipeline_uncached"]["wall_s"] / r["wall_s"]
        r["max_abs_diff_vs_uncached"] = float((out.video - ref.video).abs().max())
        for what, a, b in (
            ("video", out.video[:, :, 1:], ref.video[:, :, 1:]),
            ("actions", out.actions, ref.actions),
        ):
            value = psnr(a.float(), b.float(), peak_to_peak=1.0)
            if math.isfinite(value):
                r[f"{what}_psnr_db_vs_uncached"] = value
            else:
                r[f"{what}_identical_to_uncached"] = True
        r["note"] = ("random weights: how often the cache hits and what it costs depend on the "
                     "trained model; this checks the code path and its speed")  # fmt: skip
    del runs

    # torch.compile of the step (regional by default: one compiled block reused by all).
    if not want_compile:
        res["compile"] = {
            "status": "skipped",
            "reason": "torch.compile skipped on CPU (--compile on forces it)",
        }
    elif ctx.left() < 45:
        res["compile"] = {
            "status": "skipped",
            "reason": f"only {ctx.left():.0f} s left in the section budget",
        }
    else:
        res["compile"] = {"status": "error", "error": "did not finish within the section budget"}
        res["compile"] = measure_compile(ctx, pipe, step, v_eager, step_s)


def measure_compile(ctx: Context, pipe, step, v_eager, step_s: float) -> dict:
    r = {"mode": ctx.args.compile_mode}
    try:
        t0 = time.perf_counter()
        if ctx.args.compile_mode == "regional":
            pipe.wam.transformer.compile_repeated_blocks(fullgraph=True)
        else:
            pipe.compile(dynamic=False)
        v = step()
        sync(ctx.device)
        first = time.perf_counter() - t0
        compiled_s, times, v = timed(step, ctx.device, ctx.plan.step_repeats, warmup=0)
    except Exception as err:  # a missing toolchain or a graph break: report, do not hide
        r.update(status="error", error=first_line(err), traceback=tail(traceback.format_exc()))
        return r
    r.update(status="ok", first_call_s=first, compile_s=first - compiled_s, step_s=compiled_s,
             step_all_s=times, speedup_vs_eager=step_s / compiled_s,
             denoise_50_extrapolated_s=50 * compiled_s,
             extrapolated_over_paper=50 * compiled_s / PAPER_TABLE7_S,
             max_abs_diff_vs_eager=float((v.float() - v_eager.float()).abs().max()))  # fmt: skip
    return r


def section_training(ctx: Context, res: dict) -> None:
    from actionimages.model.wam import EncodedBatch, WorldActionModel
    from actionimages.train.config import TrainConfig
    from actionimages.train.trainer import Trainer

    p, dev, args = ctx.plan, ctx.device, ctx.args
    mc = _model_config(ctx)
    cfg = TrainConfig.preset("paper", output_dir=str(ctx.workdir / "train"), report_to="none",
                             num_workers=0, ema_decay=None, batch_size=1)  # fmt: skip
    res["recipe"] = {"preset": "paper", "mixed_precision": cfg.mixed_precision, "master_weights": "float32",
                     "gradient_checkpointing": cfg.gradient_checkpointing, "optimizer": "AdamW",
                     "grad_clip": cfg.grad_clip, "batch_size": 1, "model": mc.name}  # fmt: skip
    res["note"] = (
        "latents given: the trainer's VAE encode of the clip comes on top (see the vae section)"
    )
    t0 = time.perf_counter()
    transformer = build_transformer(mc, dev, torch.float32, args.attention_backend)
    wam = WorldActionModel(
        mc, transformer, placeholder_codec(mc, mc.spatial_factor), text_encoder(mc)
    )
    trainer = Trainer(cfg, dataset=[{}], wam=wam, resume=False)
    sync(dev)
    res["build_s"] = time.perf_counter() - t0
    res["parameters_b"] = sum(x.numel() for x in transformer.parameters()) / 1e9
    peak = ctx.results["environment"].get("peak_bf16_tflops")
    optimizer_fits = True
    res["sizes"] = {}
    for k, size in enumerate(p.train_sizes):
        F, h, L = tokens_of(mc, p.views, p.frames, size, mc.spatial_factor)
        r = res["sizes"][str(size)] = {"size": size, "tokens": L, "latent_frames": 2 * p.views * F}
        g = torch.Generator().manual_seed(size)
        latents = torch.randn(1, mc.out_channels, 2 * p.views * F, h, h, generator=g).to(dev)
        plucker = torch.randn(1, p.views, 6, p.frames, size // 8, size // 8, generator=g).to(dev)
        enc = EncodedBatch(latents, wam.camera_input(plucker, (p.frames, size, size)),
                           wam.text_encoder.encode([INSTRUCTION]).to(dev),
                           torch.tensor([[True, False, False, False]], device=dev), p.views, F)  # fmt: skip
        wam.encode_batch = lambda batch, enc=enc: enc  # the step runs on these latents
        fl = forward_flops(mc, L, mc.text_length)
        r["forward_tflop"] = fl["total"] / 1e12
        if k == 0:
            r["flop_check"] = flop_check(ctx, trainer, wam, enc, fl["total"])
        # Full optimiser step, as Trainer.train_step runs it.
        if optimizer_fits:
            try:
                reset_peak(dev)
                step_s, times, logs = timed(
                    lambda: trainer.train_step({}), dev, p.train_repeats, warmup=1
                )
                r["step_s"], r["step_all_s"], r["loss"] = step_s, times, logs["loss"]
                r["optimizer"] = "AdamW (full state)"
                peak_gib(dev, r, "peak_allocated_gib")
                _throughput(r, fl["total"], L, step_s, peak)
            except Exception as err:
                if not is_oom(err):
                    raise
                optimizer_fits = False
                r["optimizer"] = (
                    f"AdamW state did not fit ({first_line(err)}): forward + backward alone"
                )
            if not optimizer_fits:  # out of the except block, so its traceback is gone too
                opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
                opt.state.clear()
                trainer.optimizer.zero_grad(set_to_none=True)
                free(dev)
        else:
            r["optimizer"] = "AdamW state did not fit at a smaller size: forward + backward alone"
        # Forward + backward alone (what the optimiser adds is the difference).
        gen = torch.Generator().manual_seed(0)

        def fwd_bwd(enc=enc, gen=gen):
            with trainer.accelerator.autocast():
                loss, _ = wam.loss(
                    enc, gen, cfg.task_ratios, cfg.prompt_dropout, cfg.timestep_shift
                )
            trainer.accelerator.backward(loss)
            trainer.optimizer.zero_grad(set_to_none=True)
            return float(loss.detach())

        need = 3 * r.get("step_s", 1.0) + 5
        if "step_s" in r and ctx.left() < need:
            r["fwd_bwd"] = {
                "status": "skipped",
                "reason": f"{ctx.left():.0f} s left in the section budget",
            }
            continue
        reset_peak(dev)
        fb_s, fb_times, _ = timed(fwd_bwd, dev, max(2, p.train_repeats - 1), warmup=1)
        fb = r["fwd_bwd"] = {"step_s": fb_s, "step_all_s": fb_times}
        peak_gib(dev, fb, "peak_allocated_gib")
        _throughput(fb, fl["total"], L, fb_s, peak)
        if "step_s" in r:
            r["optimizer_and_clip_s"] = r["step_s"] - fb_s
        if (
            ctx.results.get("vae", {}).get("status") == "ok"
            and ctx.results["vae"]["size"] == p.size
        ):
            vae = ctx.results["vae"]
            # The same 4 clips x 41 frames; VAE time grows with the pixels.
            r["vae_encode_est_s"] = vae["encode_s"] * (size / vae["size"]) ** 2
    trainer.accelerator.free_memory()  # drops its references to the model and optimiser


def _throughput(r: dict, fwd_flops: float, tokens: int, step_s: float, peak) -> None:
    r["tokens_per_s"] = tokens / step_s
    r["samples_per_s"] = 1.0 / step_s
    model, hardware = 3 * fwd_flops, 4 * fwd_flops  # backward = 2 forwards; + 1 recompute
    r["model_tflops_achieved"] = model / step_s / 1e12
    if peak:
        r["mfu"] = model / step_s / 1e12 / peak
        r["hfu_with_recompute"] = hardware / step_s / 1e12 / peak
    else:
        r.setdefault("unavailable", {})["mfu"] = "no bf16 peak known for this device"


def flop_check(ctx: Context, trainer, wam, enc, analytic: float) -> dict:
    """Count one forward's FLOPs with torch's counter (math attention, so it is counted)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from actionimages.model.masking import TASKS, frame_timesteps, task_frame_states

    if ctx.args.attention_backend not in (None, "native"):
        return {"status": "skipped", "reason": "only with diffusers' native attention backend"}
    states = task_frame_states(TASKS.index("joint"), enc.num_views, enc.frames_per_clip)[None].to(
        ctx.device
    )
    sigma = frame_timesteps(states, torch.full((1,), 0.5, device=ctx.device))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), trainer.accelerator.autocast(), sdpa_kernel([SDPBackend.MATH]), counter:
        wam.velocity(enc.latents, sigma, enc.latents, states, enc)
    counted = counter.get_total_flops()
    return {"status": "ok", "counted_tflop": counted / 1e12, "analytic_tflop": analytic / 1e12,
            "analytic_over_counted": analytic / counted}  # fmt: skip


def section_autoregressive(ctx: Context, res: dict) -> None:
    """Per-chunk latency of the block-causal mode: KV cache (``forward_tokens``) against
    recomputing the masked sequence so far, bf16, one model call per chunk."""
    from actionimages.model.causal import KVCache, block_causal_mask, chunk_tokens

    mc, plan, dev = _model_config(ctx), ctx.plan, ctx.device
    dtype = torch.bfloat16 if ctx.cuda else torch.float32
    model = build_transformer(mc, dev, dtype, None).eval()
    spatial = mc.spatial_factor
    h = plan.size // spatial
    n = (h // mc.patch_size[1]) * (h // mc.patch_size[2])  # tokens per latent frame
    clips, chunks = 2 * plan.views, (plan.frames - 1) // mc.temporal_factor + 1
    ctx_text = torch.randn(1, mc.text_length, mc.text_dim, device=dev, dtype=dtype)
    measure = sorted({0, 1, 3, chunks - 1} & set(range(chunks)))
    cache, rows = KVCache(len(model.blocks)), {}
    res.update(tokens_per_chunk=clips * n, chunks=chunks, dtype=str(dtype))
    for c in range(chunks):
        if ctx.left() < 5:
            res["stopped_at_chunk"] = c
            break
        F = c + 1
        x = torch.randn(1, mc.in_channels, clips * F, h, h, device=dev, dtype=dtype)
        t = torch.full((1, clips * F * n), 500.0, device=dev)
        cam = torch.zeros(1, clips * F, mc.camera_channels, h, h, device=dev, dtype=dtype)
        mine = chunk_tokens(c, clips, F, 1, n).to(dev)
        if c in measure:
            mask = block_causal_mask(clips, F, 1, n).to(dev)
            with torch.no_grad():

                def step(x=x, t=t, mine=mine, cam=cam):
                    return model.forward_tokens(
                        x, t, ctx_text, mine, cache, camera=cam, write=False
                    )

                def recompute(x=x, t=t, cam=cam, mask=mask):
                    return model(x, t, ctx_text, camera=cam, attention_mask=mask)

                cached, full = timed(step, dev)[0], timed(recompute, dev)[0]
            rows[str(c)] = {"cached_s": cached, "recomputed_s": full, "speedup": full / cached}
        model.forward_tokens(x, t, ctx_text, mine, cache, camera=cam, write=True)
    res["per_chunk"] = rows
    res["status"] = "ok" if rows else "skipped"
    if not rows:
        res["reason"] = "no time left for a chunk"
    free(dev)


def section_accelerate(ctx: Context, res: dict) -> None:
    py = sys.executable
    work = ctx.workdir / "accelerate"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", DS_BUILD_OPS="0", TOKENIZERS_PARALLELISM="false")
    if ctx.src_on_path:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    if not ctx.cuda:
        env.setdefault("OMP_NUM_THREADS", "1")
    data = work / "data"
    t0 = time.perf_counter()
    write_synthetic_dataset(data)
    res["dataset"] = {"kind": "synthetic LeRobot v3 (random frames, straight-line poses)",
                      "episodes": 2, "frames": 30, "views": 2, "size": 64,
                      "write_s": time.perf_counter() - t0}  # fmt: skip
    res["configs"] = {}
    launch_here = ctx.cuda or ctx.args.launch_on_cpu
    if not launch_here:
        for name in ACCELERATE_CONFIGS:
            res["configs"][name] = {
                "status": "skipped",
                "reason": "accelerate launches skipped on CPU under --quick",
            }
        res["plain_resume_check"] = resume_check(
            ctx, [py, "-m", "actionimages.cli.main"], data, work / "plain", env, [], 2
        )
        return
    ds = ensure_deepspeed(ctx, env)
    res["deepspeed"] = ds
    todo = list(ACCELERATE_CONFIGS.items())
    for i, (name, path) in enumerate(todo):
        if name.startswith("deepspeed") and ds.get("status") != "ok":
            res["configs"][name] = {
                "status": "error",
                "error": f"DeepSpeed unavailable: {ds.get('error', ds)}",
            }
            continue
        launcher = [py, "-m", "accelerate.commands.launch", "--config_file", REPO / path,
                    "--num_processes", "1", "--main_process_port", str(29500 + 7 * i + 3)]  # fmt: skip
        if not ctx.cuda:
            launcher.append("--cpu")
        extra = ["--set", "mixed_precision=bf16"] if ctx.cuda else []
        res["configs"][name] = resume_check(ctx, [*launcher, "-m", "actionimages.cli.main"], data,
                                            work / name, env, extra, len(todo) - i)  # fmt: skip
        write_json(ctx.args.out, ctx.results)


def write_synthetic_dataset(
    root: Path, episodes: int = 2, frames: int = 30, size: int = 64
) -> None:
    """A small LeRobot v3 dataset the debug preset trains on, without the simulator (pybullet).

    Two calibrated views on a ring, blocky random frames (h264), the end effector moving on
    a straight line with the gripper closing half-way: enough for the trainer's code path.
    """
    import numpy as np

    from actionimages.data.episode import Episode
    from actionimages.data.lerobot_writer import LeRobotWriter, WriterConfig
    from actionimages.data.video import VideoConfig
    from actionimages.geometry.rig import camera_ring

    rng = np.random.default_rng(0)
    views = ("front", "left_shoulder")
    cams = camera_ring(len(views), size, seed=0)
    config = WriterConfig(video=VideoConfig.h264())
    with LeRobotWriter(root, fps=10, robot_type="synthetic", config=config) as writer:
        for _ in range(episodes):
            t = np.linspace(0.0, 1.0, frames)[:, None]
            start, end = rng.uniform(-0.15, 0.15, 3), rng.uniform(-0.15, 0.15, 3)
            position = np.array([0.0, 0.0, 0.3]) + start + (end - start) * t  # (T, 3)
            rotation = np.repeat(np.diag([1.0, -1.0, -1.0])[None], frames, 0)  # pointing down
            gripper = (t[:, 0] < 0.5).astype(np.float64)
            coarse = rng.integers(0, 256, (frames, 4, 4, 3)).astype(np.uint8)
            image = coarse.repeat(size // 4, 1).repeat(size // 4, 2)  # (T, H, W, 3)
            writer.add_episode(Episode(position, rotation, gripper, "push the button",
                                       {v: image.copy() for v in views},
                                       {v: [c] * frames for v, c in zip(views, cams)},
                                       fps=10, task="synthetic"))  # fmt: skip


def ensure_deepspeed(ctx: Context, env: dict) -> dict:
    py = sys.executable
    check = [py, "-c", "import deepspeed; print(deepspeed.__version__)"]
    rc, out, _ = run_cmd(check, 90, env)
    if rc == 0:
        return {"status": "ok", "version": out.strip().splitlines()[-1], "installed_now": False}
    if ctx.args.no_install:
        return {"status": "error", "error": "deepspeed is not installed and --no-install was given"}
    constraints = ctx.workdir / "torch-constraint.txt"
    constraints.write_text(f"torch=={torch.__version__}\n")  # never replace the installed torch
    cmd = [
        py,
        "-m",
        "pip",
        "install",
        "--retries",
        "0",
        "--timeout",
        "15",
        "-c",
        constraints,
        "deepspeed",
    ]
    if ctx.args.wheelhouse:  # offline: the wheelhouse's files, built with the installed setuptools
        cmd += ["--no-index", "--find-links", ctx.args.wheelhouse, "--no-build-isolation"]
    rc, out, secs = run_cmd(cmd, min(180, max(ctx.left() - 60, 10)), dict(env, DS_BUILD_OPS="0"))
    if rc != 0:
        return {"status": "error", "install_s": secs, "error": f"pip install deepspeed failed (rc {rc})",
                "output": tail(out, 2000)}  # fmt: skip
    rc, out2, _ = run_cmd(check, 90, env)
    if rc != 0:
        return {
            "status": "error",
            "install_s": secs,
            "error": "installed but import fails",
            "output": tail(out2, 2000),
        }
    return {
        "status": "ok",
        "version": out2.strip().splitlines()[-1],
        "installed_now": True,
        "install_s": secs,
    }


def resume_check(
    ctx: Context, prefix: list, data: Path, work: Path, env: dict, extra: list, remaining: int
) -> dict:
    """4 uninterrupted steps vs. the step-2 checkpoint resumed to step 4: the same weights?"""
    from safetensors.torch import load_file

    a, b = work / "uninterrupted", work / "resumed"
    common = [
        "train",
        "--preset",
        "debug",
        "--data",
        data,
        "--steps",
        "4",
        "--set",
        "save_every=2",
        *extra,
    ]
    r: dict = {"command": " ".join(str(c) for c in [*prefix, *common]).replace(str(REPO) + "/", "")}
    per_launch = max(ctx.left() / (2 * remaining) - 2, 10)
    rc, out, secs = run_cmd([*prefix, *common, "--output-dir", a, "--no-resume"], per_launch, env)
    r["uninterrupted_s"] = secs
    if rc != 0:
        return _launch_error(r, "uninterrupted run", rc, out)
    ckpt = a / "checkpoints" / "step-0000002"
    if not (ckpt / "model.safetensors").is_file():
        return {
            **r,
            "status": "error",
            "stage": "uninterrupted run",
            "error": "no step-2 checkpoint written",
        }
    (b / "checkpoints").mkdir(parents=True)
    shutil.copytree(ckpt, b / "checkpoints" / ckpt.name)
    (b / "checkpoints" / "latest").write_text(ckpt.name)
    if (a / "latent_codec.safetensors").is_file():
        shutil.copy2(a / "latent_codec.safetensors", b / "latent_codec.safetensors")
    stamp = (b / "checkpoints" / ckpt.name / "config.json").stat().st_mtime_ns
    per_launch = max(ctx.left() / (2 * remaining - 1) - 2, 10)
    rc, out_b, secs = run_cmd([*prefix, *common, "--output-dir", b], per_launch, env)
    r["resumed_s"] = secs
    if rc != 0:
        return _launch_error(r, "resumed run", rc, out_b)
    if (b / "checkpoints" / ckpt.name / "config.json").stat().st_mtime_ns != stamp:
        return {**r, "status": "error", "stage": "resumed run",
                "error": "the resumed run rewrote step 2: it started over instead of resuming"}  # fmt: skip
    fa, fb = (d / "checkpoints" / "step-0000004" / "model.safetensors" for d in (a, b))
    if not fb.is_file() or not fa.is_file():
        return {**r, "status": "error", "stage": "compare", "error": "no step-4 checkpoint"}
    wa, wb = load_file(str(fa)), load_file(str(fb))
    if set(wa) != set(wb):
        return {
            **r,
            "status": "error",
            "stage": "compare",
            "error": "checkpoints hold different tensors",
        }
    diffs = [
        float((wa[k].double() - wb[k].double()).abs().max()) if wa[k].numel() else 0.0 for k in wa
    ]
    scale = max(float(wa[k].double().abs().max()) if wa[k].numel() else 0.0 for k in wa)
    r["tensors"] = len(wa)
    r["weights_max_abs_diff"] = max(diffs)
    r["weights_bitwise_equal"] = all(torch.equal(wa[k], wb[k]) for k in wa)
    la, lb = _final_loss(out), _final_loss(out_b)
    if la is not None and lb is not None:
        r["final_loss_uninterrupted"], r["final_loss_resumed"] = la, lb
    r["resumed_exactly"] = r["weights_bitwise_equal"]
    r["resumed_within_1e-6"] = max(diffs) <= 1e-6 * max(scale, 1.0)
    r["status"] = "ok"
    return r


def _final_loss(out: str) -> float | None:
    found = re.findall(r"step (\d+): loss ([-+0-9.eE]+|nan|inf)", out)
    return float(found[-1][1]) if found else None


def _launch_error(r: dict, stage: str, rc: int, out: str) -> dict:
    """The result of an accelerate launch that failed at ``stage``."""
    return {**r, "status": "error", "stage": stage, "rc": rc, "error": _error_text(out)}


def _error_text(out: str) -> str:
    """The last error-looking lines of a failed launch, else its tail."""
    lines = [ln for ln in out.splitlines() if re.search(r"(Error|error:|Exception|Traceback)", ln)]
    return ("\n".join(lines[-8:]) + "\n---\n" if lines else "") + tail(out, 2500)


SECTION_FUNCS = {
    "environment": section_environment,
    "vae": section_vae,
    "inference": section_inference,
    "training": section_training,
    "autoregressive": section_autoregressive,
    "accelerate": section_accelerate,
}


# --- report -----------------------------------------------------------------------------
def _f(x, digits: int = 2, unit: str = "") -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{x:,.{digits}f}{unit}"
    return "-" if x is None else str(x)


def _status_line(name: str, sec: dict) -> str | None:
    if sec.get("status") == "ok":
        return None
    why = sec.get("reason") or sec.get("error") or sec.get("status")
    return f"**{name}: {sec.get('status')}.** {why}"


def render_markdown(results: dict) -> str:
    env, meta = results.get("environment", {}), results.get("meta", {})
    att = env.get("attention", {})
    attn = f"diffusers `{att.get('diffusers_backend', '?')}`"
    if att.get("sdpa_kernel"):
        attn += f" -> PyTorch SDPA {att['sdpa_kernel']} kernel"
    lines = [
        f"## GPU run: Table 7 timing, training throughput, accelerate configs ({meta.get('date', '?')})",
        "",
        f"`benchmarks/gpu.py{' --quick' if meta.get('quick') else ''}` (JSON: `{meta.get('out', '?')}`), "
        f"random-initialised weights, {_f(meta.get('total_s'), 0)} s in all. Device: {env.get('device', '?')}"
        + (f" ({_f(env.get('device_memory_gib'), 0)} GiB)" if env.get("device_memory_gib") else "")
        + f"; torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, cuDNN {env.get('cudnn', '?')}, "
        f"diffusers {env.get('diffusers', '?')}, accelerate {env.get('accelerate', '?')}, "
        f"DeepSpeed {results.get('accelerate', {}).get('deepspeed', {}).get('version', env.get('deepspeed', '?'))}; "
        f"attention: {attn}; bf16 peak used for MFU: {_f(env.get('peak_bf16_tflops'), 0)} TFLOP/s"
        + (f"; commit {env['git_commit']}" if env.get("git_commit") else "") + ".",
        "",
    ]  # fmt: skip
    inf = results.get("inference", {})
    quick = bool(meta.get("quick"))
    plan = meta.get("plan", {})
    lines.append(("**Inference** (--quick shapes" if quick else "**Inference** (the paper's Table 7 shape") + (
        f": {inf['model']}, {inf['shape']['views']} views x {{video, action}} x {inf['shape']['frames']} frames "
        f"at {inf['shape']['size']}², {_f(inf['shape']['tokens'], 0)} tokens, batched CFG = batch 2, bf16)"
        if "shape" in inf else ")"))  # fmt: skip
    lines.append("")
    if (s := _status_line("inference", inf)) is not None:
        lines += [s, ""]
    if "step_batched_cfg_s" in inf:
        rows = [("one denoising step, cond + uncond batched", _f(inf["step_batched_cfg_s"], 3, " s")),
                ("one step, CFG as two calls", _f(inf.get("step_two_calls_s"), 3, " s")),
                ("50 steps, extrapolated (50 x step)",
                 f"{_f(inf['denoise_50_extrapolated_s'], 1, ' s')} (paper: {PAPER_TABLE7_S} s on 1 H100; "
                 f"x{_f(inf['extrapolated_over_paper'], 2)})"),
                ("step throughput", f"{_f(inf.get('step_tflops_achieved'), 0)} TFLOP/s, MFU {_f(inf.get('step_mfu'), 3)}"),
                ("step peak memory", _f(inf.get("step_peak_allocated_gib"), 1, " GiB"))]  # fmt: skip
        for key, label in (("pipeline_uncached", "full pipeline, 50 steps (VAE encode + denoise + decode)"),
                           ("pipeline_cached", "same, velocity cache")):  # fmt: skip
            r = inf.get(key, {})
            if "wall_s" in r:
                extra = ""
                if key == "pipeline_cached":
                    q = r.get("video_psnr_db_vs_uncached")
                    extra = (f", threshold {r['cache_threshold']}: {r['steps_saved']} of {r['steps']} model calls "
                             f"saved, x{_f(r.get('speedup_vs_uncached'))}, video PSNR vs uncached "
                             f"{_f(q, 1, ' dB') if q is not None else 'identical'}")  # fmt: skip
                rows.append(
                    (label, f"{_f(r['wall_s'], 1, ' s')}, {r['model_calls']} model calls{extra}")
                )
            elif r:
                rows.append((label, f"{r.get('status')}: {r.get('reason', r.get('error', ''))}"))
        c = inf.get("compile", {})
        if c.get("status") == "ok":
            rows.append((f"torch.compile ({c['mode']}): step / 50 steps",
                         f"{_f(c['step_s'], 3, ' s')} / {_f(c['denoise_50_extrapolated_s'], 1, ' s')} "
                         f"(x{_f(c['speedup_vs_eager'])} vs eager; compile {_f(c['compile_s'], 0, ' s')})"))  # fmt: skip
        elif c:
            rows.append(
                ("torch.compile", f"{c.get('status')}: {c.get('reason', c.get('error', ''))}")
            )
        lines += ["| measurement | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows], ""]
    vae = results.get("vae", {})
    lines.append(
        "**Wan2.2 VAE** (AutoencoderKLWan, Wan2.2-TI2V-5B architecture"
        + (", narrowed for --quick" if quick else "")
        + ", bf16, random weights)"
    )
    lines.append("")
    if (s := _status_line("vae", vae)) is not None:
        lines += [s, ""]
    if "encode_s" in vae:
        lines += ["| frames | size | encode | decode | encode + decode | frames/s (enc / dec) | peak memory |",
                  "|---:|---:|---:|---:|---:|---:|---:|",
                  f"| {vae['frames']} | {vae['size']}² | {_f(vae['encode_s'], 2, ' s')} | {_f(vae['decode_s'], 2, ' s')} "
                  f"| {_f(vae['encode_decode_s'], 2, ' s')} | {_f(vae['frames_per_s_encode'], 0)} / "
                  f"{_f(vae['frames_per_s_decode'], 0)} | {_f(vae.get('peak_allocated_gib'), 1, ' GiB')} |", ""]  # fmt: skip
    tr = results.get("training", {})
    lines.append(f"**Training step** ({tr.get('recipe', {}).get('model', '?')}, batch 1, {plan.get('views', '?')} views "
                 f"x 2 modalities x {plan.get('frames', '?')} frames, paper preset: bf16 autocast, "
                 "float32 master weights, gradient checkpointing, AdamW; latents given, VAE encode excluded; "
                 "MFU = 3 x forward FLOPs / time / peak, HFU counts the recompute: 4 x)")  # fmt: skip
    lines.append("")
    if (s := _status_line("training", tr)) is not None:
        lines += [s, ""]
    if tr.get("sizes"):
        lines += [
            "| size | tokens | what | step | tokens/s | MFU | HFU | peak memory |",
            "|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in tr["sizes"].values():
            for what, d in (
                (r.get("optimizer", "?"), r),
                ("forward + backward alone", r.get("fwd_bwd", {})),
            ):
                if "step_s" in d:
                    lines.append(f"| {r['size']}² | {_f(r['tokens'], 0)} | {what} | {_f(d['step_s'], 3, ' s')} | "
                                 f"{_f(d['tokens_per_s'], 0)} | {_f(d.get('mfu'), 3)} | {_f(d.get('hfu_with_recompute'), 3)} | "
                                 f"{_f(d.get('peak_allocated_gib'), 1, ' GiB')} |")  # fmt: skip
                elif what != "forward + backward alone" or d:
                    lines.append(
                        f"| {r['size']}² | {_f(r['tokens'], 0)} | {what} | - | - | - | - | - |"
                    )
        chk = next((r["flop_check"] for r in tr["sizes"].values() if "flop_check" in r), {})
        if chk.get("status") == "ok":
            lines.append("")
            lines.append(
                f"Analytic FLOP count / torch.utils.flop_counter: {_f(chk['analytic_over_counted'], 4)}."
            )
        lines.append("")
    ar = results.get("autoregressive", {})
    if ar.get("status") == "ok":
        lines.append(f"**Autoregressive mode** (block-causal, {ar['tokens_per_chunk']} tokens per chunk, "
                     f"{ar['dtype']}): per-chunk model call, KV cache against recomputation")  # fmt: skip
        lines += [
            "",
            "| chunks executed | cached (s) | recomputed (s) | speed-up |",
            "|---:|---:|---:|---:|",
        ]
        for c, r in ar["per_chunk"].items():
            lines.append(
                f"| {c} | {_f(r['cached_s'], 4)} | {_f(r['recomputed_s'], 4)} | {_f(r['speedup'], 2)}x |"
            )
        lines.append("")
    else:
        lines += [
            f"**Autoregressive mode:** {ar.get('status', '?')}: {ar.get('reason', ar.get('error', ''))}",
            "",
        ]
    acc = results.get("accelerate", {})
    lines.append("**accelerate configs** (`accelerate launch --config_file ... --num_processes 1 -m actionimages.cli.main "
                 "train --preset debug`, 4 steps, checkpoint every 2; the step-2 checkpoint resumed to step 4 and "
                 "compared with the uninterrupted run)")  # fmt: skip
    lines.append("")
    if (s := _status_line("accelerate", acc)) is not None:
        lines += [s, ""]
    checks = dict(acc.get("configs", {}))
    if "plain_resume_check" in acc:
        checks["plain (no accelerate)"] = acc["plain_resume_check"]
    if checks:
        lines += ["| config | ran | resumed exactly | max weight diff | final loss (uninterrupted / resumed) | error |",
                  "|---|---|---|---:|---|---|"]  # fmt: skip
        for name, r in checks.items():
            err = (
                (r.get("reason") or r.get("error") or "").replace("\n", " ").replace("|", "/")[:300]
            )
            lines.append(f"| {name} | {r.get('status')} | {_f(r.get('resumed_exactly'))} | "
                         f"{format(r['weights_max_abs_diff'], '.1e') if 'weights_max_abs_diff' in r else '-'} | "
                         f"{_f(r.get('final_loss_uninterrupted'), 4)} / {_f(r.get('final_loss_resumed'), 4)} | {err} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"


def append_markdown(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(old.rstrip("\n") + "\n\n" + text)
    os.replace(tmp, path)


# --- driver -----------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="debug preset, tiny shapes (the CPU dry run)"
    )
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"JSON file (default {DEFAULT_OUT.relative_to(REPO)}; under --quick {DEFAULT_QUICK_OUT.relative_to(REPO)})")  # fmt: skip
    ap.add_argument("--bench-md", type=Path, default=None,
                    help="markdown file to append to (default BENCHMARKS.md; under --quick only when given)")  # fmt: skip
    ap.add_argument("--no-bench-md", action="store_true", help="append to no markdown file")
    ap.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds for all sections (default 440; --quick 150)",
    )
    ap.add_argument("--sections", default=",".join(RUN_ORDER), help="comma-separated subset to run")
    ap.add_argument(
        "--model", default=None, help="model preset (default wan2.2-ti2v-5b; --quick: debug)"
    )
    ap.add_argument(
        "--attention-backend",
        default=None,
        help="diffusers attention backend (default: its active one)",
    )
    ap.add_argument(
        "--compile", choices=("auto", "on", "off"), default="auto", help="auto: on for CUDA only"
    )
    ap.add_argument("--compile-mode", choices=("regional", "full"), default="regional",
                    help="regional: diffusers compile_repeated_blocks; full: WorldActionPipeline.compile")  # fmt: skip
    ap.add_argument(
        "--cache-threshold", type=float, default=0.99, help="velocity-cache cosine threshold"
    )
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="dense bf16 peak for MFU (overrides the table)",
    )
    ap.add_argument(
        "--launch-on-cpu", action="store_true", help="run the accelerate launches on CPU too"
    )
    ap.add_argument(
        "--no-install", action="store_true", help="do not pip-install DeepSpeed when missing"
    )
    ap.add_argument(
        "--wheelhouse", default=None, help="folder of wheels to install DeepSpeed from (offline)"
    )
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a new temporary one)")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 1 under --quick)"
    )
    ap.add_argument(
        "--report-only", action="store_true", help="append the markdown of an existing --out JSON"
    )
    args = ap.parse_args(argv)
    args.out = args.out or (DEFAULT_QUICK_OUT if args.quick else DEFAULT_OUT)
    if args.time_limit is None:
        args.time_limit = 150.0 if args.quick else 440.0
    return args


def bench_md_path(args: argparse.Namespace) -> Path | None:
    """Where the markdown goes: BENCHMARKS.md for a real run, under --quick only an explicit file."""
    if args.no_bench_md:
        return None
    if args.bench_md is not None:
        return args.bench_md
    return None if args.quick else REPO / "BENCHMARKS.md"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        results = json.loads(args.out.read_text())
        if (md := bench_md_path(args)) is not None:
            append_markdown(md, render_markdown(results))
            print(f"appended to {md}")
        return 0
    src_added = False
    try:
        import actionimages  # noqa: F401
    except ImportError:  # run from a checkout without `pip install -e .`
        sys.path.insert(0, str(REPO / "src"))
        src_added = True
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: use --device cpu (with --quick for the dry run)", file=sys.stderr)
        return 2
    if device.type == "cpu" and not args.quick:
        print(
            "warning: the full-size run on a CPU will not finish in its time limit", file=sys.stderr
        )
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    plan = (
        Plan.quick(args.model or "debug")
        if args.quick
        else Plan.paper(args.model or "wan2.2-ti2v-5b")
    )
    ctx = Context(args, plan, device)
    ctx.src_on_path = src_added
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(wanted) - set(RUN_ORDER)
    if unknown:
        print(f"unknown sections {sorted(unknown)}; choose from {RUN_ORDER}", file=sys.stderr)
        return 2
    results = ctx.results
    if set(wanted) != set(RUN_ORDER) and args.out.exists():  # a partial rerun keeps the rest
        with contextlib.suppress(ValueError):
            results.update(json.loads(args.out.read_text()))
    results["meta"] = {
        "script": "benchmarks/gpu.py", "argv": sys.argv[1:] if argv is None else list(argv),
        "quick": args.quick, "device": str(device), "plan": dataclasses.asdict(plan),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "time_limit_s": args.time_limit, "out": str(args.out), "complete": False,
    }  # fmt: skip
    for name in SECTIONS:
        if name in wanted or name not in results:
            results[name] = {"status": "pending"}
    if "environment" not in wanted:
        wanted.insert(0, "environment")  # MFU needs the device's peak
    write_json(args.out, results)
    order = [s for s in RUN_ORDER if s in wanted]
    for i, name in enumerate(order):
        shares = sum(SHARES[s] for s in order[i:]) or 1.0
        left = ctx.deadline - time.monotonic() - 3
        budget = left * SHARES[name] / shares if SHARES[name] else 30.0
        res: dict = {"status": "running", "budget_s": budget}
        results[name] = res
        if left < 5:
            res.update(
                status="skipped", reason="the overall time limit was reached before this section"
            )
            write_json(args.out, results)
            continue
        ctx.section_end = time.monotonic() + budget
        t0 = time.perf_counter()
        print(f"[gpu bench] {name}: budget {budget:.0f} s", flush=True)
        try:
            hard = min(budget + max(5.0, 0.05 * budget), ctx.deadline - time.monotonic() + 5)
            with alarm(hard):
                SECTION_FUNCS[name](ctx, res)
            if res["status"] == "running":
                res["status"] = "ok"
        except SectionTimeout as err:
            res.update(status="error", error=str(err))
        except KeyboardInterrupt:
            res.update(status="error", error="interrupted")
            write_json(args.out, results)
            raise
        except Exception as err:
            res.update(
                status="error", error=first_line(err), traceback=tail(traceback.format_exc())
            )
        res["time_s"] = time.perf_counter() - t0
        if name == "inference" or (name == "vae" and "inference" not in order[i + 1 :]):
            ctx.codec = None
        free(device)
        print(f"[gpu bench] {name}: {res['status']} in {res['time_s']:.1f} s"
              + (f" ({res.get('error') or res.get('reason')})" if res["status"] != "ok" else ""), flush=True)  # fmt: skip
        write_json(args.out, results)
    results["meta"]["total_s"] = time.monotonic() - ctx.t0
    results["meta"]["complete"] = True
    write_json(args.out, results)
    md = bench_md_path(args)
    if md is not None:
        append_markdown(md, render_markdown(results))
    if args.workdir is None:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    print(f"[gpu bench] done in {results['meta']['total_s']:.0f} s: {args.out}"
          + (f", appended to {md}" if md else ""), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
