"""Reference candidates, ranking, files, sampler and CLI (sa_lib.data.references) on tiny synthetic COCO files."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sa_lib.cli import references as references_cli
from sa_lib.data import references as R
from sa_lib.data.datasets import CocoLikeDataset


def make_coco(root: Path, images: dict[str, tuple[np.ndarray, list[np.ndarray]]], first_id: int = 1
              ) -> CocoLikeDataset:
    """A COCO-format dataset in `root`: name -> ((H, W, 3) uint8 image, [(H, W) bool object masks])."""
    from pycocotools import mask as mask_utils

    (root / "images").mkdir(parents=True, exist_ok=True)
    data = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    for image_id, (name, (rgb, masks)) in enumerate(sorted(images.items()), start=first_id):
        Image.fromarray(rgb).save(root / "images" / name)
        data["images"].append({"id": image_id, "file_name": name, "height": rgb.shape[0], "width": rgb.shape[1]})
        for mask in masks:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                                        "segmentation": rle, "area": float(mask.sum()), "iscrowd": 0,
                                        "bbox": [float(v) for v in mask_utils.toBbox(rle)]})
    (root / "annotations.json").write_text(json.dumps(data))
    return CocoLikeDataset(root / "annotations.json", root / "images")


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


@pytest.fixture
def colours(tmp_path) -> CocoLikeDataset:
    """a: red with a blue square (25%); b: blue; c: red; d: green with a red square of 4% (too small)."""
    a, a_mask = solid(40, 40, (255, 0, 0)), np.zeros((40, 40), bool)
    a[10:30, 20:40], a_mask[10:30, 20:40] = (0, 0, 255), True
    d, d_mask = solid(40, 40, (0, 255, 0)), np.zeros((40, 40), bool)
    d[0:8, 0:8], d_mask[0:8, 0:8] = (255, 0, 0), True
    full = np.ones((40, 40), bool)  # an object covering the whole image duplicates the image: dropped
    return make_coco(tmp_path / "colours", {"a.png": (a, [a_mask, a_mask, full]),
                                            "b.png": (solid(40, 40, (0, 0, 255)), []),
                                            "c.png": (solid(40, 40, (255, 0, 0)), []), "d.png": (d, [d_mask])})


def mean_colour(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, 224, 224) -> (B, 3): a feature whose distances are easy to work out by hand."""
    assert rgb.shape[1:] == (3, R.IMAGE_SIZE, R.IMAGE_SIZE) and 0 <= rgb.min() and rgb.max() <= 1
    return rgb.mean((2, 3))


def ranked_names(refs: R.References, image_id: int) -> list[tuple[str, tuple | None]]:
    return [(c.file_name, c.box) for c, _ in refs.top(image_id)]


def test_rank_known_answer_ties_and_chunks():
    # 1-D features; candidates 0-5 from images 10, 10, 11, 12, 12, 13; targets are images 10 and 13.
    cand = torch.tensor([[0.0], [1.0], [2.0], [2.0], [5.0], [2.0]])
    images = [10, 10, 11, 12, 12, 13]
    targets = torch.tensor([[0.0], [2.0]])
    idx, dist = R.rank_references(cand, targets, images, [10, 13], k=4)
    # target 0 (image 10): its own 0 and 1 are excluded; 2, 3 and 5 tie at 2 -> lower index first.
    assert idx.tolist() == [[2, 3, 5, 4], [2, 3, 1, 0]]
    assert dist[0].tolist() == [2.0, 2.0, 2.0, 5.0] and dist[1].tolist() == [0.0, 0.0, 1.0, 2.0]
    for tc, cc in [(1, 1), (1, 2), (2, 3), (5, 100)]:  # any chunking gives the same answer
        i2, d2 = R.rank_references(cand, targets, images, [10, 13], k=4, target_chunk=tc, candidate_chunk=cc)
        assert torch.equal(i2, idx) and torch.equal(d2, dist)


def test_rank_pads_when_too_few_candidates():
    idx, dist = R.rank_references(torch.tensor([[0.0], [1.0], [3.0]]), torch.tensor([[0.0]]), [1, 1, 2], [1], k=3)
    assert idx.tolist() == [[2, -1, -1]] and dist[0, 0] == 3.0 and torch.isinf(dist[0, 1:]).all()


