"""sa-colorize and sa_lib.inference.colorize: any size, the target's own L*, and a clear one-line error for bad input."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sa_lib.model.checkpoint import save_checkpoint
from sa_lib.core.color import normalize_l
from sa_lib.cli.colorize import main
from cli_run import run_main
from sa_lib.colorize import colorize, colorize_detailed
from sa_lib.superpixels.pyramid import SuperpixelPyramid
from sa_lib.model.colorizer import build_model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Small random-weight checkpoints (the CLI must not depend on training having happened)."""
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    for variant in ("super", "none"):
        save_checkpoint(folder / f"{variant}.safetensors", build_model(variant))
    (folder / "corrupt.safetensors").write_bytes(b"\x01" * 100)
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from sa_lib.data.demo_data import load_split

    folder = tmp_path_factory.mktemp("photos")
    paths = load_split("val")
    target = Image.open(paths[0]).convert("RGB").resize((150, 70))  # wide, non-square
    target.convert("L").save(folder / "target.png")
    target.save(folder / "target_colour.jpg", quality=98)
    Image.open(paths[1]).convert("RGB").resize((90, 120)).save(folder / "reference.jpg")
    return folder


def run(argv, capsys):
    """sa-colorize in-process: (exit code, stderr)."""
    code, _, err = run_main(main, argv, capsys)
    return code, err


def lightness(image) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(image, dtype=np.float64) / 255.0)[..., 0]


@pytest.mark.parametrize("mode", ["fast", "highres"])
def test_output_has_target_size_and_its_own_lightness(mode, photos, checkpoints):
    out = colorize(photos / "target.png", photos / "reference.jpg", checkpoint=checkpoints / "super.safetensors",
                   mode=mode, working_size=64)
    assert out.size == (150, 70) and out.mode == "RGB"
    gray = Image.open(photos / "target.png").convert("RGB")
    assert np.median(np.abs(lightness(out) - lightness(gray))) < 1.0  # L* kept (only gamut clipping moves it)


@pytest.mark.slow  # measured above 4 s of CPU time
def test_accepts_pil_and_arrays_and_uses_only_the_l_of_a_colour_target(photos, checkpoints):
    ckpt = checkpoints / "super.safetensors"
    colour = Image.open(photos / "target_colour.jpg")
    from_path = colorize(photos / "target_colour.jpg", photos / "reference.jpg", checkpoint=ckpt)
    from_pil = colorize(colour, Image.open(photos / "reference.jpg"), checkpoint=ckpt)
    from_array = colorize(np.asarray(colour), np.asarray(Image.open(photos / "reference.jpg")), checkpoint=ckpt)
    assert np.array_equal(np.asarray(from_path), np.asarray(from_pil))
    assert np.array_equal(np.asarray(from_pil), np.asarray(from_array))
    gray_result = colorize(colour.convert("L"), Image.open(photos / "reference.jpg"), checkpoint=ckpt)
    assert np.abs(np.asarray(gray_result, float) - np.asarray(from_pil, float)).mean() < 3  # L* is all it sees


def test_fast_mode_runs_the_network_at_the_working_size(photos, checkpoints):
    result = colorize_detailed(photos / "target.png", photos / "reference.jpg",
                               checkpoint=checkpoints / "super.safetensors", working_size=64)
    assert tuple(result.target_l.shape[-2:]) == (32, 64) and result.image.size == (150, 70)


def test_cli_single_pair_and_explain(photos, checkpoints, tmp_path, capsys):
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "out.jpg",
                     "--checkpoint", checkpoints / "super.safetensors", "--explain", tmp_path / "why.png"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "out.jpg").size == (150, 70)
    assert Image.open(tmp_path / "why.png").size[0] > 400


def test_cli_explain_needs_super_attention(photos, checkpoints, tmp_path, capsys):
    """Refused before anything runs: neither the figure nor the result is written."""
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "out.png",
                     "--checkpoint", checkpoints / "none.safetensors", "--explain", tmp_path / "why.png"], capsys)
    assert code == 2 and "super-attention" in err and "'none'" in err
    assert not (tmp_path / "why.png").exists() and not (tmp_path / "out.png").exists()


