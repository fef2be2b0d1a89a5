"""The offline demo dataset: the committed split is complete, disjoint, stratified and reproducible."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
from PIL import Image

from sa_lib.data import demo_data
from sa_lib.data.demo_data import DEMO_DIR, KEEP_TOGETHER, load_split, make_split


@pytest.fixture(scope="module")
def split() -> dict:
    return json.loads((DEMO_DIR / "split.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def package_of() -> dict[str, str]:
    with open(DEMO_DIR / "ATTRIBUTION.tsv", newline="", encoding="utf-8") as f:
        return {row["file"]: row["package"] for row in csv.DictReader(f, delimiter="\t")}


def test_split_covers_every_image_once(split: dict, package_of: dict[str, str]) -> None:
    images = sorted(p.name for p in (DEMO_DIR / "images").iterdir())
    listed = split["train"] + split["val"]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == images == sorted(package_of)


def test_train_and_val_are_disjoint(split: dict) -> None:
    assert not set(split["train"]) & set(split["val"])


def test_val_fraction(split: dict) -> None:
    n_val, n_all = len(split["val"]), len(split["train"]) + len(split["val"])
    assert 0.12 <= n_val / n_all <= 0.18


def test_val_spread_over_sources(split: dict, package_of: dict[str, str]) -> None:
    sizes = Counter(package_of.values())
    val_packages = {package_of[name] for name in split["val"]}
    assert {p for p, n in sizes.items() if n >= 4} <= val_packages


def test_near_duplicates_on_one_side(split: dict) -> None:
    val = set(split["val"])
    for group in KEEP_TOGETHER:
        assert len({name in val for name in group}) == 1, group


def test_make_split_is_deterministic_and_matches_committed(split: dict) -> None:
    tsv = DEMO_DIR / "ATTRIBUTION.tsv"
    assert make_split(tsv) == make_split(tsv) == split
    assert make_split(tsv, seed=1) != split


def test_images_are_rgb_and_small() -> None:
    paths = load_split("all")
    assert paths and all(p.is_absolute() for p in paths)
    for path in paths:
        with Image.open(path) as im:
            im.load()  # decode the whole file, not only its header
            assert im.mode == "RGB", path.name
            assert max(im.size) <= 640, path.name


def test_load_split_names() -> None:
    train, val, all_ = load_split("train"), load_split("val"), load_split("all")
    assert sorted(train + val) == all_
    with pytest.raises(ValueError, match="unknown split"):
        load_split("test")


def test_missing_data_dir_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(demo_data, "DEMO_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="split.json"):
        load_split("train")