def test_candidates_and_ranking_with_injected_features(colours):
    candidates = R.build_candidates(colours)
    assert [(c.index, c.file_name, c.box) for c in candidates] == [
        (0, "a.png", None), (1, "a.png", (20, 10, 20, 20)), (2, "b.png", None), (3, "c.png", None), (4, "d.png", None)]
    refs = R.build_references(colours, feature_fn=mean_colour, encoder="mean", progress=False)
    ids = {name: i for i, name in refs.images.items()}
    # b (blue): a's blue crop (0), then a (3/4 red), d (mostly green, a little red), c (red).
    assert ranked_names(refs, ids["b.png"]) == [("a.png", (20, 10, 20, 20)), ("a.png", None), ("d.png", None),
                                                ("c.png", None)]
    assert refs.top(ids["b.png"])[0][1] == pytest.approx(0.0, abs=1e-3)
    # a: its own image and crop are never its references; only 3 candidates remain for k=4.
    assert ranked_names(refs, ids["a.png"]) == [("c.png", None), ("b.png", None), ("d.png", None)]
    assert all(c.image_id != ids["a.png"] for c, _ in refs.top(ids["a.png"]))
    assert all(c.image_id != t for t in refs.targets for c, _ in refs.top(t))
    # deterministic: the same inputs give the same file, byte for byte
    again = R.build_references(colours, feature_fn=mean_colour, encoder="mean", progress=False)
    assert again == refs


def test_normalize_ranks_by_direction(tmp_path):
    ds = make_coco(tmp_path, {"blue.png": (solid(20, 20, (0, 0, 255)), []),
                              "grey.png": (solid(20, 20, (90, 90, 90)), []),
                              "navy.png": (solid(20, 20, (0, 0, 60)), [])})
    ids = {}
    for normalize in (False, True):
        refs = R.build_references(ds, feature_fn=mean_colour, encoder="mean", normalize=normalize, progress=False)
        ids = {name: i for i, name in refs.images.items()}
        assert refs.normalized is normalize
        nearest = refs.top(ids["navy.png"])[0][0].file_name
        assert nearest == ("blue.png" if normalize else "grey.png")  # same hue vs. nearest raw values
    path = tmp_path / "r.json"
    R.write_references(path, refs)
    assert R.load_references(path).normalized is True


def test_targets_outside_the_pool(colours, tmp_path):
    clash = make_coco(tmp_path / "clash", {"e.png": (solid(30, 50, (0, 0, 250)), [])})
    with pytest.raises(ValueError, match="image id 1 names two files"):  # ids must identify images
        R.build_references(colours, clash, feature_fn=mean_colour, encoder="mean", progress=False)
    other = make_coco(tmp_path / "other", {"e.png": (solid(30, 50, (0, 0, 250)), [])}, first_id=100)
    refs = R.build_references(colours, other, feature_fn=mean_colour, encoder="mean", progress=False)
    (target,) = refs.targets
    assert refs.images[target] == "e.png"  # names relative to each dataset's image folder
    assert refs.top(target)[0][0].file_name == "a.png" and set(refs.images) == set(colours.image_ids) | {target}