def test_cli_settings_and_the_shared_reference_are_checked_once_before_a_folder_runs(photos, checkpoints, tmp_path,
                                                                                      capsys):
    """A bad setting or a bad reference of folder mode is one line, not one per image, and leaves no folder."""
    ckpt = ["--checkpoint", checkpoints / "super.safetensors"]
    targets = tmp_path / "targets"
    targets.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.open(photos / "target.png").save(targets / name)
    code, err = run([targets, photos / "reference.jpg", "-o", tmp_path / "o1", "--working-size", "10", *ckpt], capsys)
    assert code == 2 and err.count("\n") == 1 and "at least 32 px" in err and not (tmp_path / "o1").exists()
    code, err = run([targets, tmp_path / "nope.jpg", "-o", tmp_path / "o2", *ckpt], capsys)
    assert code == 1 and err.count("\n") == 1 and "does not exist" in err and not (tmp_path / "o2").exists()
    (tmp_path / "notes.jpg").write_text("not an image")
    code, err = run([targets, tmp_path / "notes.jpg", "-o", tmp_path / "o3", *ckpt], capsys)
    assert code == 1 and err.count("\n") == 1 and "not a readable image" in err and not (tmp_path / "o3").exists()


def test_cli_refuses_an_output_format_it_cannot_write_before_running(photos, checkpoints, tmp_path, capsys):
    for name, message in (("result.xyz", "extension '.xyz'"), ("result", "no extension")):
        code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / name,
                         "--checkpoint", "demo-nope"], capsys)  # an unknown checkpoint would be named later
        assert code == 2 and message in err and ".png" in err, err
        assert not (tmp_path / name).exists()


def test_cli_pairs_file_of_the_evaluator_images_folder_and_reference_box(photos, checkpoints, tmp_path, capsys):
    """A pairs file as sa-references writes it (names relative to images/ beside it, a box cropping the reference)
    gives what colorizing the cropped reference gives: the reference sa-evaluate scores the pair with."""
    ckpt = checkpoints / "super.safetensors"
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    Image.open(photos / "target_colour.jpg").save(folder / "images" / "t.png")
    reference = Image.open(photos / "reference.jpg").convert("RGB")
    reference.save(folder / "images" / "r.png")
    reference.transpose(Image.FLIP_LEFT_RIGHT).save(folder / "images" / "r2.png")
    pairs = folder / "eval_pairs.csv"
    pairs.write_text("target,reference,ref_x,ref_y,ref_w,ref_h,distance\nt.png,r.png,10,20,60,80,1.0\n"
                     "t.png,r2.png,,,,,1.2\n")
    code, err = run(["--pairs", pairs, "-o", tmp_path / "out", "--checkpoint", ckpt], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t__r.png", "t__r2.png"]  # the evaluator's keys
    cropped = colorize(folder / "images" / "t.png", reference.crop((10, 20, 70, 100)), checkpoint=ckpt)
    whole = colorize(folder / "images" / "t.png", reference, checkpoint=ckpt)
    got = np.asarray(Image.open(tmp_path / "out" / "t__r.png"), dtype=float)
    assert np.abs(got - np.asarray(cropped, dtype=float)).max() <= 1
    assert np.abs(got - np.asarray(whole, dtype=float)).max() > 1  # the box made a difference
    pairs.write_text("target,reference,ref_x,ref_y,ref_w,ref_h\nt.png,r.png,1,2,x,4\n")
    code, err = run(["--pairs", pairs, "-o", tmp_path / "out2", "--checkpoint", ckpt], capsys)
    assert code == 2 and "malformed reference box" in err and not (tmp_path / "out2").exists()


def _bad_inputs(folder):
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image")
    Image.new("L", (20, 500)).save(folder / "tiny.png")
    Image.new("1", (12000, 9000)).save(folder / "huge.png")  # 108 megapixels, a few KB on disk
    return {"missing.png": "does not exist", "empty.png": "empty", "notes.png": "not a readable image",
            "tiny.png": "at least 32 px", "huge.png": "100 megapixels"}


def test_cli_bad_inputs_one_line_exit_1_nothing_written(photos, checkpoints, tmp_path, capsys):
    for name, message in _bad_inputs(tmp_path).items():
        out = tmp_path / f"out-{name}"
        code, err = run([tmp_path / name, photos / "reference.jpg", "-o", out,
                         "--checkpoint", checkpoints / "super.safetensors"], capsys)
        assert code == 1 and message in err, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err  # one line: no "1 of 1 failed" summary
        assert not out.exists() and not list(tmp_path.glob(".out-*"))


@pytest.mark.parametrize("argv_tail, code, message", [
    (["--checkpoint", "demo-nope"], 2, "unknown checkpoint"),
    (["--checkpoint", "{ckpt}/corrupt.safetensors"], 1, "not a readable safetensors"),
    (["--mode", "turbo"], 2, "invalid choice"),
])
def test_cli_checkpoint_and_usage_errors(argv_tail, code, message, photos, checkpoints, tmp_path, capsys):
    tail = [a.format(ckpt=checkpoints) for a in argv_tail]
    got, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "o.png", *tail], capsys)
    assert got == code and message in err
    assert not (tmp_path / "o.png").exists()


