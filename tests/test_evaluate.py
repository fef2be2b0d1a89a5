"""The evaluator: pair files, colorizers and output folders scored the same way, the tables, the CLI."""

from __future__ import annotations

import csv
import math
import shutil
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from sa_lib.eval import baselines
from sa_lib.cli import evaluate as evaluate_cli
from sa_lib.eval import evaluate
from sa_lib.profiles import PROFILES
from sa_lib.eval import metrics
from sa_lib.figures.comparison import gray_rgb
from sa_lib.data.pairs import PairsError
from sa_lib.data.pairs import read_pairs
from sa_lib.eval import pair_images
from sa_lib.eval.pair_images import GTREF, TOP1, load_pair_images
from sa_lib.eval.scoring import EvaluationError, evaluate_colorizer, evaluate_folder, find_outputs, folder_report
from sa_lib.eval.table import Table, measured_cells

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


def _resized(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC), dtype=np.float32) / 255.0


def test_read_pairs_and_load_images(pairs_setup):
    tmp_path, pairs, data = pairs_setup
    assert [p.key for p in pairs] == ["p0", "p1", "p2"]
    assert pairs[0].box is None and pairs[1].box == (4, 2, 30, 20)
    item = data[1]
    assert item.truth.shape == (SIZE, SIZE, 3) and item.reference.shape == (SIZE, SIZE, 3)
    assert item.target_l.shape == (SIZE, SIZE) and 0.0 <= item.target_l.min() <= item.target_l.max() <= 100.0
    # The reference is the box (x 4, y 2, 30 x 20) of p3, resized; not the whole photo.
    with Image.open(tmp_path / "images" / "p3.png") as photo:
        np.testing.assert_array_equal(item.reference, _resized(photo.crop((4, 2, 34, 22))))
        assert np.abs(item.reference - _resized(photo)).max() > 0.05


def test_reference_box_is_clipped_to_the_image(tmp_path):
    """A box reaching past the photo (48 x 40) is clipped, as sa_lib.data.pairs.crop_reference does for training and ranking too: no black border."""
    Image.fromarray(_photo(0)).save(tmp_path / "t.png")
    Image.fromarray(_photo(3)).save(tmp_path / "r.png")
    (tmp_path / "pairs.csv").write_text("target,reference,ref_x,ref_y,ref_w,ref_h\nt.png,r.png,30,20,40,40\n")
    item = load_pair_images(read_pairs(tmp_path / "pairs.csv", tmp_path, tmp_path)[0], SIZE)
    with Image.open(tmp_path / "r.png") as photo:
        np.testing.assert_array_equal(item.reference, _resized(photo.crop((30, 20, 48, 40))))


def test_read_pairs_reports_a_missing_image(tmp_path):
    (tmp_path / "pairs.csv").write_text("target,reference\nnowhere.png,p0.png\n")
    with pytest.raises(PairsError, match="nowhere.png"):
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
    assert summary["his_ref"] == pytest.approx(np.mean([metrics.his(d.truth, d.reference) for d in data]))
    assert 0.0 < summary["his_ref"] < 0.99  # the references differ from the targets


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


def test_folder_without_any_matching_output_is_an_error(pairs_setup):
    tmp_path, pairs, _ = pairs_setup
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    Image.fromarray(_photo(9)).save(folder / "stray.png")
    with pytest.raises(EvaluationError, match=r"elsewhere.*<target stem>") as info:
        find_outputs(folder, pairs)
    assert "\n" not in str(info.value)


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


