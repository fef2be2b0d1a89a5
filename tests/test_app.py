"""sa-app: the app's logic without a server (AppService), then the real app served and driven by gradio_client."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from sa_lib.app import web as A
from sa_lib.model.checkpoint import read_config
from sa_lib.inference.colorize import load_model
from sa_lib.data.demo_data import DEMO_DIR

A.offline_environment()  # before gradio or gradio_client is imported: no telemetry, no update check

PHOTOS = DEMO_DIR / "images"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A small gray target (wide) and a colour reference, as uploads would be."""
    folder = tmp_path_factory.mktemp("uploads")
    target = Image.open(PHOTOS / "gcompris-cheetah.jpg").convert("L").resize((120, 68))
    target.save(folder / "cheetah.png")
    Image.open(PHOTOS / "gcompris-panda.jpg").convert("RGB").resize((80, 60)).save(folder / "panda.jpg")
    return folder / "cheetah.png", folder / "panda.jpg"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return A.AppService("cpu", work_dir=tmp_path_factory.mktemp("work"), keep_runs=3)


def bad_uploads(folder):
    """The CLI's bad inputs, as uploaded files, with the words of the CLI's messages."""
    (folder / "notes.png").write_text("not an image")
    Image.new("L", (20, 500)).save(folder / "tiny.png")
    Image.new("1", (12000, 9000)).save(folder / "huge.png")  # 108 megapixels, a few KB on disk
    good = Image.open(PHOTOS / "gcompris-cheetah.jpg").convert("RGB").resize((200, 120))
    good.save(folder / "full.jpg", quality=90)
    (folder / "cut.jpg").write_bytes((folder / "full.jpg").read_bytes()[:1500])
    return {"notes.png": "not a readable image", "tiny.png": "at least 32 px", "huge.png": "100 megapixels",
            "cut.jpg": "truncated"}


# ------------------------------------------------------------------------------------------- choices