def test_cli_output_path_errors_are_usage_errors(photos, checkpoints, tmp_path, capsys):
    ckpt = ["--checkpoint", checkpoints / "super.safetensors"]
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "no" / "o.png", *ckpt], capsys)
    assert code == 2 and "does not exist" in err
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path, *ckpt], capsys)
    assert code == 2 and "is a folder; give a file name" in err


def test_cli_never_overwrites_an_input_or_its_own_output(photos, checkpoints, tmp_path, capsys):
    """-o or --explain naming the target, the reference or each other is a usage error, and every file is kept."""
    ckpt = ["--checkpoint", checkpoints / "super.safetensors"]
    target, reference = tmp_path / "t.png", tmp_path / "r.jpg"
    target.write_bytes((photos / "target.png").read_bytes())
    reference.write_bytes((photos / "reference.jpg").read_bytes())
    before = {p: p.read_bytes() for p in (target, reference)}
    out = tmp_path / "o.png"
    for tail, message in ((["-o", target], "is the input"),
                          (["-o", tmp_path / "." / "r.jpg"], "is the input"),
                          (["-o", out, "--explain", out], "is the output image"),
                          (["-o", out, "--explain", target], "--explain"),
                          (["-o", out, "--explain", tmp_path / "no" / "why.png"], "does not exist"),
                          (["-o", target / "o.png"], "is a file, not a folder")):
        code, err = run([target, reference, *tail, *ckpt], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (tail, err)
        assert {p: p.read_bytes() for p in before} == before and not out.exists()
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").write_bytes(before[target])
    code, err = run([folder, reference, "-o", folder, *ckpt], capsys)  # would write scans/a.png over itself
    assert code == 2 and "is the input" in err and (folder / "a.png").read_bytes() == before[target]


def test_cli_pairs_mode_refuses_a_stray_target_an_empty_file_and_an_image_name_as_folder(photos, checkpoints,
                                                                                       tmp_path, capsys):
    ckpt = ["--checkpoint", checkpoints / "super.safetensors"]
    pairs, empty, header = photos / "pairs_one.csv", tmp_path / "empty.csv", tmp_path / "header.csv"
    pairs.write_text("target.png,reference.jpg\n")
    empty.write_text("")
    header.write_text("target,reference\n")
    for argv, message in (([photos / "target_colour.jpg", "--pairs", pairs, "-o", tmp_path / "a"], "--pairs replaces"),
                          (["--pairs", empty, "-o", tmp_path / "b"], "no target,reference rows"),
                          (["--pairs", header, "-o", tmp_path / "c"], "no target,reference rows"),
                          (["--pairs", pairs, "-o", tmp_path / "d.png"], "named like an image file")):
        code, err = run([*argv, *ckpt], capsys)
        assert code == 2 and message in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "header.csv"]  # no output folder made


def test_api_flip_average_words_and_bad_arguments(photos, checkpoints):
    """The API takes the command line's words for flip_average ("off" is off, not a truthy string); a wrong type
    of target, a non-finite array or a non-numeric gain raises a clear error, not a library's."""
    from sa_lib.core.errors import UsageError
    from sa_lib.data.image_io import ImageInputError

    ckpt = checkpoints / "super.safetensors"
    target, reference = photos / "target.png", photos / "reference.jpg"
    off = np.asarray(colorize(target, reference, checkpoint=ckpt, flip_average=False))
    on = np.asarray(colorize(target, reference, checkpoint=ckpt, flip_average=True))
    assert not np.array_equal(on, off)
    assert np.array_equal(np.asarray(colorize(target, reference, checkpoint=ckpt, flip_average="off")), off)
    assert np.array_equal(np.asarray(colorize(str(target).encode(), reference, checkpoint=ckpt,
                                              flip_average="on")), on)
    with pytest.raises(UsageError, match="flip_average"):
        colorize(target, reference, checkpoint=ckpt, flip_average="yes")
    with pytest.raises(UsageError, match="chroma_gain must be a number"):
        colorize(target, reference, checkpoint=ckpt, chroma_gain="abc")
    with pytest.raises(UsageError, match="working size"):
        colorize(target, reference, checkpoint=ckpt, working_size="big")
    for bad, message in ((None, "got NoneType"), (5, "got int"), (np.full((64, 64, 3), np.nan), "NaN"),
                         (np.full((64, 64), "a"), "must hold numbers")):
        with pytest.raises(ImageInputError, match=message):
            colorize(bad, reference, checkpoint=ckpt)


