import json

import numpy as np
import pytest
from PIL import Image

from sa_lib.data.datasets import CocoLikeDataset
from sa_lib.data.demo_annotations import (CATEGORY, build_annotations, decode_mask, encode_mask, mask_annotation,
                                     write_annotations)
from sa_lib.data.demo_data import DEMO_DIR, load_split


def rectangles(height, width, background, rects):
    """An image and the (x, y, w, h) -> mask of each flat-coloured rectangle drawn on it."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = background
    masks = {}
    for (x, y, w, h), colour in rects:
        image[y:y + h, x:x + w] = colour
        masks[(x, y, w, h)] = np.zeros((height, width), bool)
        masks[(x, y, w, h)][y:y + h, x:x + w] = True
    return image, masks


# 160 x 240 = 38400 px: red left half 50%, green 7.5% (annotated, below the 10% of a reference object),
# yellow 0.3% (too small to annotate); the blue rest is 42.5% with the right half as its box.
RECTS_A = [((0, 0, 120, 160), (220, 30, 30)), ((140, 20, 80, 36), (30, 200, 40)), ((130, 120, 10, 12), (250, 250, 0))]
# 120 x 200 = 24000 px: one 25% magenta rectangle on grey.
RECTS_B = [((50, 30, 100, 60), (200, 0, 200))]


def test_rle_round_trip_through_coco_reader(tmp_path):
    """Masks written with our encoder come back exactly through CocoLikeDataset, with the 10% threshold."""
    (tmp_path / "images").mkdir()
    data = {"images": [], "annotations": [], "categories": [CATEGORY]}
    expected = {}
    for image_id, (name, (h, w), rects) in enumerate([("a.png", (160, 240), RECTS_A), ("b.png", (120, 200), RECTS_B)],
                                                     start=1):
        image, masks = rectangles(h, w, (30, 60, 200), rects)
        Image.fromarray(image).save(tmp_path / "images" / name)
        data["images"].append({"id": image_id, "file_name": name, "width": w, "height": h})
        for box, mask in masks.items():
            ann = mask_annotation(mask, len(data["annotations"]) + 1, image_id)
            assert ann["bbox"] == list(box) and ann["area"] == box[2] * box[3]
            assert np.array_equal(decode_mask(encode_mask(mask)), mask)
            data["annotations"].append(ann)
        expected[image_id] = masks
    write_annotations(data, tmp_path / "ann.json")
    json.loads((tmp_path / "ann.json").read_text())  # str counts: valid JSON

    ds = CocoLikeDataset(tmp_path / "ann.json", tmp_path / "images")
    assert ds.image_ids == [1, 2] and ds.load_rgb(1).shape == (160, 240, 3)
    assert ds.object_boxes(1) == [(0, 0, 120, 160)]  # green (7.5%) and yellow are below 10%
    assert np.array_equal(ds.object_masks(1)[0], expected[1][(0, 0, 120, 160)])
    assert sorted(ds.object_boxes(1, min_area_fraction=0.05)) == [(0, 0, 120, 160), (140, 20, 80, 36)]
    assert ds.object_boxes(2) == [(50, 30, 100, 60)]
    assert ds.object_boxes(2, min_area_fraction=0.25) == []  # strictly larger than the threshold


def test_automatic_masks_find_the_rectangles(tmp_path):
    """build_annotations on synthetic photos: the large flat regions become masks, the tiny one does not."""
    for name, (h, w), rects in [("a.png", (160, 240), RECTS_A), ("b.png", (120, 200), RECTS_B)]:
        Image.fromarray(rectangles(h, w, (30, 60, 200), rects)[0]).save(tmp_path / name)
    data = build_annotations(tmp_path)
    assert [im["file_name"] for im in data["images"]] == ["a.png", "b.png"]
    write_annotations(data, tmp_path / "ann.json")
    ds = CocoLikeDataset(tmp_path / "ann.json", tmp_path)

    def iou(a, b):
        w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        h = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)

    def close(found, wanted):  # same number of boxes, each wanted one found (edges may move a pixel or two)
        return len(found) == len(wanted) and all(max(iou(f, w) for f in found) > 0.8 for w in wanted)

    # a: red half and the blue rest (right half) are > 10%; green (7.5%) only above 5%; yellow never.
    assert close(ds.object_boxes(1), [(0, 0, 120, 160), (120, 0, 120, 160)])
    assert close(ds.object_boxes(1, min_area_fraction=0.05), [(0, 0, 120, 160), (120, 0, 120, 160), (140, 20, 80, 36)])
    # b: the magenta rectangle and the blue frame around it (whole image as its box).
    assert close(ds.object_boxes(2), [(50, 30, 100, 60), (0, 0, 200, 120)])
    assert data["annotations"] == build_annotations(tmp_path)["annotations"]  # deterministic


@pytest.fixture(scope="module")
def committed():
    path = DEMO_DIR / "annotations.json"
    return json.loads(path.read_text(encoding="utf-8")), path


def test_committed_annotations_cover_the_demo_images(committed):
    data, path = committed
    assert path.stat().st_size < 3_000_000
    names = sorted(p.name for p in (DEMO_DIR / "images").iterdir())
    assert sorted(im["file_name"] for im in data["images"]) == names == sorted(p.name for p in load_split("all"))
    assert len({im["id"] for im in data["images"]}) == len(names)
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    for name in names[::50]:  # recorded sizes are the photos' sizes
        info = next(im for im in data["images"] if im["file_name"] == name)
        with Image.open(DEMO_DIR / "images" / name) as image:
            assert image.size == (info["width"], info["height"])
    for ann in data["annotations"]:
        mask = decode_mask(ann["segmentation"])
        assert tuple(ann["segmentation"]["size"]) == mask.shape == sizes[ann["image_id"]]
        assert int(mask.sum()) == ann["area"] and ann["iscrowd"] == 0 and ann["category_id"] == CATEGORY["id"]
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert ann["bbox"] == [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]


def test_committed_annotations_match_the_generator(committed):
    """Two photos re-segmented now give the committed masks (regenerate with python -m sa_lib.cli.demo_annotations)."""
    data, _ = committed
    for info in data["images"][::125]:
        fresh = build_annotations(DEMO_DIR / "images", [info["file_name"]])["annotations"]
        stored = [a for a in data["annotations"] if a["image_id"] == info["id"]]
        assert [(a["segmentation"], a["area"], a["bbox"]) for a in fresh] == \
               [(a["segmentation"], a["area"], a["bbox"]) for a in stored]
