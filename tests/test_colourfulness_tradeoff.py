"""benchmarks/colourfulness_tradeoff.py: the fitted chroma gain reaches the asked colourfulness, leaves L*
alone, and the script refuses bad arguments in one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sa_lib.data.demo_data import DEMO_DIR
from sa_lib.data.pairs import read_pairs
from sa_lib.eval.pair_images import load_pair_images
from sa_lib.eval.scoring import evaluate_colorizer, model_colorizer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "colourfulness_tradeoff.py"


@pytest.fixture(scope="module")
def tradeoff(benchmark_script):
    return benchmark_script("colourfulness_tradeoff")


def _lab_batch() -> torch.Tensor:
    """(2, 3, 16, 16) Lab images with moderate chroma, so that most pixels stay inside sRGB at a gain of 1.4."""
    g = torch.Generator().manual_seed(0)
    l_star = 40 + 30 * torch.rand(2, 1, 16, 16, generator=g)
    ab = 20 * torch.randn(2, 2, 16, 16, generator=g)
    return torch.cat([l_star, ab], dim=1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("gain", [0.6, 1.0, 1.4])
def test_the_fitted_gain_gives_the_asked_colourfulness(tradeoff, gain):
    lab = _lab_batch()
    wanted = tradeoff.mean_colourfulness(tradeoff.with_gain(lab, gain))
    fitted = tradeoff.fit_lab_gain(lab, wanted)
    assert fitted == pytest.approx(gain, rel=0.01)
    assert tradeoff.mean_colourfulness(tradeoff.with_gain(lab, fitted)) == pytest.approx(wanted, rel=0.005)


@pytest.mark.timeout(60)
def test_the_gain_scales_chroma_and_keeps_lightness(tradeoff):
    lab = _lab_batch()
    before, after = (tradeoff.rgb_to_lab(torch.from_numpy(tradeoff.with_gain(lab, k)).permute(0, 3, 1, 2))
                     for k in (1.0, 0.5))
    kept = (before[:, 0] - after[:, 0]).abs() < 0.5  # L* kept, except where sRGB clipping moved it
    assert float(kept.float().mean()) > 0.95
    chroma_before, chroma_after = before[:, 1:].norm(dim=1), after[:, 1:].norm(dim=1)
    assert float((chroma_after / chroma_before.clamp_min(1e-3)).median()) == pytest.approx(0.5, abs=0.03)


@pytest.mark.timeout(30)
def test_checkpoint_labels(tradeoff):
    assert tradeoff.parse_checkpoints("demo-super, r=runs/x/last.safetensors,runs/y.safetensors") == {
        "demo-super": "demo-super", "r": "runs/x/last.safetensors", "y": "runs/y.safetensors"}
    with pytest.raises(tradeoff.UsageError):
        tradeoff.parse_checkpoints(" , ")


@pytest.mark.slow  # a subprocess that imports torch and loads the pairs
@pytest.mark.timeout(300)
@pytest.mark.parametrize("args, message", [
    (["--checkpoints", "no-such.safetensors"], "checkpoint not found"),
    (["--checkpoints", "demo-none", "--shares", "vivid"], "neither a number nor one of the checkpoints"),
])
def test_bad_arguments_get_one_line_and_no_output(tmp_path, args, message):
    out = tmp_path / "result"
    result = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(out)], capture_output=True,
                            text=True, timeout=280, cwd=ROOT)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # two checkpoints on four pairs
@pytest.mark.timeout(300)
def test_a_small_run_writes_its_table_and_the_as_shipped_row_is_the_evaluators(tradeoff, tmp_path, monkeypatch):
    sets = {}
    for name, path in tradeoff.PAIR_SETS.items():
        lines = path.read_text().splitlines()
        sets[name] = tmp_path / f"{name}.csv"
        sets[name].write_text("\n".join(lines[:3]) + "\n")  # the header and two pairs
    monkeypatch.setattr(tradeoff, "PAIR_SETS", sets)
    out = tmp_path / "out" / "tradeoff"
    tradeoff.main(["--checkpoints", "demo-none,demo-super", "--out", str(out)])
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["checkpoint"], r["colourfulness"].split(":")[0]): r for r in result["rows"]}
    assert len(rows) == 6 and result["pairs"] == {"matched": 2, "ranked": 2}
    super_share = rows[("demo-super", "as shipped")]["matched"]["colourfulness_share"]
    for label in ("demo-none", "demo-super"):
        assert rows[(label, "as shipped")]["gain"] == 1.0
        assert rows[(label, "85%")]["matched"]["colourfulness_share"] == pytest.approx(0.85, abs=0.005)
        matched = next(r for key, r in rows.items() if key[0] == label and key[1].startswith("demo-super's"))
        assert matched["matched"]["colourfulness_share"] == pytest.approx(super_share, abs=0.005)
    # k = 1 scores what the evaluator scores for the checkpoint itself
    data = [load_pair_images(p, 224) for p in read_pairs(sets["matched"], DEMO_DIR / "images", DEMO_DIR / "images")]
    evaluated = evaluate_colorizer("demo-none", model_colorizer("demo-none", "cpu"), data).summary()
    assert rows[("demo-none", "as shipped")]["matched"]["psnr_ab"] == pytest.approx(evaluated["psnr_ab"], abs=0.02)
    assert "| demo-super | 85%: 85% |" in out.with_suffix(".md").read_text()
    # a forced option is not the checkpoint as shipped: its k = 1 row says so
    tradeoff.main(["--checkpoints", "demo-none", "--chroma-gain", "1", "--shares", "0.85", "--out", str(out)])
    assert [r["colourfulness"] for r in json.loads(out.with_suffix(".json").read_text())["rows"]] == ["k = 1", "85%"]
    # --blend off runs each network without its blend partner: its k = 1 row is not "as shipped" either
    tradeoff.main(["--checkpoints", "demo-transfer", "--blend", "off", "--shares", "0.85", "--out", str(out)])
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["blend"] is False and [r["colourfulness"] for r in result["rows"]] == ["k = 1", "85%"]
    alone = evaluate_colorizer("alone", model_colorizer("demo-transfer", "cpu", blend=False), data).summary()
    blended = evaluate_colorizer("blended", model_colorizer("demo-transfer", "cpu"), data).summary()
    assert result["rows"][0]["matched"]["psnr_ab"] == pytest.approx(alone["psnr_ab"], abs=0.02)
    assert abs(alone["psnr_ab"] - blended["psnr_ab"]) > 0.02  # the partner changes the outputs
    assert "without its blend partner" in out.with_suffix(".md").read_text()