def test_cli_folder_mode_goes_on_after_a_bad_file(photos, checkpoints, tmp_path, capsys):
    targets, out = tmp_path / "targets", tmp_path / "out"
    targets.mkdir(), out.mkdir()
    Image.open(photos / "target.png").save(targets / "a.png")
    Image.open(photos / "target.png").resize((64, 96)).save(targets / "c.jpg")
    (targets / "b.png").write_text("broken")
    code, err = run([targets, photos / "reference.jpg", "-o", out, "--checkpoint", checkpoints / "super.safetensors"],
                    capsys)
    assert code == 1 and "b.png" in err and "1 of 3 image(s) failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]


def test_cli_pairs_file(photos, checkpoints, tmp_path, capsys):
    pairs = photos / "pairs.csv"
    pairs.write_text("target,reference\ntarget.png,reference.jpg\ntarget_colour.jpg,reference.jpg\n")
    code, err = run(["--pairs", pairs, "-o", tmp_path, "--checkpoint", checkpoints / "super.safetensors"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.png", "target_colour.png"]


@pytest.mark.slow
def test_python_dash_m_reports_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sa_lib", str(tmp_path / "missing.png"), str(tmp_path / "r.png"),
                             "-o", str(tmp_path / "o.png"), "--checkpoint", "demo-nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_cli_refuses_colliding_outputs_bad_pairs_rows_and_explain_formats(photos, checkpoints, tmp_path, capsys):
    ckpt = ["--checkpoint", checkpoints / "super.safetensors"]
    targets, out = tmp_path / "targets", tmp_path / "out"
    targets.mkdir(), out.mkdir()
    Image.open(photos / "target.png").save(targets / "x.png")
    Image.open(photos / "target.png").convert("RGB").save(targets / "x.jpg")
    code, err = run([targets, photos / "reference.jpg", "-o", out, *ckpt], capsys)
    assert code == 2 and "would both be written" in err and not list(out.iterdir())
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("target,reference\nonly_one_column.png\n")  # with a header: the evaluator's reader
    code, err = run(["--pairs", pairs, "-o", out, *ckpt], capsys)
    assert code == 2 and "line 2 lacks a target or a reference" in err
    pairs.write_text("only_one_column.png\n")  # without one: plain rows
    code, err = run(["--pairs", pairs, "-o", out, *ckpt], capsys)
    assert code == 2 and "row 1 needs target,reference" in err
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "o.png", "--explain",
                     tmp_path / "why.txt", *ckpt], capsys)
    assert code == 2 and ".png" in err and not (tmp_path / "o.png").exists()
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "o.png", "--device", "gpu"],
                    capsys)
    assert code == 2 and "unknown device" in err


def test_integer_arrays_are_scaled_by_their_type(photos, checkpoints):
    gray8 = np.asarray(Image.open(photos / "target.png"))
    ckpt = checkpoints / "super.safetensors"
    reference = Image.open(photos / "reference.jpg")
    from_uint8 = colorize(gray8, reference, checkpoint=ckpt)
    from_uint16 = colorize(gray8.astype(np.uint16) * 257, reference, checkpoint=ckpt)  # the same image in 16 bit
    assert np.abs(np.asarray(from_uint8, float) - np.asarray(from_uint16, float)).max() <= 1


