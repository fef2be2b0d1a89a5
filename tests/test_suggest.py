"""sa-suggest and sa_lib.app.suggest: section 4's ranking on a folder, its feature cache, and its CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from sa_lib.data import references as R
from sa_lib.app import suggest as S
from sa_lib.cli.suggest import main
from cli_run import run_main
from sa_lib.data.datasets import CocoLikeDataset
from sa_lib.data.demo_data import DEMO_DIR

PHOTOS = DEMO_DIR / "images"
UNRELATED = ["gcompris-america.jpg", "gcompris-bee.jpg", "gcompris-butterfly.jpg", "gcompris-ireland.jpg",
             "gcompris-Louvre_2007_02_24_c_background.jpg"]
TARGET = "gcompris-cheetah.jpg"


def small(name: str, side: int = 160) -> Image.Image:
    image = Image.open(PHOTOS / name).convert("RGB")
    image.thumbnail((side, side))
    return image


@pytest.fixture(scope="module")
def encoder_fn():
    """The real ranking features (effnet_lite0 level 4), built once for the module."""
    return R.ranking_feature_fn("effnet_lite0", "cpu")


@pytest.fixture
def folder(tmp_path):
    """A gray target, and a folder of unrelated photos plus a crop of the target's colour original."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in UNRELATED:
        small(name).save(photos / name)
    colour = small(TARGET, 200)
    w, h = colour.size
    colour.crop((w // 6, h // 6, w - w // 6, h - h // 8)).save(photos / "zz-crop.png")
    colour.convert("L").save(tmp_path / "target.png")
    return photos


def counting(fn):
    """A feature function that counts the crops it encodes."""
    def wrapped(x):
        wrapped.crops += len(x)
        return fn(x)
    wrapped.crops = 0
    return wrapped


@pytest.mark.slow  # measured above 4 s of CPU time
def test_a_crop_of_the_target_ranks_first_among_unrelated_photos(folder, tmp_path, encoder_fn):
    suggester = S.ReferenceSuggester(cache_dir=tmp_path / "cache", feature_fn=encoder_fn, device="cpu")
    shutil.copy(tmp_path / "target.png", folder / "target-copy.png")  # the target itself: never suggested
    ranked, scan = suggester.suggest(tmp_path / "target.png", folder, k=3)
    assert [s.path.name for s in ranked][0] == "zz-crop.png", ranked
    assert "target-copy.png" not in [s.path.name for s in ranked]
    assert len(ranked) == 3 and ranked[0].distance < ranked[1].distance <= ranked[2].distance
    assert len(scan.paths) == len(UNRELATED) + 2 and scan.computed == len(UNRELATED) + 2


@pytest.mark.slow  # measured above 4 s of CPU time
def test_the_ranking_is_sa_references_own(folder, tmp_path, encoder_fn):
    """The same photos ranked by build_references (as a dataset) and by the suggester: same order, same L2."""
    names = sorted(p.name for p in folder.iterdir())
    coco = {"images": [{"id": i + 1, "file_name": n, "width": Image.open(folder / n).size[0],
                        "height": Image.open(folder / n).size[1]} for i, n in enumerate(names)],
            "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    refs = R.build_references(CocoLikeDataset(tmp_path / "ann.json", folder), feature_fn=encoder_fn, k=3,
                              batch_size=4, device="cpu", normalize=True, progress=False)
    suggester = S.ReferenceSuggester(cache_dir=tmp_path / "cache", feature_fn=encoder_fn, device="cpu")
    scan = suggester.scan(folder)
    for image_id, name in refs.images.items():
        row = scan.paths.index(folder / name)
        ranked = suggester.rank(scan.features[row:row + 1], scan, k=3, target_hash=scan.hashes[row])
        expected = refs.top(image_id)
        assert [s.path.name for s in ranked] == [c.file_name for c, _ in expected]
        np.testing.assert_allclose([s.distance for s in ranked], [d for _, d in expected], rtol=1e-5)


def test_second_query_reads_no_photo_and_encodes_nothing(folder, tmp_path, encoder_fn, monkeypatch):
    fn = counting(encoder_fn)
    suggester = S.ReferenceSuggester(cache_dir=tmp_path / "cache", feature_fn=fn, device="cpu")
    first = suggester.scan(folder)
    assert fn.crops == len(UNRELATED) + 1 and first.computed == len(UNRELATED) + 1
    assert suggester.cache_path(folder).is_file()

    def forbidden(*args, **kwargs):
        raise AssertionError("a cached photo was read again")

    with monkeypatch.context() as m:
        m.setattr(S, "read_image", forbidden)
        m.setattr(S, "file_hash", forbidden)
        again = S.ReferenceSuggester(cache_dir=tmp_path / "cache", feature_fn=fn, device="cpu").scan(folder)
    assert fn.crops == len(UNRELATED) + 1 and again.computed == 0
    torch.testing.assert_close(again.features, first.features)
    assert again.hashes == first.hashes and again.paths == first.paths

    # A renamed photo keeps its features (keyed by content); an edited one is encoded again; a removed one leaves.
    (folder / UNRELATED[0]).rename(folder / "renamed.jpg")
    small(UNRELATED[1], 120).save(folder / UNRELATED[1])
    (folder / UNRELATED[2]).unlink()
    changed = suggester.scan(folder)
    assert changed.computed == 1 and fn.crops == len(UNRELATED) + 2
    assert {p.name for p in changed.paths} == {"renamed.jpg", *UNRELATED[1:2], *UNRELATED[3:], "zz-crop.png"}
    with np.load(suggester.cache_path(folder)) as cache:
        assert sorted(cache["names"].tolist()) == sorted(p.name for p in changed.paths)


def test_cache_is_per_encoder_and_a_broken_cache_is_ignored(folder, tmp_path, encoder_fn):
    a = S.ReferenceSuggester(cache_dir=tmp_path / "cache", feature_fn=encoder_fn, device="cpu")
    b = S.ReferenceSuggester(cache_dir=tmp_path / "cache", feature_fn=encoder_fn, device="cpu", encoder="vgg19")
    assert a.cache_path(folder) != b.cache_path(folder) and a.cache_path(folder).parent == b.cache_path(folder).parent
    assert a.cache_path(folder) != a.cache_path(tmp_path)  # one cache per folder
    a.cache_path(folder).parent.mkdir(parents=True)
    a.cache_path(folder).write_bytes(b"not an npz")
    fn = counting(encoder_fn)
    a.feature_fn = fn
    assert a.scan(folder).computed == len(UNRELATED) + 1 == fn.crops
    assert a.scan(folder).computed == 0


def test_unreadable_photos_are_skipped_and_bad_folders_are_one_line_errors(folder, tmp_path, encoder_fn):
    (folder / "notes.jpg").write_text("not a photo")
    Image.new("RGB", (20, 300)).save(folder / "thin.png")
    suggester = S.ReferenceSuggester(cache_dir=tmp_path / "cache", feature_fn=encoder_fn, device="cpu")
    scan = suggester.scan(folder)
    assert len(scan.paths) == len(UNRELATED) + 1 and len(scan.skipped) == 2
    assert any("notes.jpg" in line and "not a readable image" in line for line in scan.skipped)
    assert any("thin.png" in line and "at least 32 px" in line for line in scan.skipped)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    for where, message in [(tmp_path / "missing", "does not exist"), (empty, "no photos"),
                           (tmp_path / "target.png", "not a folder")]:
        with pytest.raises(S.SuggestError, match=message):
            suggester.scan(where)
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_text("no")
    with pytest.raises(S.SuggestError, match="no readable photo"):
        suggester.scan(only_bad)


def run(argv, capsys):
    """sa-suggest in-process: (exit code, stdout, stderr)."""
    return run_main(main, argv, capsys)


def test_cli_prints_top_k_with_distances_and_writes_a_contact_sheet(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path / "data"))
    sheet = tmp_path / "sheet.png"
    code, out, err = run([tmp_path / "target.png", folder, "-k", "2", "--contact-sheet", sheet, "--device", "cpu"],
                         capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("zz-crop.png")
    distances = [float(line.split("\t")[0]) for line in lines]
    assert distances[0] < distances[1]
    assert "6 features computed" in err and Image.open(sheet).size[0] > 3 * 200
    assert list((tmp_path / "data" / "features").glob("*/effnet_lite0-level4-224px.npz"))
    code, out2, err = run([tmp_path / "target.png", folder, "-k", "2", "--device", "cpu"], capsys)
    assert code == 0 and out2 == out and "0 features computed, 6 from the cache" in err


def test_a_cache_that_cannot_be_written_is_named_once_and_the_answer_is_the_same(folder, tmp_path, capsys,
                                                                                 monkeypatch):
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path / "data"))
    code, out, err = run([tmp_path / "target.png", folder, "-k", "2", "--device", "cpu"], capsys)
    assert code == 0 and "warning" not in err, err
    (tmp_path / "afile").write_text("x")  # a cache folder below a file cannot be made (even by root)
    code, out2, err = run([tmp_path / "target.png", folder, "-k", "2", "--device", "cpu", "--cache-dir",
                           tmp_path / "afile" / "cache"], capsys)
    assert code == 0 and out2 == out
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "feature cache could not be written" in warnings[0], err


@pytest.mark.parametrize("args, code, message", [
    (["{target}", "{tmp}/missing"], 2, "does not exist"),
    (["{tmp}/nope.png", "{folder}"], 1, "target image"),
    (["{target}", "{folder}", "-k", "0"], 2, "must be >= 1"),
    (["{target}", "{folder}", "--contact-sheet", "{tmp}/sheet.txt"], 2, "--contact-sheet"),
    (["{target}", "{folder}", "--contact-sheet", "{tmp}/no/sheet.png"], 2, "does not exist"),
    (["{target}", "{folder}", "--encoder", "resnet"], 2, "unknown encoder"),
])
def test_cli_errors_are_one_line(args, code, message, folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path / "data"))
    argv = [a.format(target=tmp_path / "target.png", folder=folder, tmp=tmp_path) for a in args]
    got, out, err = run(argv, capsys)
    assert got == code and message in err.strip().splitlines()[-1] and out == "", err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("sa-suggest: error:")
    if "-k" not in args:  # argparse's own errors come after its usage lines
        assert err.strip().count("\n") == 0
    assert not list(tmp_path.glob("sheet*"))
