import csv

import numpy as np
import pytest

from cli_run import run_main
from sa_lib.cli.compare import main
from sa_lib.core.errors import UsageError
from sa_lib.eval.paired_difference import paired_differences

FIELDS = ["target", "reference", "ssim", "lpips", "psnr_ab", "ciede2000", "colorfulness"]


def write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def rows(psnr, ciede, names=None):
    names = names or [f"t{i}.jpg" for i in range(len(psnr))]
    return [{"target": n, "reference": "r.jpg", "ssim": 0.9, "lpips": "", "psnr_ab": p, "ciede2000": c,
             "colorfulness": 30.0} for n, p, c in zip(names, psnr, ciede)]


def test_the_mean_difference_and_its_interval(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(18, 2, 40)
    a = write(tmp_path / "a.csv", rows(base + 1.0 + rng.normal(0, 0.1, 40), base))
    b = write(tmp_path / "b.csv", rows(base, base))
    result = {r.metric: r for r in paired_differences(a, b)}
    assert set(result) == {"psnr_ab", "ciede2000", "ssim", "colorfulness"}  # lpips is empty: left out
    psnr = result["psnr_ab"]
    assert psnr.pairs == 40 and psnr.low < psnr.mean < psnr.high and psnr.low > 0.9 and psnr.high < 1.1
    assert result["ciede2000"].mean == result["ciede2000"].low == result["ciede2000"].high == 0.0


def test_only_the_pairs_both_score_are_compared(tmp_path):
    a = write(tmp_path / "a.csv", rows([20, 30, 99], [1, 1, 1], ["x.jpg", "y.jpg", "only-a.jpg"]))
    b = write(tmp_path / "b.csv", rows([10, 20], [1, 1], ["y.jpg", "x.jpg"]))
    psnr = next(r for r in paired_differences(a, b) if r.metric == "psnr_ab")
    assert psnr.pairs == 2 and psnr.mean == pytest.approx(10.0)  # matched by (target, reference), not by row


def test_no_shared_pair_or_not_a_per_pair_csv_is_a_usage_error(tmp_path):
    a = write(tmp_path / "a.csv", rows([20], [1], ["x.jpg"]))
    b = write(tmp_path / "b.csv", rows([20], [1], ["y.jpg"]))
    with pytest.raises(UsageError, match="share no pair"):
        paired_differences(a, b)
    (tmp_path / "c.csv").write_text("name,value\nfoo,1\n")
    with pytest.raises(UsageError, match="not a per-pair CSV"):
        paired_differences(a, tmp_path / "c.csv")


def test_cli_prints_one_line_per_metric_and_one_line_errors(tmp_path, capsys):
    a = write(tmp_path / "a.csv", rows([20, 21, 22], [5, 6, 7]))
    b = write(tmp_path / "b.csv", rows([19, 21, 20], [6, 6, 6]))
    code, out, _ = run_main(main, [a, b, "--draws", 200], capsys)
    assert code == 0 and "a - b, 3 pairs" in out and out.count("\n") == 5  # a header and four metrics
    assert "psnr_ab        +1.000" in out
    code, _, err = run_main(main, [a, tmp_path / "missing.csv"], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "per-pair scores not found" in err
    code, _, err = run_main(main, [a, b, "--draws", 0], capsys)
    assert code == 2