@pytest.mark.parametrize("slic", ["skimage", "opencv", pytest.param("torch", marks=pytest.mark.slow)])  # torch: 4.6 s CPU
def test_slic_backend_choice_runs_in_both_modes_and_keeps_the_size(slic, photos, checkpoints):
    ckpt = checkpoints / "super.safetensors"
    for mode in ("fast", "highres"):
        result = colorize_detailed(photos / "target.png", photos / "reference.jpg", checkpoint=ckpt, mode=mode,
                                   working_size=64, slic=slic)
        assert result.image.size == (150, 70)
        pyramid = result.intermediates["target_superpixels"]
        assert tuple(pyramid.labels[0].shape[-2:]) == tuple(result.target_l.shape[-2:])
        # the model really used the asked backend's superpixels (not its own "auto" ones)
        expected = SuperpixelPyramid.from_gray(normalize_l(result.target_l), 3, 0.1, slic)
        assert all(torch.equal(a.cpu(), b) for a, b in zip(pyramid.labels, expected.labels))
    differs = [not torch.equal(a, b) for a, b in zip(pyramid.labels, SuperpixelPyramid.from_gray(
        normalize_l(result.target_l), 3, 0.1, "skimage").labels)]
    assert slic == "skimage" or any(differs)  # a test image on which the backends really differ


def test_slic_auto_on_the_cpu_is_skimage_the_demo_weights_own(photos, checkpoints):
    ckpt = checkpoints / "super.safetensors"
    auto = colorize(photos / "target.png", photos / "reference.jpg", checkpoint=ckpt, device="cpu")
    skimage = colorize(photos / "target.png", photos / "reference.jpg", checkpoint=ckpt, device="cpu",
                       slic="skimage")
    assert np.array_equal(np.asarray(auto), np.asarray(skimage))


def test_slic_bad_value_is_a_usage_error(photos, checkpoints, tmp_path, capsys):
    from sa_lib.core.errors import UsageError

    with pytest.raises(UsageError, match="auto, skimage, opencv, torch"):
        colorize(photos / "target.png", photos / "reference.jpg", checkpoint=checkpoints / "super.safetensors",
                 slic="felzenszwalb")
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "o.png",
                     "--checkpoint", checkpoints / "super.safetensors", "--slic", "felzenszwalb"], capsys)
    assert code == 2 and "invalid choice" in err and not (tmp_path / "o.png").exists()


def test_cli_slic_flag_writes_the_image_and_a_missing_opencv_is_a_usage_error(photos, checkpoints, tmp_path,
                                                                               capsys, monkeypatch):
    argv = [photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "o.png",
            "--checkpoint", checkpoints / "super.safetensors", "--slic", "opencv"]
    code, err = run(argv, capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == (150, 70)
    monkeypatch.setattr("sa_lib.superpixels.pyramid.opencv_available", lambda: False)
    (tmp_path / "o.png").unlink()
    code, err = run(argv, capsys)
    assert code == 2 and "opencv-contrib-python-headless" in err and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_highres_that_would_not_fit_in_memory_is_refused_in_one_line(photos, checkpoints, tmp_path, capsys,
                                                                     monkeypatch):
    from sa_lib.inference.memory import highres_memory_estimate

    # The two measured points of BENCHMARKS.md (2.6 GB at 2048x1365, 7.7 GB at 4000x2667) within 15 %.
    assert abs(highres_memory_estimate(2 * 2048 * 1365, 0) / 2.6e9 - 1) < 0.15
    assert abs(highres_memory_estimate(2 * 4000 * 2667, 0) / 7.7e9 - 1) < 0.15
    # The transfer model's two measured points (1.73 GB at 1024x683, 3.96 GB at 2048x1365) within 15 %.
    assert abs(highres_memory_estimate(2 * 1024 * 683, 0, match_frozen=True) / 1.73e9 - 1) < 0.15
    assert abs(highres_memory_estimate(2 * 2048 * 1365, 0, match_frozen=True) / 3.96e9 - 1) < 0.15
    monkeypatch.setattr("sa_lib.inference.memory.available_memory", lambda: 0.5e9)
    out = tmp_path / "out.png"
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", out, "--mode", "highres",
                     "--checkpoint", checkpoints / "super.safetensors"], capsys)
    assert code == 1 and "--mode highres needs about" in err and "use --mode fast" in err
    assert "Traceback" not in err and not out.exists()


