"""sa_lib.data.pairs: one reader and one crop rule for every consumer of the evaluation pairs."""

import numpy as np
import pytest
from PIL import Image

from sa_lib.data.demo_data import DEMO_DIR
from sa_lib.data.pairs import PairsError, clipped_box, crop_reference, load_full_pair, read_pairs


def test_box_is_clipped_to_the_image_and_never_empty():
    assert clipped_box((4, 2, 30, 20), 100, 50) == (4, 2, 34, 22)
    assert clipped_box((-5, 40, 30, 20), 20, 50) == (0, 40, 20, 50)
    assert clipped_box((500, 500, 10, 10), 20, 50) == (19, 49, 20, 50)


def test_array_and_pil_crops_agree():
    array = np.arange(50 * 100 * 3, dtype=np.float32).reshape(50, 100, 3) / (50 * 100 * 3)
    image = Image.fromarray((array * 255).astype(np.uint8))
    for box in [(4, 2, 30, 20), (90, 40, 30, 20), None]:
        cropped = crop_reference(array, box)
        assert np.array_equal((cropped * 255).astype(np.uint8), np.asarray(crop_reference(image, box)))


def test_demo_pairs_load_at_full_resolution_with_their_crop():
    pairs = read_pairs(DEMO_DIR / "eval_pairs.csv", DEMO_DIR / "images", DEMO_DIR / "images")
    assert len(pairs) == 38 and len({p.key for p in pairs}) == 38
    pair = next(p for p in pairs if p.box is not None)
    assert pair.name.endswith("(crop)") and "<-" in pair.name
    target, reference = load_full_pair(pair)
    assert target.dtype == np.float32 and target.shape[2] == 3 and 0 <= target.min() and target.max() <= 1
    assert reference.shape[:2] == (pair.box[3], pair.box[2])


def test_bad_pairs_files_are_named(tmp_path):
    with pytest.raises(PairsError, match="not found"):
        read_pairs(tmp_path / "none.csv", tmp_path, tmp_path)
    (tmp_path / "p.csv").write_text("a,b\n1,2\n")
    with pytest.raises(PairsError, match="target,reference"):
        read_pairs(tmp_path / "p.csv", tmp_path, tmp_path)
    (tmp_path / "q.csv").write_text("target,reference\nonly-a-target.jpg\n")
    with pytest.raises(PairsError, match="line 2 lacks a target or a reference"):
        read_pairs(tmp_path / "q.csv", tmp_path, tmp_path)


def test_a_target_with_several_references_gets_one_output_name_each(tmp_path):
    from sa_lib.data.pairs import output_keys

    for name in ("t.jpg", "r1.jpg", "r2.jpg", "u.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "p.csv").write_text("target,reference\nt.jpg,r1.jpg\nt.jpg,r2.jpg\nu.jpg,r1.jpg\n")
    pairs = read_pairs(tmp_path / "p.csv", tmp_path, tmp_path)
    assert [p.key for p in pairs] == ["t__r1", "t__r2", "u"]
    (tmp_path / "q.csv").write_text("target,reference\nt.jpg,r1.jpg\nt.jpg,r1.jpg\n")
    with pytest.raises(PairsError, match="share the output name 't__r1'"):
        read_pairs(tmp_path / "q.csv", tmp_path, tmp_path)
    assert output_keys([("a/x.png", "b.jpg")]) == ["x"]


def test_matched_pairs_are_val_targets_with_train_references_and_a_reason():
    import csv
    import json

    split = json.loads((DEMO_DIR / "split.json").read_text())
    rows = list(csv.DictReader(open(DEMO_DIR / "matched_pairs.csv", newline="")))
    assert len(rows) >= 40
    assert all(r["target"] in split["val"] and r["reference"] in split["train"] for r in rows)
    assert all(r["reason"].strip() for r in rows)
    assert len(read_pairs(DEMO_DIR / "matched_pairs.csv", DEMO_DIR / "images", DEMO_DIR / "images")) == len(rows)
