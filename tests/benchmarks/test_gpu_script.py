"""benchmarks/gpu.py: its CPU dry run (--quick --device cpu) keeps the GPU run from rotting.

The dry run goes through the same code as the GPU run (the debug model, a narrow Wan2.2 VAE,
tiny shapes): every section must end "ok" or give its reason for being skipped, and every
number it writes must be finite.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.py"
SECTIONS = ("environment", "inference", "vae", "training", "autoregressive", "accelerate")


def load_script():
    """The script as a module (registered first: its dataclasses look themselves up there)."""
    if "benchmarks_gpu" in sys.modules:
        return sys.modules["benchmarks_gpu"]
    spec = importlib.util.spec_from_file_location("benchmarks_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks_gpu"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_bench")
    out, md = tmp / "gpu.json", tmp / "bench.md"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--threads", "1",
           "--out", str(out), "--bench-md", str(md), "--workdir", str(tmp / "work")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(out.read_text()), md.read_text()


def leaves(obj, path=""):
    """(path, value) of every scalar in a JSON tree."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def skip_reason(sec: dict) -> str:
    return sec.get("reason", "")


@pytest.mark.slow
def test_every_section_is_ok_or_says_why_not(dry_run):
    results, _ = dry_run
    assert results["meta"]["complete"] is True
    for name in SECTIONS:
        sec = results[name]
        assert sec["status"] in ("ok", "skipped"), (name, sec.get("error"), sec.get("traceback"))
        if sec["status"] == "skipped":
            assert skip_reason(sec), name
    ar = results["autoregressive"]
    assert ar["status"] == "ok" and ar["per_chunk"]["0"]["cached_s"] > 0
    # The sub-measurements too: each one ran or says why not.
    for name in SECTIONS:
        for path, value in leaves(results[name]):
            if path.endswith(".status") and value != "ok":
                assert value == "skipped", (name, path, value)
                parent = results[name]
                for key in path.strip(".").split(".")[:-1]:
                    parent = parent[key]
                assert parent.get("reason"), (name, path)


@pytest.mark.slow
def test_numbers_are_finite(dry_run):
    results, _ = dry_run
    for name in SECTIONS:
        for path, value in leaves(results[name]):
            assert value not in ("nan", "inf", "-inf"), (name, path)
            if isinstance(value, float):
                assert math.isfinite(value), (name, path)


@pytest.mark.slow
def test_sections_hold_their_measurements(dry_run):
    results, _ = dry_run
    inf = results["inference"]
    assert inf["step_batched_cfg_s"] > 0 and inf["step_two_calls_s"] > 0
    assert inf["denoise_50_extrapolated_s"] == pytest.approx(50 * inf["step_batched_cfg_s"])
    assert inf["paper_table7_s"] == 49.1
    unc, cac = inf["pipeline_uncached"], inf["pipeline_cached"]
    assert unc["model_calls"] == 50 and unc["wall_s"] > 0
    assert 1 <= cac["model_calls"] <= 50 and cac["steps_saved"] == 50 - cac["model_calls"]
    assert "video_psnr_db_vs_uncached" in cac or cac.get("video_identical_to_uncached")
    assert inf["compile"]["status"] == "skipped"  # not on CPU unless --compile on
    vae = results["vae"]
    assert vae["frames"] == 4 * 9 and vae["encode_s"] > 0 and vae["decode_s"] > 0
    sizes = results["training"]["sizes"]
    assert set(sizes) == {"64", "128"}
    for r in sizes.values():
        assert r["step_s"] > 0 and r["tokens_per_s"] > 0 and r["fwd_bwd"]["step_s"] > 0
        assert "mfu" in r["unavailable"]  # no bf16 peak for a CPU: said, not invented
    # The documented FLOP formula is exactly what torch's counter sees on the model.
    assert sizes["64"]["flop_check"]["analytic_over_counted"] == pytest.approx(1.0, abs=1e-6)
    acc = results["accelerate"]
    assert set(acc["configs"]) == {"fsdp", "deepspeed_zero2", "deepspeed_zero3"}
    assert all(c["status"] == "skipped" and c["reason"] for c in acc["configs"].values())
    plain = acc["plain_resume_check"]
    assert plain["status"] == "ok" and plain["resumed_exactly"] is True


@pytest.mark.slow
def test_markdown_names_device_versions_and_attention(dry_run):
    results, md = dry_run
    env = results["environment"]
    for text in (env["torch"], env["diffusers"], "CUDA", "attention", "native", "Autoregressive"):
        assert text in md


def test_quick_writes_benchmarks_md_only_when_asked():
    gpu = load_script()
    assert gpu.bench_md_path(gpu.parse_args(["--quick"])) is None
    assert gpu.bench_md_path(gpu.parse_args(["--quick", "--bench-md", "x.md"])) == Path("x.md")
    assert gpu.bench_md_path(gpu.parse_args([])) == ROOT / "BENCHMARKS.md"
    assert gpu.bench_md_path(gpu.parse_args(["--no-bench-md"])) is None
    assert gpu.parse_args(["--quick"]).out != gpu.parse_args([]).out  # a dry run keeps GPU results


def test_peak_table_and_flop_formula():
    gpu = load_script()
    assert gpu.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu.peak_bf16_tflops("NVIDIA H200") == 989.0
    assert gpu.peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu.peak_bf16_tflops("Some Future GPU") is None
    from actionimages.model.config import ModelConfig

    mc = ModelConfig.preset("wan2.2-ti2v-5b")
    F, h, L = gpu.tokens_of(mc, 2, 41, 512, mc.spatial_factor)
    assert (F, h, L) == (11, 32, 44 * 16 * 16)  # Table 7: 11,264 tokens
    fl = gpu.forward_flops(mc, L, mc.text_length)
    assert fl["total"] == sum(v for k, v in fl.items() if k != "total")
    # About 2 x 5e9 parameters x L for the projections, plus 30 x 4 L^2 d for attention.
    assert 1.4e14 < fl["total"] < 1.7e14


def test_json_is_written_atomically_and_stays_valid(tmp_path):
    gpu = load_script()
    out = tmp_path / "r" / "gpu.json"
    gpu.write_json(out, {"a": float("nan"), "b": [1.0, float("inf")], "c": Path("x")})
    assert json.loads(out.read_text()) == {"a": "nan", "b": [1.0, "inf"], "c": "x"}
    assert [p.name for p in out.parent.iterdir()] == ["gpu.json"]  # no temporary file left
