"""The evaluator: pair files, colorizers and output folders scored the same way, the tables, the CLI."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image

from sa_lib import evaluate
from sa_lib.evaluate import (GTREF, TOP1, EvaluationError, Table, evaluate_colorizer, evaluate_folder, find_outputs,
                             folder_report, load_pair_images, measured_cells, read_pairs)

SIZE = 32


def _photo(seed: int, h: int = 40, w: int = 48) -> np.ndarray:
    """A smooth colourful uint8 photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / 40.0
    base = np.stack([np.sin(3 * x + seed), np.cos(2 * y + seed), np.sin(x + y)], -1) * 0.35 + 0.5
    return (np.clip(base + 0.02 * rng.standard_normal((h, w, 3)), 0, 1) * 255).astype(np.uint8)


@pytest.fixture()
def pairs_setup(tmp_path):
    """Three pairs (one with a reference box) on tiny photos, and their images at the evaluation size."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.fromarray(_photo(i)).save(images / f"p{i}.png")
    pairs_csv = tmp_path / "pairs.csv"
    pairs_csv.write_text("target,reference,ref_x,ref_y,ref_w,ref_h,distance\n"
                         "p0.png,p3.png,,,,,1.0\np1.png,p3.png,4,2,30,20,1.1\np2.png,p0.png,,,,,1.2\n")
    pairs = read_pairs(pairs_csv, images, images)
    return tmp_path, pairs, [load_pair_images(p, SIZE) for p in pairs]


def gray(target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """A colorizer that adds no colour."""
    rgb = np.repeat((target_l / 100.0)[..., None], 3, axis=2)
    return rgb.astype(np.float32)


def test_read_pairs_and_load_images(pairs_setup):
    _, pairs, data = pairs_setup
    assert [p.key for p in pairs] == ["p0", "p1", "p2"]
    assert pairs[0].box is None and pairs[1].box == (4, 2, 30, 20)
    item = data[1]
    assert item.truth.shape == (SIZE, SIZE, 3) and item.reference.shape == (SIZE, SIZE, 3)
    assert item.target_l.shape == (SIZE, SIZE) and 0.0 <= item.target_l.min() <= item.target_l.max() <= 100.0


def test_read_pairs_reports_a_missing_image(tmp_path):
    (tmp_path / "pairs.csv").write_text("target,reference\nnowhere.png,p0.png\n")
    with pytest.raises(EvaluationError, match="nowhere.png"):
        read_pairs(tmp_path / "pairs.csv", tmp_path, tmp_path)


def test_colorizer_sees_only_luminance_and_the_reference(pairs_setup):
    _, _, data = pairs_setup
    seen = []

    def spy(target_l, reference):
        seen.append((target_l.ndim, reference.shape))
        return gray(target_l, reference)

    result = evaluate_colorizer("gray", spy, data, None, TOP1)
    assert seen == [(2, (SIZE, SIZE, 3))] * 3
    summary = result.summary()
    assert summary["pairs"] == 3 and summary["colorfulness"] < 1.0
    assert math.isnan(summary["lpips"])


def test_ground_truth_outputs_score_perfectly(pairs_setup):
    """A folder holding the ground truths: SSIM 1, CIEDE2000 0, PSNR(ab) inf, dHIS 0 -- known answers."""
    tmp_path, _, data = pairs_setup
    folder = tmp_path / "truth"
    folder.mkdir()
    for item in data:
        Image.fromarray((item.truth * 255 + 0.5).astype(np.uint8)).save(folder / f"{item.pair.key}.png")
    summary = evaluate_folder("truth", folder, data).summary()
    assert summary["ssim"] == pytest.approx(1.0)
    assert summary["ciede2000"] == pytest.approx(0.0, abs=1e-9)
    assert summary["psnr_ab"] == math.inf
    assert summary["delta_his"] == pytest.approx(0.0, abs=1e-12)
    assert summary["his_ref"] == pytest.approx(np.mean([r["his_gt_ref"] for r in evaluate_folder(
        "truth", folder, data).rows]))


def test_ground_truth_as_reference_gives_his_ref_one(pairs_setup):
    _, _, data = pairs_setup
    result = evaluate_colorizer("gray", gray, data, None, GTREF)
    assert result.summary()["his_ref"] == pytest.approx(1.0)
    assert [r["reference"] for r in result.rows] == [r["target"] for r in result.rows]


def test_folder_with_a_missing_and_an_extra_file_is_reported(pairs_setup):
    tmp_path, pairs, data = pairs_setup
    folder = tmp_path / "method"
    folder.mkdir()
    for item in data[:2]:  # no output for p2
        Image.fromarray((item.truth * 255).astype(np.uint8)).resize((50, 40)).save(folder / f"{item.pair.key}.jpg")
    Image.fromarray(_photo(9)).save(folder / "stray.png")
    (folder / "notes.txt").write_text("not an image, not counted")
    found, missing, extra = find_outputs(folder, pairs)
    assert sorted(found) == ["p0", "p1"] and missing == ["p2"] and extra == ["stray.png"]
    result = evaluate_folder("method", folder, data)
    assert result.summary()["pairs"] == 2 and result.missing == ["p2"] and result.extra == ["stray.png"]
    lines = folder_report(result, folder)
    assert len(lines) == 2 and "1 of 3" in lines[0] and "p2" in lines[0] and "stray.png" in lines[1]
    assert measured_cells(result, None)["pairs"] == "2/3"


def test_ambiguous_outputs_are_refused(pairs_setup):
    tmp_path, pairs, _ = pairs_setup
    folder = tmp_path / "twice"
    folder.mkdir()
    for suffix in (".png", ".jpg"):
        Image.fromarray(_photo(0)).save(folder / f"p0{suffix}")
    with pytest.raises(EvaluationError, match="several files"):
        find_outputs(folder, pairs)


def test_table_keeps_published_numbers_in_their_own_columns(pairs_setup):
    _, _, data = pairs_setup
    result = evaluate_colorizer("gray", gray, data, None, TOP1)
    row = {"method": "gray", "reference": TOP1, **measured_cells(result, None), **evaluate.published_cells("super")}
    table = Table("T", ["intro"], [row, {"method": "XCNET", "reference": TOP1, **measured_cells(None, None),
                                         **evaluate.published_cells("xcnet")}], ["- note"])
    md = table.markdown()
    assert "published (paper, COCO) SSIM ↑" in md and "unavailable offline" in md and "not run" in md
    rows = list(csv.DictReader(table.csv().splitlines()))
    assert rows[0]["published_paper_coco_ssim"] == "0.925" and rows[0]["lpips"] == "unavailable offline"
    assert rows[1]["ssim"] == "not run" and rows[1]["published_paper_coco_delta_his"] == "0.139"
    assert float(rows[0]["ssim"]) > 0.5


def test_smoke_profile_writes_both_tables(tmp_path):
    """End to end on the committed demo pairs (smoke: 4 pairs, 96 px), with a partial outputs folder."""
    folder = tmp_path / "de"
    folder.mkdir()
    setup_pairs = read_pairs(*evaluate.default_pairs(evaluate.PROFILES["smoke"]), limit=4)
    for pair in setup_pairs[:3]:
        Image.open(pair.target_path).convert("L").convert("RGB").save(folder / f"{pair.key}.png")
    logs = []
    written = evaluate.run("smoke", tmp_path / "out", folders={"deep_exemplar": folder}, device="cpu",
                           per_pair_dir=tmp_path / "per_pair", log=logs.append)
    assert sorted(p.name for p in written) == ["table1_ablation.csv", "table1_ablation.md",
                                               "table2_comparison.csv", "table2_comparison.md"]
    t1 = list(csv.DictReader((tmp_path / "out" / "table1_ablation.csv").read_text().splitlines()))
    assert [r["reference"] for r in t1] == [TOP1] * 3 + [GTREF] * 3
    assert all(0.0 < float(r["ssim"]) <= 1.0 for r in t1)
    assert t1[2]["published_paper_coco_ssim"] == "0.925" and t1[5]["published_paper_coco_ssim"] == ""
    t2_rows = csv.DictReader((tmp_path / "out" / "table2_comparison.csv").read_text().splitlines())
    t2 = {r["method"].split(" (")[0]: r for r in t2_rows}
    assert t2["XCNET [29]"]["ssim"] == "not run" and t2["Deep Exemplar [13]"]["pairs"] == "3/4"
    assert float(t2["Welsh et al. 2002 [10]"]["ssim"]) > 0
    assert any("1 of 4 pair outputs missing" in line for line in logs)
    assert (tmp_path / "per_pair" / "super_gtref.csv").is_file()


def _main_exit(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        evaluate.main(argv)
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--method", "no-folder-given"], ["--method", "x=/nonexistent/folder"],
                                  ["--pairs", "/nonexistent/pairs.csv"], ["--device", "tpu"]])
def test_cli_usage_errors_exit_2_with_one_line(argv, capsys):
    code, err = _main_exit(["--profile", "smoke", *argv], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sa-evaluate: error:")


def test_cli_paper_profile_without_coco_names_what_to_download(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path))
    code, err = _main_exit(["--profile", "paper"], capsys)
    assert code == 1 and err.count("\n") == 1 and "make data-coco" in err