def test_fast_mode_that_would_not_fit_in_memory_is_refused_in_one_line(photos, checkpoints, tmp_path, capsys,
                                                                       monkeypatch):
    from sa_lib.inference.memory import fast_memory_estimate, highres_memory_estimate

    # The measured points of demo-transfer in fast mode (2.56 GB at 4000x3000, 8.01 GB at 8000x6000) within 15 %.
    assert abs(fast_memory_estimate(4000 * 3000, 4000 * 3000) / 2.56e9 - 1) < 0.15
    assert abs(fast_memory_estimate(8000 * 6000, 8000 * 6000) / 8.01e9 - 1) < 0.15
    out = tmp_path / "out.png"
    argv = [photos / "target.png", photos / "reference.jpg", "-o", out, "--checkpoint", checkpoints / "super.safetensors"]
    monkeypatch.setattr("sa_lib.inference.memory.available_memory", lambda: 0.5e9)
    code, err = run(argv, capsys)
    assert code == 1 and "--mode fast needs about" in err and "use smaller images" in err
    assert "Traceback" not in err and err.count("\n") == 1 and not out.exists()
    pixels = 150 * 70 + 90 * 120  # enough for fast mode, not for highres: each mode is checked by its own estimate
    between = (fast_memory_estimate(pixels, 0) + highres_memory_estimate(pixels, 0)) / 2
    monkeypatch.setattr("sa_lib.inference.memory.available_memory", lambda: between)
    code, err = run(argv, capsys)
    assert code == 0 and out.exists(), err
    code, err = run([*argv[:3], tmp_path / "o2.png", *argv[4:], "--mode", "highres"], capsys)
    assert code == 1 and "--mode highres needs about" in err


def test_cli_folder_and_pairs_mode_create_the_output_folder(photos, checkpoints, tmp_path, capsys):
    ckpt = ["--checkpoint", checkpoints / "super.safetensors"]
    targets = tmp_path / "targets"
    targets.mkdir()
    Image.open(photos / "target.png").save(targets / "a.png")
    code, err = run([targets, photos / "reference.jpg", "-o", tmp_path / "new" / "deep", *ckpt], capsys)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "new" / "deep").iterdir()] == ["a.png"]
    pairs = photos / "pairs_new_dir.csv"
    pairs.write_text("target,reference\ntarget.png,reference.jpg\n")
    code, err = run(["--pairs", pairs, "-o", tmp_path / "pairs_out", *ckpt], capsys)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "pairs_out").iterdir()] == ["target.png"]
    # A usage error leaves no folder behind, and a file in the way is refused.
    code, err = run([targets, photos / "reference.jpg", "-o", tmp_path / "never", "--checkpoint", "demo-nope"], capsys)
    assert code == 2 and not (tmp_path / "never").exists()
    (tmp_path / "afile").write_text("x")
    code, err = run([targets, photos / "reference.jpg", "-o", tmp_path / "afile", *ckpt], capsys)
    assert code == 2 and "is a file" in err


def test_cli_help_shows_one_example_per_mode(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    examples = [line.strip() for line in out.splitlines() if line.strip().startswith("sa-colorize ")]
    assert len(examples) == 4
    assert any("--pairs" in e for e in examples) and any("--reference-from" in e for e in examples)
    assert any(e.split()[1].endswith("/") for e in examples)  # folder mode


@pytest.mark.slow  # measured above 4 s of CPU time
def test_cli_reference_from_a_folder_uses_the_top_1(photos, checkpoints, tmp_path, capsys, monkeypatch):
    from sa_lib.data.demo_data import load_split

    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path / "data"))
    folder = tmp_path / "photos"
    folder.mkdir()
    colour = Image.open(photos / "target_colour.jpg")
    colour.crop((10, 5, 140, 65)).save(folder / "crop.png")  # the target's own scene, cropped
    for path in load_split("train")[:3]:
        Image.open(path).convert("RGB").resize((96, 64)).save(folder / path.name)
    own = folder / "target-copy.png"
    Image.open(photos / "target.png").save(own)  # the target's own file: never its reference
    ckpt = ["--checkpoint", checkpoints / "super.safetensors"]
    code, err = run([own, "--reference-from", folder, "-o", tmp_path / "out.png", *ckpt], capsys)
    assert code == 0, err
    assert "<- reference" in err and err.split("<- reference ")[1].split()[0].endswith("crop.png"), err
    assert Image.open(tmp_path / "out.png").size == (150, 70)
    code, err = run([photos / "target.png", photos / "reference.jpg", "--reference-from", folder, "-o",
                     tmp_path / "o2.png", *ckpt], capsys)
    assert code == 2 and "--reference-from" in err and not (tmp_path / "o2.png").exists()
    code, err = run([photos / "target.png", "--reference-from", tmp_path / "nowhere", "-o", tmp_path / "o3.png",
                     *ckpt], capsys)
    assert code == 2 and "does not exist" in err and not (tmp_path / "o3.png").exists()


