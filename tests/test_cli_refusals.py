"""Every command refuses a bad argument before its work starts: one line on stderr, exit 2, and no user file
written or overwritten (an output naming an input, two outputs naming one file, a number out of range)."""

import pytest
import torch
from PIL import Image

from cli_run import run_main
from sa_lib.cli import app, calibrate_chroma, evaluate, references, suggest, train
from sa_lib.data.demo_data import load_split
from sa_lib.data.pairs import PairsError, read_pairs
from sa_lib.model.checkpoint import CheckpointError, read_sidecar, save_checkpoint
from sa_lib.model.colorizer import build_model


def refused(main, argv, capsys, message):
    code, _, err = run_main(main, argv, capsys)
    assert code == 2 and message in err.strip().splitlines()[-1], err
    assert "Traceback" not in err


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in load_split("val")[:2]:
        Image.open(path).convert("RGB").resize((96, 64)).save(folder / f"{path.stem}.jpg")
    return folder


def test_sa_suggest_never_writes_its_contact_sheet_over_a_photo(photos, tmp_path, capsys):
    photo = sorted(photos.iterdir())[0]
    target = tmp_path / "target.jpg"  # outside the folder: the sheet may be neither it nor a photo of the folder
    target.write_bytes(photo.read_bytes())
    before = {p: p.read_bytes() for p in (target, photo)}
    refused(suggest.main, [target, photos, "--contact-sheet", target], capsys, f"is the input {target}")
    refused(suggest.main, [target, photos, "--contact-sheet", photos / ".." / "photos" / photo.name], capsys,
            f"is the input {photo}")
    refused(suggest.main, [target, photos, "--cache-dir", photo], capsys, "is a file; give a folder")
    assert {p: p.read_bytes() for p in before} == before


@pytest.fixture
def small_checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, build_model("none"))
    return path


def test_sa_calibrate_chroma_checks_its_output_before_calibrating(small_checkpoint, tmp_path, capsys):
    sidecar = small_checkpoint.with_suffix(".json").read_text()
    refused(calibrate_chroma.main, [small_checkpoint, "-o", small_checkpoint.with_suffix(".json")], capsys,
            "must end in .safetensors")
    refused(calibrate_chroma.main, [small_checkpoint, "-o", tmp_path], capsys, "must end in .safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    refused(calibrate_chroma.main, [small_checkpoint, "-o", tmp_path / "folder.safetensors"], capsys, "is a folder")
    assert small_checkpoint.with_suffix(".json").read_text() == sidecar


@pytest.mark.parametrize("text, message", [("[1, 2]", "holds a list, not a JSON object"),
                                           ("{broken", "not valid JSON")])
def test_a_broken_sidecar_is_named_in_one_line(small_checkpoint, text, message):
    small_checkpoint.with_suffix(".json").write_text(text)
    with pytest.raises(CheckpointError, match=message) as info:
        read_sidecar(small_checkpoint)
    assert str(small_checkpoint.with_suffix(".json")) in str(info.value)


def test_sa_references_checks_its_outputs_and_numbers_before_ranking(tmp_path, capsys):
    same = tmp_path / "same.csv"
    refused(references.main, ["--out", same, "--eval-pairs", same], capsys, "are the same file")
    refused(references.main, ["--out", tmp_path, "--eval-pairs", tmp_path / "p.csv"], capsys, "is a folder")
    refused(references.main, ["--encoder", "nope", "--out", tmp_path / "r.json", "--eval-pairs", same], capsys,
            "unknown encoder")
    refused(references.main, ["--workers", "-1"], capsys, "must be >= 0")
    for bad in ("nan", "0", "-5"):
        refused(references.main, ["--memory-gb", bad], capsys, "must be a finite number above 0")
    assert list(tmp_path.iterdir()) == []


def test_sa_evaluate_and_sa_train_refuse_bad_numbers_and_a_file_as_folder(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    refused(evaluate.main, ["--profile", "smoke", "--workers", "-1"], capsys, "must be >= 0")
    refused(evaluate.main, ["--profile", "smoke", "--out", a_file], capsys, "is a file; give a folder")
    refused(train.main, ["--profile", "smoke", "--lr", "nan"], capsys, "must be a finite number above 0")
    refused(train.main, ["--profile", "smoke", "--workers", "-1"], capsys, "must be >= 0")
    refused(train.main, ["--profile", "smoke", "--out", a_file], capsys, "is a file; give a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_sa_app_refuses_an_ipv6_host_in_one_line(capsys):
    refused(app.main, ["--host", "::1"], capsys, "IPv6 addresses are not supported")


def test_a_pairs_file_that_is_not_text_is_named(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(PairsError, match="not a UTF-8 CSV file") as info:
        read_pairs(pairs, tmp_path, tmp_path)
    assert str(pairs) in str(info.value)


def test_app_service_numbers_from_the_page_must_be_whole(tmp_path):
    from sa_lib.app.web import AppError, whole_number

    assert whole_number(256.0, "working size") == 256
    for bad, message in ((float("nan"), "whole number"), ("abc", "not a number"), (200.5, "whole number")):
        with pytest.raises(AppError, match=message):
            whole_number(bad, "working size")


@pytest.mark.parametrize("main, argv", [
    (suggest.main, ["t.jpg", "photos", "-k", "zero"]),
    (train.main, ["--lr", "abc"]),
    (train.main, ["--workers", "two"]),
    (references.main, ["--engine", "annoy"]),
    (train.main, ["--profile", "nope"]),
    (app.main, ["--port", "abc"]),
])
def test_argument_errors_are_one_line_without_the_usage_block(main, argv, capsys):
    """argparse's own errors (a bad choice or type) print one line, like every other error (CommandParser)."""
    code, _, err = run_main(main, argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "usage:" not in err and "--help" in err, err
    assert "invalid positive_int value" not in err and "_port" not in err  # no function name in the message


COMMANDS = ["app", "calibrate_chroma", "colorize", "compare", "convert_official", "demo_annotations", "demo_data",
            "evaluate", "model_card", "paper", "references", "suggest", "train"]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_describes_the_command_in_whole_sentences(name, capsys):
    """--help's description is the module docstring's whole first paragraph, not its first line cut mid-sentence."""
    import importlib

    module = importlib.import_module(f"sa_lib.cli.{name}")
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    first_paragraph = " ".join(module.__doc__.strip().split("\n\n")[0].split())
    assert first_paragraph in out and first_paragraph.rstrip(")").endswith((".", ":")), first_paragraph
