"""The chroma gain's calibration (sa_lib.eval.chroma_calibration) and `sa-calibrate-chroma`."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from cli_run import run_main
from sa_lib.cli import calibrate_chroma
from sa_lib.core.color import combine_l_ab
from sa_lib.eval.chroma_calibration import calibrate, calibration_pairs, fit_gain, mean_colourfulness
from sa_lib.eval.pair_images import load_pair_images
from sa_lib.model.checkpoint import load_checkpoint, read_config, read_sidecar, save_checkpoint
from sa_lib.model.colorizer import build_model
from sa_lib.model.predict import predict_ab
from sa_lib.profiles import get_profile

SIZE = 64  # the tests' calibration size (the command's: 224)


@pytest.fixture(scope="module")
def few_pairs():
    return calibration_pairs(get_profile("demo"))[:4]


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "super.safetensors"
    save_checkpoint(path, build_model("super"), step=7, metrics={"psnr_ab": 12.5})
    return path


def tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_fit_gain_finds_the_gain_of_a_growing_function():
    assert fit_gain(lambda k: 10.0 * k, 13.0) == pytest.approx(1.3, abs=1e-3)
    assert fit_gain(lambda k: 10.0 * k, 1e6) == pytest.approx(4.0, abs=1e-3)  # out of reach: the bound


def test_calibration_pairs_are_the_training_photos_with_another_photo():
    """Every demo training photo, once, with its top-1 ranked reference, which is never the target's own photo."""
    pairs = calibration_pairs(get_profile("demo"))
    train = get_profile("demo").photos.dataset("train")
    assert len(pairs) == len(train.image_ids) == len({p.target for p in pairs})
    assert all(p.target != p.reference and p.target_path.is_file() and p.reference_path.is_file() for p in pairs)


@pytest.mark.timeout(180)
def test_the_calibrated_gain_gives_the_asked_share_whatever_gain_the_model_had(few_pairs):
    torch.manual_seed(0)
    model = build_model("super").eval()
    result = calibrate(model, few_pairs, share=0.9, size=SIZE)
    model.config = replace(model.config, chroma_gain=2.5)  # its own gain is left out of the calibration
    again = calibrate(model, few_pairs, share=0.9, size=SIZE)
    assert again.gain == pytest.approx(result.gain, rel=1e-6) and result.pairs == 4
    outputs, truths = [], []
    for pair in few_pairs:
        images = load_pair_images(pair, SIZE)
        l_star = torch.from_numpy(images.target_l)[None, None]  # (1, 1, S, S)
        ab, _ = predict_ab(model, l_star, torch.from_numpy(images.reference).permute(2, 0, 1)[None],
                           model.config.slic_backend, chroma_gain=result.gain)
        outputs.append(combine_l_ab(l_star, ab)[0].permute(1, 2, 0).numpy())
        truths.append(images.truth)
    assert mean_colourfulness(outputs) == pytest.approx(0.9 * mean_colourfulness(truths), rel=0.01)
    assert mean_colourfulness(truths) == pytest.approx(result.truth_colourfulness)
    with pytest.raises(ValueError, match="share"):
        calibrate(model, few_pairs, share=0.0, size=SIZE)


@pytest.mark.timeout(180)
def test_the_command_writes_the_gain_and_keeps_the_weights(checkpoint, few_pairs, tmp_path, capsys, monkeypatch):
    """In place by default, or to -o; the weights, step, metrics and dtype stay; the sidecar says how the gain was
    fitted; --dry-run writes nothing; bad input is one line and a non-zero exit, with the checkpoint untouched."""
    monkeypatch.setattr(calibrate_chroma, "calibration_pairs", lambda profile: few_pairs)
    before, sidecar_before = tensors(checkpoint), checkpoint.with_suffix(".json").read_text()
    code, out, err = run_main(calibrate_chroma.main, [checkpoint, "--dry-run"], capsys)
    assert code == 0 and "chroma_gain" in out and "wrote" not in out, err
    assert checkpoint.with_suffix(".json").read_text() == sidecar_before

    copy = tmp_path / "copy.safetensors"
    code, out, err = run_main(calibrate_chroma.main, [checkpoint, "--share", "0.8", "-o", copy], capsys)
    assert code == 0, err
    assert read_config(checkpoint).chroma_gain == 1.0  # -o leaves the source alone
    config, sidecar = read_config(copy), read_sidecar(copy)
    assert config.chroma_gain != 1.0 and sidecar["chroma_calibration"]["share"] == 0.8
    assert sidecar["chroma_calibration"]["gain"] == pytest.approx(config.chroma_gain, abs=1e-4)
    assert sidecar["step"] == 7 and sidecar["metrics"] == {"psnr_ab": 12.5} and sidecar["dtype"] == "float32"
    after = tensors(copy)
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert load_checkpoint(copy).config.chroma_gain == config.chroma_gain

    code, out, err = run_main(calibrate_chroma.main, [checkpoint], capsys)  # in place
    assert code == 0 and read_config(checkpoint).chroma_gain > config.chroma_gain, err  # 0.85 asks more than 0.8
    assert read_sidecar(checkpoint)["chroma_calibration"]["share"] == 0.85

    for argv, exit_code, words in (([checkpoint, "--share", "0"], 2, "--share"),
                                   ([checkpoint, "--share", "x"], 2, "--share"),
                                   ([tmp_path / "missing.safetensors"], 1, "not found")):
        code, out, err = run_main(calibrate_chroma.main, argv, capsys)
        assert code == exit_code and words in err.strip().splitlines()[-1], err  # argparse: usage, then one line
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x01" * 100)
    code, out, err = run_main(calibrate_chroma.main, [corrupt], capsys)
    assert code == 1 and "not a readable safetensors file" in err and len(err.strip().splitlines()) == 1, err
    assert corrupt.read_bytes() == b"\x01" * 100


@pytest.mark.timeout(180)
def test_the_smoke_profile_calibrates_on_its_first_pairs_at_its_size(checkpoint, capsys, monkeypatch):
    """--profile smoke is the tests' profile: its first 4 training photos at 96 px, not all 214 at 224."""
    sizes = []
    real = calibrate_chroma.calibrate
    monkeypatch.setattr(calibrate_chroma, "calibrate",
                        lambda *args, **kwargs: sizes.append(kwargs["size"]) or real(*args, **kwargs))
    assert len(calibration_pairs(get_profile("smoke"))) == get_profile("smoke").eval_limit == 4
    code, out, err = run_main(calibrate_chroma.main, [checkpoint, "--profile", "smoke", "--dry-run"], capsys)
    assert code == 0, err
    assert "on 4 training photos of profile smoke" in out and sizes == [get_profile("smoke").eval_size]