@pytest.mark.timeout(120)
def test_cli_flip_average_follows_the_checkpoint_and_can_be_forced(photos, checkpoints, tmp_path, capsys):
    """--flip-average auto keeps the checkpoint's ColorizerConfig.flip_average (off for this super model), on and
    off force it; the API's flip_average does the same; a bad word is a usage error with nothing written."""
    ckpt = checkpoints / "super.safetensors"
    outputs = {}
    for word in ("auto", "on", "off"):
        out = tmp_path / f"{word}.png"
        code, err = run([photos / "target.png", photos / "reference.jpg", "-o", out, "--checkpoint", ckpt,
                         "--flip-average", word], capsys)
        assert code == 0, err
        outputs[word] = np.asarray(Image.open(out))
        assert outputs[word].shape == (70, 150, 3)
    assert np.array_equal(outputs["auto"], outputs["off"]) and not np.array_equal(outputs["on"], outputs["off"])
    api_on = colorize(photos / "target.png", photos / "reference.jpg", checkpoint=ckpt, flip_average=True)
    assert np.array_equal(np.asarray(api_on), outputs["on"])
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "bad.png",
                     "--checkpoint", ckpt, "--flip-average", "twice"], capsys)
    assert code == 2 and "invalid choice" in err and not (tmp_path / "bad.png").exists()


@pytest.mark.timeout(120)
def test_cli_chroma_gain_follows_the_checkpoint_and_can_be_overridden(photos, checkpoints, tmp_path, capsys):
    """--chroma-gain auto keeps the checkpoint's ColorizerConfig.chroma_gain, a number replaces it (1: the network's
    a*b* as predicted), the API's chroma_gain does the same; a bad value is a usage error with nothing written."""
    from dataclasses import replace

    from sa_lib.core.errors import UsageError
    from sa_lib.model.checkpoint import load_checkpoint, rewrite_config

    model = load_checkpoint(checkpoints / "super.safetensors")
    model.config = replace(model.config, chroma_gain=2.0)
    gained = tmp_path / "gained.safetensors"
    rewrite_config(checkpoints / "super.safetensors", gained, model)
    outputs = {}
    for ckpt, word in ((gained, "auto"), (gained, "1"), (checkpoints / "super.safetensors", "auto"),
                       (checkpoints / "super.safetensors", "2")):
        out = tmp_path / f"{ckpt.stem}_{word}.png"
        code, err = run([photos / "target.png", photos / "reference.jpg", "-o", out, "--checkpoint", ckpt,
                         "--chroma-gain", word], capsys)
        assert code == 0, err
        outputs[ckpt.stem, word] = np.asarray(Image.open(out))
    assert np.array_equal(outputs["gained", "1"], outputs["super", "auto"])
    assert np.array_equal(outputs["gained", "auto"], outputs["super", "2"])
    assert not np.array_equal(outputs["gained", "auto"], outputs["gained", "1"])
    api_plain = colorize(photos / "target.png", photos / "reference.jpg", checkpoint=gained, chroma_gain=1.0)
    assert np.array_equal(np.asarray(api_plain), outputs["super", "auto"])
    for bad in ("lots", "0", "nan", "9"):
        code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "bad.png",
                         "--checkpoint", gained, "--chroma-gain", bad], capsys)
        assert code == 2 and "--chroma-gain" in err.strip().splitlines()[-1], err  # argparse: usage, one line
        assert not (tmp_path / "bad.png").exists()
    with pytest.raises(UsageError, match="chroma_gain"):
        colorize(photos / "target.png", photos / "reference.jpg", checkpoint=gained, chroma_gain=-1.0)


def test_cli_an_explain_figure_that_cannot_be_written_is_one_line(photos, checkpoints, tmp_path, capsys):
    """A name too long for the file system (as a full disk would): one line, exit 1, the result kept."""
    why = tmp_path / ("w" * 250 + ".png")
    code, err = run([photos / "target.png", photos / "reference.jpg", "-o", tmp_path / "out.png",
                     "--checkpoint", checkpoints / "super.safetensors", "--explain", why], capsys)
    assert code == 1 and err.count("\n") == 1 and "--explain figure" in err and "Traceback" not in err, err
    assert (tmp_path / "out.png").exists() and not list(tmp_path.glob(".w*"))
