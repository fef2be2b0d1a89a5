"""sa_lib.eval.complexity: the predictions, the slopes, the results files, one real measured point, the CLI."""

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from sa_lib.eval import complexity

ROOT = Path(__file__).resolve().parent.parent


def fake(part, method, sizes, exponent, status="ok"):
    """Rows whose time and memory grow as pixels ** exponent."""
    return [{"part": part, "method": method, "size": s, "pixels": s * s, "status": status,
             "predicted_entries": complexity.predicted_entries(part, method, s),
             "predicted_bytes": complexity.predicted_bytes(part, method, s),
             "time_s": 1e-6 * (s * s) ** exponent, "peak_delta_bytes": int(10 * (s * s) ** exponent),
             "attention_entries": complexity.predicted_entries(part, method, s), "device": "cpu", "threads": 2}
            for s in sizes]


def test_standard_attention_is_predicted_quadratic_and_super_attention_linear():
    for size in (56, 224, 896):
        hw = size * size
        assert complexity.predicted_entries("block", "standard", size) == hw ** 2
        assert complexity.predicted_entries("block", "super", size) == complexity.n_segments(size, size) ** 2
        assert abs(complexity.predicted_entries("block", "super", size) - hw) <= 2 * size
    # the model's dense block is at stride 8
    assert complexity.predicted_entries("model", "standard", 224) == (28 * 28) ** 2


def test_scaling_exponents_read_the_growth():
    results = fake("block", "super", (56, 112, 224), 1.0) + fake("block", "standard", (56, 112), 2.0)
    results += fake("block", "standard", (224,), 2.0, status="skipped: would need 30 GB")
    slopes = complexity.scaling_exponents(results)
    assert slopes[("block", "super")] == pytest.approx(1.0)
    assert slopes[("block", "standard")] == pytest.approx(2.0)  # the skipped point is left out
    assert ("model", "super") not in slopes  # no points
    assert complexity.scaling_exponents(results, "memory")[("block", "standard")] == pytest.approx(2.0, abs=1e-3)
    with pytest.raises(ValueError):
        complexity.scaling_exponents(results, "energy")


def test_results_round_trip_and_plot(tmp_path):
    results = fake("block", "super", (56, 112), 1.0) + fake("block", "standard", (56, 112), 2.0)
    header = complexity.make_header(results, "test", datetime.now(timezone.utc), 0.1, 1, 8.0)
    md, js = complexity.write_results(header, results, tmp_path)
    assert "| block | standard | 112x112 |" in md.read_text()
    assert complexity.load_results(js) == (json.loads(json.dumps(header)), results)
    png = complexity.plot(results, tmp_path / "figure" / "complexity.png")
    assert Image.open(png).size[0] > 800


def test_committed_results_load_and_show_linear_vs_quadratic():
    header, results = complexity.load_results()
    assert header["date"] and header["machine"]
    slopes = complexity.scaling_exponents(results)
    assert slopes[("block", "super")] < 1.3 < 1.7 < slopes[("block", "standard")]


def test_missing_or_foreign_results_file_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmarks/complexity.py"):
        complexity.load_results(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a complexity results file"):
        complexity.load_results(tmp_path / "x.json")


@pytest.mark.slow
def test_one_point_runs_in_a_child_and_big_points_are_skipped():
    results = complexity.measure({"block": [16]}, repeats=1, max_gb=0.05, log=None)
    by_method = {r["method"]: r for r in results}
    assert by_method["super"]["status"] == "ok", by_method["super"]["status"]
    assert by_method["super"]["attention_entries"] > 0 and by_method["super"]["time_s"] > 0
    # pytest has imported torch: its peak RSS, which ru_maxrss would carry into the child, must not count
    assert by_method["super"]["peak_delta_bytes"] < 20e6
    assert by_method["standard"]["status"] == "ok"  # 256^2 entries: well under 50 MB
    skipped = complexity.measure({"block": [512]}, repeats=1, max_gb=0.05, log=None)
    assert [r["status"].split(":")[0] for r in skipped] == ["skipped", "skipped"]


@pytest.mark.slow
def test_benchmark_script_is_a_thin_cli_over_the_library():
    proc = subprocess.run([sys.executable, "benchmarks/complexity.py", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and "--max-gb" in proc.stdout