@pytest.mark.slow  # measured above 4 s of CPU time
def test_smoke_profile_writes_both_tables(tmp_path):
    """End to end on the committed demo pairs (smoke: 4 pairs, 96 px), with a partial outputs folder, another
    method's folder, and a copy of the pair file (so the per-pair CSVs default to <out>/per_pair)."""
    pairs_csv, _, _ = evaluate.default_pairs(PROFILES["smoke"])
    shutil.copy(pairs_csv, tmp_path / "pairs.csv")
    setup_pairs = read_pairs(*evaluate.default_pairs(PROFILES["smoke"]), limit=4)
    de, mine = tmp_path / "de", tmp_path / "mine"
    de.mkdir()
    mine.mkdir()
    for pair in setup_pairs[:3]:
        Image.open(pair.target_path).convert("L").convert("RGB").save(de / f"{pair.key}.png")
    for pair in setup_pairs:
        Image.open(pair.target_path).convert("RGB").resize((96, 96), Image.BICUBIC).save(mine / f"{pair.key}.png")
    logs = []
    written = evaluate.run("smoke", tmp_path / "out", pairs=tmp_path / "pairs.csv",
                           folders={"deep_exemplar": de, "mine": mine}, device="cpu", log=logs.append)
    assert sorted(p.name for p in written) == ["table1_ablation.csv", "table1_ablation.md",
                                               "table2_comparison.csv", "table2_comparison.md"]
    t1 = list(csv.DictReader((tmp_path / "out" / "table1_ablation.csv").read_text().splitlines()))
    # none, standard, super, super with each paper reading, transfer; a --pairs file's reference is the one its row
    # names, ranked or not
    readings = PROFILES["smoke"].paper_readings
    assert len(readings) == 4
    assert [r["reference"] for r in t1] == [evaluate.NAMED] * 8 + [GTREF] * 8
    assert [r["method"].rsplit(" (", 1)[-1] for r in t1[3:7]] == [f"demo-super-paper-{r})" for r in readings]
    assert all(r["method"].startswith("Ours (super-attention), the paper's reading: ") for r in t1[3:7])
    t2 = list(csv.DictReader((tmp_path / "out" / "table2_comparison.csv").read_text().splitlines()))
    assert {r["reference"] for r in t2} == {evaluate.NAMED}
    assert all(0.0 < float(r["ssim"]) <= 1.0 for r in t1)
    for key, net in (("lpips", "alex"), ("lpips_vgg", "vgg")):  # two LPIPS columns, each measured or named
        offline = not metrics.LPIPSMetric(net=net).available()
        assert all((r[key] == "unavailable offline") if offline else 0 <= float(r[key]) <= 1 for r in t1), key
    md = (tmp_path / "out" / "table1_ablation.md").read_text()
    assert "LPIPS(alex) ↓" in md and "LPIPS(vgg) ↓" in md and "does not say which backbone" in md
    assert t1[2]["published_paper_coco_ssim"] == "0.925" and t1[10]["published_paper_coco_ssim"] == ""
    assert "transfer" in t1[7]["method"] and t1[7]["published_paper_coco_ssim"] == ""
    assert t1[3]["published_paper_coco_ssim"] == "" and "`lab-loss`, SmoothL1 on raw Lab" in md
    t2_rows = csv.DictReader((tmp_path / "out" / "table2_comparison.csv").read_text().splitlines())
    t2 = {r["method"].split(" (")[0]: r for r in t2_rows}
    assert t2["XCNET [29]"]["ssim"] == "not run" and t2["Deep Exemplar [13]"]["pairs"] == "3/4"
    assert t2["Deep Exemplar [13]"]["published_paper_coco_ssim"] == "0.894"
    assert float(t2["mine"]["ssim"]) > 0.99 and t2["mine"]["published_paper_coco_ssim"] == ""
    assert t2["Ours"]["ssim"] == t1[2]["ssim"] and t2["Ours"]["published_paper_coco_ssim"] == "0.925"
    assert float(t2["Welsh et al. 2002 [10]"]["ssim"]) > 0
    assert any("1 of 4 pair outputs missing" in line for line in logs)
    per_pair = tmp_path / "out" / "per_pair"
    assert (per_pair / "super_gtref.csv").is_file() and (per_pair / "folder-mine.csv").is_file()
    assert (per_pair / "folder-deep_exemplar.csv").is_file()


def test_a_failed_run_writes_no_table(tmp_path, monkeypatch):
    """Table 2 failing after Table 1 was computed must not leave a new Table 1 beside an old Table 2."""
    def broken(target_l, reference):
        raise RuntimeError("baseline broke")

    monkeypatch.setattr(evaluate, "baseline_colorizers", lambda setup: {"broken": ("Broken", lambda: broken)})
    with pytest.raises(RuntimeError, match="baseline broke"):
        evaluate.run("smoke", tmp_path / "out", device="cpu", per_pair_dir=tmp_path / "per_pair", log=lambda _: None)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_folder_results_have_their_own_namespace(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "baseline_colorizers", lambda setup: {"reinhard": ("R", lambda: baselines.reinhard)})
    setup = evaluate.prepare("smoke", device="cpu", log=lambda _: None)
    folder = tmp_path / "mine"
    folder.mkdir()
    for item in setup.data:
        Image.fromarray((item.truth * 255 + 0.5).astype(np.uint8)).save(folder / f"{item.pair.key}.png")
    with pytest.raises(evaluate.UsageError, match="reserved"):
        evaluate.comparison_table(setup, {"super": folder})
    evaluate.comparison_table(setup, {"mine": folder})
    assert setup.results[evaluate.folder_key("mine")].summary()["ssim"] == pytest.approx(1.0)
    assert setup.results[("super", TOP1)].summary()["ssim"] < 0.999
    assert ("mine", TOP1) not in setup.results