def test_json_round_trip_is_atomic(colours, tmp_path):
    refs = R.build_references(colours, feature_fn=mean_colour, encoder="mean", progress=False)
    path = tmp_path / "out" / "references.json"
    R.write_references(path, refs)
    assert os.listdir(path.parent) == ["references.json"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    data = json.loads(path.read_text())
    assert {"encoder", "image_size", "k", "candidates", "targets", "images"} <= set(data)
    assert data["image_size"] == 224 and data["k"] == 4 and data["candidates"][1]["box"] == [20, 10, 20, 20]
    loaded = R.load_references(path)
    assert loaded.candidates == refs.candidates and loaded.images == refs.images
    assert loaded.targets.keys() == refs.targets.keys()
    for t in refs.targets:
        assert [i for i, _ in loaded.targets[t]] == [i for i, _ in refs.targets[t]]
        assert [d for _, d in loaded.targets[t]] == pytest.approx([d for _, d in refs.targets[t]], rel=1e-4)
    text = path.read_text()
    R.write_references(path, loaded)  # rewriting what was read changes nothing
    assert path.read_text() == text
    with pytest.raises(FileNotFoundError):
        R.load_references(tmp_path / "missing.json")


def _toy_references(n_refs: int = 4) -> R.References:
    candidates = [R.Candidate(i, 100 + i, None, f"{i}.jpg") for i in range(6)]
    return R.References("toy", 224, 4, candidates, {1: [(i, float(i)) for i in range(1, 1 + n_refs)], 2: []},
                        images={1: "t.jpg", 2: "u.jpg", **{100 + i: f"{i}.jpg" for i in range(6)}})


def test_sampler_frequencies():
    sampler = R.ReferenceSampler(_toy_references(), seed=0)
    draws = [sampler.sample(1) for _ in range(20000)]
    freq = {key: sum(1 for d in draws if (d if d == "self" else d.index) == key) / len(draws)
            for key in ("self", 1, 2, 3, 4)}
    assert freq["self"] == pytest.approx(0.25, abs=0.015)
    for i in (1, 2, 3, 4):
        assert freq[i] == pytest.approx(0.1875, abs=0.015)
    # seeded: the same seed gives the same sequence; a numpy Generator works as well
    again = R.ReferenceSampler(_toy_references(), seed=0)
    assert [again.sample(1) for _ in range(200)] == draws[:200]
    with_numpy = [sampler.sample(1, np.random.default_rng(1)) for _ in range(3)]
    assert with_numpy[0] == with_numpy[1] == with_numpy[2]
    rng = np.random.default_rng(1)
    assert {d if d == "self" else d.index for d in (sampler.sample(1, rng) for _ in range(500))} == {"self", 1, 2, 3, 4}
    assert sampler.sample(2) == "self"  # no ranked reference: the target itself
    assert all(R.ReferenceSampler(_toy_references(), p_self=0.0).sample(1) != "self" for _ in range(200))
    assert all(R.ReferenceSampler(_toy_references(), p_self=1.0).sample(1) == "self" for _ in range(200))
    with pytest.raises(KeyError):
        sampler.sample(99)
    with pytest.raises(ValueError):
        R.ReferenceSampler(_toy_references(), p_self=1.5)
    # fewer than k references: 1 - p_self shared among those there are
    two = R.ReferenceSampler(_toy_references(n_refs=2), seed=3)
    picks = [two.sample(1, random.Random(i)) for i in range(4000)]
    assert sum(p != "self" and p.index == 2 for p in picks) / 4000 == pytest.approx(0.375, abs=0.03)


def test_eval_pairs_csv(colours, tmp_path):
    refs = R.build_references(colours, feature_fn=mean_colour, encoder="mean", progress=False)
    path = tmp_path / "eval_pairs.csv"
    assert R.write_eval_pairs(path, refs, colours) == 4
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == R.EVAL_PAIRS_HEADER
    assert [r[:6] for r in rows[1:]] == [
        ["a.png", "c.png", "", "", "", ""],  # whole image: empty box fields
        ["b.png", "a.png", "20", "10", "20", "20"],  # object crop: its box
        ["c.png", "a.png", "", "", "", ""],
        ["d.png", "a.png", "", "", "", ""],
    ]
    assert float(rows[2][6]) == pytest.approx(0.0, abs=1e-3)


def test_end_to_end_with_the_real_encoder(tmp_path):
    """Two stripe photos and two checkerboards, each with a slightly brighter twin: twins rank first."""
    y, x = np.mgrid[:48, :64]
    stripes = np.where((y // 6 % 2)[..., None] == 0, [200, 40, 40], [250, 250, 250]).astype(np.uint8)
    checks = np.where(((y // 8 + x // 8) % 2)[..., None] == 0, [20, 160, 30], [10, 10, 10]).astype(np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[0:24, 0:32] = True
    ds = make_coco(tmp_path, {"s1.png": (stripes, [mask]), "s2.png": (stripes + 5, []),
                              "c1.png": (checks, []), "c2.png": (checks + 5, [])})
    refs = R.build_references(ds, encoder="effnet_lite0", k=2, batch_size=3, device="cpu", progress=False)
    assert len(refs.candidates) == 5 and refs.encoder == "effnet_lite0" and refs.k == 2
    ids = {name: i for i, name in refs.images.items()}
    for a, b in [("s1.png", "s2.png"), ("s2.png", "s1.png"), ("c1.png", "c2.png"), ("c2.png", "c1.png")]:
        assert refs.top(ids[a])[0][0].image_id == ids[b], (a, ranked_names(refs, ids[a]))
    out = tmp_path / "refs.json"
    R.write_references(out, refs)
    assert R.load_references(out).candidates == refs.candidates


def test_cli_usage_and_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        references_cli.main(["--k", "0"])
    assert info.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        references_cli.main(["--encoder", "resnet", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "unknown encoder" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_missing_data_dir(tmp_path):
    env = {**os.environ, "SUPERATTN_DEMO_DIR": str(tmp_path / "missing")}
    result = subprocess.run([sys.executable, "-m", "sa_lib.cli.references", "--profile", "demo",
                             "--out", str(tmp_path / "r.json"), "--eval-pairs", str(tmp_path / "p.csv")],
                            capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sa-references: error:") and "missing" in lines[0], result.stderr
    assert not (tmp_path / "r.json").exists()


def test_cli_paper_profile_without_coco(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path))  # an empty data cache: COCO is not there
    with pytest.raises(SystemExit) as info:  # effnet: runs offline up to the data check
        references_cli.main(["--profile", "paper", "--encoder", "effnet_lite0", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.count("\n") == 1 and err.startswith("sa-references: error: COCO train2017"), err