def test_checkpoint_choices_put_the_shipped_ones_first(tmp_path):
    assert A.checkpoint_choices()[:4] == ["demo-transfer", "demo-super", "demo-none", "demo-standard"]
    for name in ("demo-super", "demo-super-paper-qk", "demo-none", "my-run", "demo-standard", "another",
                 "demo-transfer"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    assert A.checkpoint_choices(tmp_path) == ["demo-transfer", "demo-super", "demo-none", "demo-standard", "another",
                                              "my-run", "demo-super-paper-qk"]  # the ablations last


def test_examples_come_from_matched_pairs_when_it_exists(tmp_path):
    demo = tmp_path / "demo"
    shutil.copytree(DEMO_DIR / "images", demo / "images", ignore=lambda d, names: [
        n for n in names if n not in {"gcompris-bee.jpg", "gcompris-caterpillar.jpg", "gcompris-panda.jpg",
                                      "gcompris-cheetah.jpg", "gcompris-america.jpg", "gcompris-ireland.jpg"}])
    (demo / "eval_pairs.csv").write_text("target,reference,ref_x,ref_y,ref_w,ref_h,distance\n"
                                         "gcompris-bee.jpg,gcompris-caterpillar.jpg,0,195,395,165,1.2\n"
                                         "gcompris-america.jpg,gcompris-ireland.jpg,,,,,1.3\n")
    assert [p.target for p in A.example_pairs(4, demo)] == ["gcompris-bee.jpg", "gcompris-america.jpg"]
    (demo / "matched_pairs.csv").write_text("target,reference\ngcompris-cheetah.jpg,gcompris-panda.jpg\n")
    assert [p.target for p in A.example_pairs(4, demo)] == ["gcompris-cheetah.jpg"]
    rows = A.example_files(A.example_pairs(4, demo) + A.example_pairs(1, demo / "nowhere"), tmp_path / "ex")
    assert len(rows) == 1 and all(path.is_file() for path in rows[0])
    (demo / "matched_pairs.csv").unlink()
    target, reference, thumb = A.example_files(A.example_pairs(1, demo), tmp_path / "ex2")[0]
    assert Image.open(reference).size == (395, 165)  # the ranked reference's box, cut once
    assert Image.open(thumb).size[0] > Image.open(thumb).size[1]  # target and reference side by side


def test_the_shipped_examples_load():
    pairs = A.example_pairs()
    assert 1 <= len(pairs) <= A.EXAMPLE_COUNT and all(p.target_path.is_file() for p in pairs)


# ------------------------------------------------------------------------------------------ colorize


def test_colorize_keeps_the_target_size_and_one_model(service, pair):
    target, reference = pair
    steps = []
    run = service.colorize(target, reference, "demo-super", "fast", 64, progress=lambda f, text: steps.append(f))
    assert run.size == (120, 68) and Image.open(run.result_png).size == (120, 68)
    assert Image.open(run.before_png).size == (120, 68) and run.result_png.name == "cheetah-colorized.png"
    gray = np.asarray(Image.open(run.before_png).convert("RGB"), dtype=int)
    assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 1  # the target's L* as neutral gray
    assert steps == sorted(steps) and steps[-1] < 1
    assert run.attention is not None and max(run.attention.gray.shape) == 64
    assert load_model.cache_info().currsize == 1
    other = service.colorize(target, reference, "demo-none", "fast", 64)
    assert other.attention is None and A.AppService.why_start(other) is None
    assert load_model.cache_info().currsize == 1 and service.loaded == "demo-none"  # the previous one was dropped
    assert len(list(service.work_dir.glob("run-*"))) <= 3


def chroma(png: Path) -> float:
    """Mean a*b* magnitude of a written result."""
    lab = rgb2lab(np.asarray(Image.open(png).convert("RGB")))
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def test_the_colour_strength_multiplies_the_checkpoints_own_chroma_gain(service, pair):
    target, reference = pair
    own_gain = read_config("demo-transfer").chroma_gain
    assert own_gain != 1.0  # calibrated by sa-calibrate-chroma
    own = service.colorize(target, reference, "demo-transfer", "fast", 64)
    assert own.chroma_gain == own_gain
    muted = service.colorize(target, reference, "demo-transfer", "fast", 64, strength=0.5)
    assert muted.chroma_gain == pytest.approx(own_gain / 2)
    assert chroma(muted.result_png) == pytest.approx(chroma(own.result_png) / 2, rel=0.1)
    runs = service.runs
    for bad in (0.1, 4.0, float("nan"), "much"):  # gains 0.11 and 4.6 are outside the accepted range
        with pytest.raises(A.AppError, match="^colour strength") as info:
            service.colorize(target, reference, "demo-transfer", "fast", 64, strength=bad)
        assert "\n" not in str(info.value)
    assert service.runs == runs  # refused before the model ran
    words = f"chroma gain of {own_gain * 4:.3g} (its own {own_gain:g} times 4), outside [0.25, 4]"
    with pytest.raises(A.AppError, match=re.escape(words)):
        service.colorize(target, reference, "demo-transfer", "fast", 64, strength=4.0)


def test_why_view_click_level_and_the_full_resolution_click(service, pair):
    target, reference = pair
    run = service.colorize(target, reference, "demo-super", "fast", 96)
    why = A.AppService.why_start(run)
    h, w = run.attention.gray.shape
    assert why.point == (h // 2, w // 2)
    start = A.AppService.why_view(why)
    scale = A.AppService.view_scale(why)
    assert scale == round(A.VIEW_SIDE / 96) and start.target.shape == (h * scale, w * scale, 3)
    assert start.target.dtype == np.uint8 and start.html.count("sa-swatch") == 2

    A.AppService.why_click(why, 2 * scale, 3 * scale)  # near the top-left corner of the view as drawn
    corner = A.AppService.why_view(why)
    assert why.point == (3, 2) and corner.label != start.label
    assert not np.array_equal(corner.reference, start.reference)  # the lit reference follows the click
    A.AppService.why_click(why, 119, 67, on="full")  # the bottom-right pixel of the full-resolution result
    assert why.point == (h - 1, w - 1)
    labels = run.attention.pixel_labels(2)
    A.AppService.why_level(why, 2)
    assert why.point == (h - 1, w - 1) and A.AppService.why_view(why).label == labels[h - 1, w - 1]
    with pytest.raises(A.AppError, match="level 5"):
        A.AppService.why_level(why, 5)


def test_bad_uploads_give_the_clis_one_line_messages(service, pair, tmp_path):
    target, reference = pair
    for name, words in bad_uploads(tmp_path).items():
        with pytest.raises(A.AppError) as info:
            service.colorize(tmp_path / name, reference)
        message = str(info.value)
        assert words in message and f"'{name}'" in message and str(tmp_path) not in message, message
        assert "\n" not in message
    with pytest.raises(A.AppError, match="no reference image"):
        service.colorize(target, None)
    with pytest.raises(A.AppError, match="unknown checkpoint"):
        service.colorize(target, reference, "demo-nope")


# ------------------------------------------------------------------------------------------- suggest


@pytest.fixture(scope="module")
def photos(tmp_path_factory, pair):
    """Unrelated photos and a crop of the target's colour original."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("gcompris-america.jpg", "gcompris-bee.jpg", "gcompris-ireland.jpg"):
        image = Image.open(PHOTOS / name).convert("RGB")
        image.thumbnail((128, 128))
        image.save(folder / name)
    colour = Image.open(PHOTOS / "gcompris-cheetah.jpg").convert("RGB").resize((120, 68))
    colour.crop((10, 6, 110, 64)).save(folder / "cheetah-crop.png")
    return folder


def test_suggest_ranks_a_folder_for_the_uploaded_target(tmp_path, pair, photos, monkeypatch):
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path / "data"))
    service = A.AppService("cpu", work_dir=tmp_path / "work")
    ranked, skipped = service.suggest(pair[0], photos, 2)
    assert [s.path.name for s in ranked][0] == "cheetah-crop.png" and len(ranked) == 2 and skipped == []
    copy = service.as_reference(ranked[0].path)
    assert copy.parent.parent == service.work_dir and copy.read_bytes() == ranked[0].path.read_bytes()
    with pytest.raises(A.AppError, match="does not exist"):
        service.suggest(pair[0], tmp_path / "nowhere")


def test_which_folders_the_app_may_rank(tmp_path):
    inside = tmp_path / "root" / "holidays"
    inside.mkdir(parents=True)
    assert A.AppService("cpu", work_dir=tmp_path / "w").allowed_folder(str(tmp_path)) == tmp_path
    rooted = A.AppService("cpu", work_dir=tmp_path / "w", photos_root=tmp_path / "root")
    assert rooted.allowed_folder(inside) == inside
    with pytest.raises(A.AppError, match="outside"):
        rooted.allowed_folder(tmp_path)
    with pytest.raises(A.AppError, match="outside"):
        rooted.allowed_folder(inside / ".." / ".." / "w")
    with pytest.raises(A.AppError, match="--photos"):
        A.AppService("cpu", work_dir=tmp_path / "w", allow_any_folder=False).allowed_folder(inside)
    with pytest.raises(A.AppError, match="type the path"):
        rooted.allowed_folder("  ")
    assert A.is_loopback("127.0.0.1") and A.is_loopback("localhost") and A.is_loopback("::1")
    assert not A.is_loopback("0.0.0.0") and not A.is_loopback("192.168.1.4")


# ------------------------------------------------------------------------------ the served app, by client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real app on a free local port, in this process; closed after the module."""
    service = A.AppService("cpu", work_dir=tmp_path_factory.mktemp("served"))
    demo = A.build_app(service)
    port = free_port()
    A.launch(demo, "127.0.0.1", port, service, block=False, quiet=True)
    yield f"http://127.0.0.1:{port}/", service
    demo.close()


@pytest.mark.slow  # measured above 4 s of CPU time
def test_gradio_client_colorizes_a_pair_and_gets_the_error_of_a_bad_file(served, pair, tmp_path, capfd):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, service = served
    assert not Path(A.__file__).with_suffix(".pyi").exists()  # no stub written beside the module by Gradio
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "downloads"))
    target, reference = pair
    before, result, slider, download, status, why_target, why_reference, why_info = client.predict(
        handle_file(str(target)), handle_file(str(reference)), "demo-super", "fast", 64, 0, api_name="/colorize")
    assert Image.open(result).size == (120, 68) and Image.open(before).size == (120, 68)
    assert len(slider) == 2 and "120x68 px with demo-super (fast, chroma gain 1.00)" in status
    assert "superpixel" in why_info and "sa-swatch" in why_info and Image.open(why_reference).size[0] > 80
    runs = service.runs

    (tmp_path / "notes.png").write_text("not an image")
    capfd.readouterr()
    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(tmp_path / "notes.png")), handle_file(str(reference)), "demo-super", "fast",
                       64, 0, api_name="/colorize")
    assert "target image 'notes.png' is not a readable image" in str(info.value)
    assert service.runs == runs  # refused before the model ran
    assert "Traceback" not in capfd.readouterr().err  # a user's mistake is no bug: the server log stays quiet

    # The app keeps running: the next request works.
    again = client.predict(handle_file(str(target)), handle_file(str(reference)), "demo-super", "fast", 64, 0, 1.5,
                           api_name="/colorize")  # colour strength 1.5: demo-super's gain is 1
    assert Image.open(again[1]).size == (120, 68) and service.runs == runs + 1
    assert "chroma gain 1.50" in again[4]  # the slider's gain, passed through the API
    assert "Click the target" in again[4]
    plain = client.predict(handle_file(str(target)), handle_file(str(reference)), "demo-none", "fast", 64, 0,
                           api_name="/colorize")
    assert "no super-attention" in plain[4] and "Click the target" not in plain[4]  # nothing to click for


