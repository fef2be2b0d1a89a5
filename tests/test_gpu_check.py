"""benchmarks/gpu_check.py: one line and exit 0 without a GPU; its measurements run (tiny, on the CPU)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture
def gpu(benchmark_script):
    return benchmark_script("gpu_check")


@pytest.mark.slow  # a subprocess that imports torch
def test_without_a_gpu_it_says_so_in_one_line_and_exits_0():
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-1000:]
    assert result.stdout.strip().count("\n") == 0 and "no CUDA GPU" in result.stdout
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before


def test_make_gpu_check_runs_the_script():
    makefile = (ROOT / "Makefile").read_text()
    assert "gpu-check:" in makefile and "benchmarks/gpu_check.py" in makefile


def test_report_replaces_its_own_section_only(gpu, tmp_path):
    results = {"device": "Fake GPU", "torch": "2.x", "date": "2026-01-01", "seconds": 100.0,
               "slic": {"batch": 64, "size": 224, "level0_ms": 12.5, "pyramid_ms": 20.0},
               "training": [{"precision": p, "batch": 8, "size": 224, "steps": 10, "median_step_ms": 20.0,
                             "images_per_s": 400.0} for p in ("fp32", "bf16")],
               "agreement": {"blocks": {l: {"max_abs": 1e-7, "row_l1": 1e-7, "argmax_agree": 1.0} for l in range(3)},
                             "model": {l: {"max_abs": 0.3, "row_l1": 0.1, "argmax_agree": 0.97} for l in range(3)}},
               "ddp": {"gpus": 1, "ok": True, "seconds": 30.0, "detail": ""}}
    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\nkept\n")
    gpu.write_section(gpu.report(results), path)
    first = path.read_text()
    assert "kept" in first and "12.5 ms | < 20 ms: met" in first and "400.0 images/s" in first
    results["slic"]["level0_ms"] = 25.0
    gpu.write_section(gpu.report(results), path)
    second = path.read_text()
    assert second.count(gpu.START) == 1 and "25.0 ms | < 20 ms: not met" in second and "kept" in second


def test_attention_agreement_on_the_cpu_keeps_the_blocks_within_1e_3(gpu):
    """The measurement code on a small model: the blocks' fp32 island holds under CPU bf16 autocast."""
    from sa_lib.model.colorizer import ColorizerConfig

    result = gpu.measure_agreement(torch.device("cpu"), batch=1, size=64, config=ColorizerConfig(variant="super"))
    for level in range(3):
        assert result["blocks"][level]["max_abs"] <= 1e-3
        assert 0.0 <= result["model"][level]["argmax_agree"] <= 1.0


@pytest.mark.parametrize("precision", ["bf16"])
def test_training_throughput_measurement_runs_on_the_cpu(gpu, precision):
    from sa_lib.model.colorizer import ColorizerConfig

    run = gpu.measure_training(torch.device("cpu"), precision, batch=2, size=48, steps=1,
                               config=ColorizerConfig(variant="super"), loss=torch.nn.L1Loss())
    assert run["images_per_s"] > 0 and run["precision"] == precision