def test_reinhard_row_says_it_is_an_l_driven_extension():
    names = evaluate.baseline_colorizers(SimpleNamespace(profile=PROFILES["smoke"]))
    assert "L*-driven" in names["reinhard"][0] and not names["reinhard"][0].startswith("Reinhard et al. 2001")


def test_gray_target_is_shown_as_the_exact_gray_of_its_lightness():
    l_star = np.array([[0.0, 20.0], [50.0, 100.0]])
    lab = rgb2lab(gray_rgb(l_star))
    np.testing.assert_allclose(lab[..., 0], l_star, atol=0.05)
    np.testing.assert_allclose(lab[..., 1:], 0.0, atol=0.05)


def _main_exit(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        evaluate_cli.main(argv)
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


def _never(*args, **kwargs):
    raise AssertionError("work was done before the arguments were checked")


@pytest.mark.parametrize("name", ["none", "standard", "super", "reinhard", "welsh", "carrillo2022"])
def test_cli_refuses_our_own_method_names(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate, "prepare", _never)
    code, err = _main_exit(["--profile", "smoke", "--method", f"{name}={tmp_path}"], capsys)
    assert code == 2 and err.count("\n") == 1 and "reserved" in err and "carrillo2022" in err and "super" in err


def test_cli_refuses_a_repeated_method_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate, "prepare", _never)
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    code, err = _main_exit(["--profile", "smoke", "--method", f"a={tmp_path / 'x'}", "--method",
                            f"a={tmp_path / 'y'}"], capsys)
    assert code == 2 and err.count("\n") == 1 and "'a'" in err