def test_gradio_client_suggests_references_from_a_server_folder(served, pair, photos, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path / "data"))  # the app process is this one
    client = Client(served[0], verbose=False, analytics_enabled=False, download_files=str(tmp_path / "downloads"))
    gallery, note = client.predict(handle_file(str(pair[0])), str(photos), 2, api_name="/suggest")
    assert len(gallery) == 2 and gallery[0]["caption"].startswith("1. cheetah-crop.png")
    assert "2 nearest photos" in note


# -------------------------------------------------------------------------------------------- sa-app CLI


def run_cli(argv, capsys):
    from sa_lib.cli.app import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return info.value.code, captured.err + captured.out


def test_cli_refuses_in_one_line_before_serving(tmp_path, capsys, monkeypatch):
    code, err = run_cli(["--photos", tmp_path / "missing"], capsys)
    assert code == 2 and err == f"sa-app: error: --photos {tmp_path / 'missing'}: not a folder\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, err = run_cli(["--port", taken.getsockname()[1]], capsys)
    assert code == 1 and "the port is taken" in err and err.count("\n") == 1
    code, err = run_cli(["--port", "70000"], capsys)
    assert code == 2 and "must be in 1..65535" in err
    code, err = run_cli(["--port", "abc"], capsys)
    assert code == 2 and "not a port number: 'abc'" in err and "_port" not in err
    code, err = run_cli(["--device", "gpu", "--port", free_port()], capsys)
    assert code == 2 and "unknown device" in err and err.count("\n") == 1
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    code, err = run_cli([], capsys)
    assert code == 1 and "install the app extra" in err and err.count("\n") == 1


def test_cli_help_names_host_port_and_the_default_address(capsys):
    code, out = run_cli(["--help"], capsys)
    assert code == 0 and "--host" in out and "--port" in out and "127.0.0.1" in out