def test_cli_per_pair_option(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_run(profile, out, pairs, folders, device, per_pair_dir=None, log=print, checkpoints=None, slic=None,
                 workers=None):
        seen.update(out=out, per_pair_dir=per_pair_dir)
        return []

    monkeypatch.setattr(evaluate_cli, "run", fake_run)
    evaluate_cli.main(["--profile", "smoke", "--out", str(tmp_path / "o"), "--per-pair", str(tmp_path / "pp")])
    assert seen == {"out": tmp_path / "o", "per_pair_dir": tmp_path / "pp"}
    assert evaluate.per_pair_folder("smoke", tmp_path / "o", None) == evaluate.REPO_ROOT / "build" / "eval" / "smoke"
    assert evaluate.per_pair_folder("smoke", tmp_path / "o", tmp_path / "p.csv") == tmp_path / "o" / "per_pair"
    assert evaluate.per_pair_folder("smoke", None, tmp_path / "p.csv") == evaluate.REPO_ROOT / "figures" / "p" / "per_pair"


@pytest.mark.parametrize("problem", ["ambiguous", "unreadable", "empty"])
def test_cli_checks_output_folders_before_any_computation(problem, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pair_images, "load_pair_images", _never)
    monkeypatch.setattr(evaluate, "evaluate_colorizer", _never)
    key = read_pairs(*evaluate.default_pairs(PROFILES["smoke"]), limit=1)[0].key
    folder = tmp_path / "outputs"
    folder.mkdir()
    if problem == "ambiguous":
        Image.fromarray(_photo(0)).save(folder / f"{key}.png")
        Image.fromarray(_photo(0)).save(folder / f"{key}.jpg")
    elif problem == "unreadable":
        (folder / f"{key}.png").write_bytes(b"not a png at all")
    code, err = _main_exit(["--profile", "smoke", "--method", f"mine={folder}", "--out", str(tmp_path / "o")],
                           capsys)
    assert code == 1 and err.count("\n") == 1 and str(folder) in err
    assert {"ambiguous": "several files", "unreadable": f"{key}.png", "empty": "<target stem>"}[problem] in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------ scale (issue 13)


def test_pair_stream_decodes_on_demand_with_workers_in_order():
    pairs = read_pairs(*evaluate.default_pairs(PROFILES["smoke"]), limit=4)
    stream = evaluate.PairStream(pairs, 64, workers=2)
    items = list(stream)
    assert len(stream) == 4 and [i.pair.key for i in items] == [p.key for p in pairs]
    direct = [load_pair_images(p, 64) for p in pairs]
    for got, want in zip(items, direct):
        assert np.array_equal(got.truth, want.truth) and np.array_equal(got.reference, want.reference)
    assert [i.pair.key for i in stream[1:3]] == [p.key for p in pairs[1:3]]
    expected = np.mean([d.scoring_context(TOP1)[2] for d in direct])
    assert stream.his_ref() == pytest.approx(expected)
    assert not hasattr(stream, "items") and stream.__dict__.keys() == {"pairs", "size", "workers", "_his_ref"}


def test_the_paper_profiles_stream_their_pairs_with_workers():
    assert PROFILES["paper"].eval_workers == 4 and PROFILES["demo"].eval_workers == 0


def test_missing_profile_checkpoints_are_skipped_and_named(tmp_path, monkeypatch):
    """Only demo-none exists: it is scored, the other rows read "not run", the log and the notes name them."""
    from sa_lib.core.files import CHECKPOINT_DIR

    for suffix in (".safetensors", ".json"):
        (tmp_path / f"demo-none{suffix}").symlink_to(CHECKPOINT_DIR / f"demo-none{suffix}")
    monkeypatch.setattr(evaluate, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr("sa_lib.model.checkpoint.CHECKPOINT_DIR", tmp_path)  # shipped names resolve there too
    logs = []
    setup = evaluate.prepare("smoke", device="cpu", log=logs.append)
    assert setup.missing == ("standard", "super", "transfer")
    assert any("skipped, no checkpoint: demo-standard, demo-super, demo-transfer" in line for line in logs)
    table = evaluate.ablation_table(setup)
    rows = {v: r for r in table.rows if r["reference"] == TOP1 for v, name in evaluate.VARIANT_NAMES.items()
            if r["method"].startswith(name + " (`")}
    assert float(rows["none"]["ssim"]) > 0
    assert rows["super"]["ssim"] == rows["standard"]["ssim"] == "not run"
    assert any("Skipped, no checkpoint" in note and "`demo-super`" in note for note in table.notes)
    readings = [r for r in table.rows if "the paper's reading" in r["method"]]
    assert len(readings) == 2 * 4 and {r["ssim"] for r in readings} == {"not run"}
    assert any("not trained yet: `demo-super-paper-qk`" in note and "make train-ablations" in note
               for note in table.notes)


def test_models_use_their_own_slic_backend_unless_told(monkeypatch):
    from sa_lib.model.colorizer import Colorizer

    seen = []
    forward = Colorizer.forward

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("slic_backend"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "forward", spy)
    l_star, ref = np.full((32, 32), 50.0, np.float32), np.full((32, 32, 3), 0.5, np.float32)
    evaluate.model_colorizer("demo-super", "cpu")(l_star, ref)
    evaluate.model_colorizer("demo-super", "cpu", slic="opencv")(l_star, ref)
    assert seen == ["skimage", "opencv"]  # demo-super was trained with scikit-image (its config's default)


def test_cli_slic_choices_and_bad_value(capsys):
    code, err = _main_exit(["--profile", "smoke", "--slic", "fast"], capsys)
    assert code == 2 and "--slic" in err


def test_table1_names_the_size_each_shipped_checkpoint_was_trained_at():
    """The demo's transfer model trains at 224 px, the paper's three variants at 128 px: Table 1 says so, also
    under the smoke profile, which evaluates the same demo checkpoints."""
    assert evaluate._trained_sizes(PROFILES["demo"]) == "128 px (the transfer model at 224 px)"
    assert evaluate._trained_sizes(PROFILES["smoke"]) == "128 px (the transfer model at 224 px)"
    paper_only = replace(PROFILES["demo"], eval_models=("none", "standard", "super"))
    assert evaluate._trained_sizes(paper_only) == "128 px"
