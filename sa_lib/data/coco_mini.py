"""A COCO 2017 in miniature, made from the demo photos: the data of the `paper-smoke` profile.

The `paper` profile reads COCO 2017 (`sa_lib.data.coco`): <root>/coco/annotations/instances_{train,val}2017.json
and the image folders <root>/coco/{train,val}2017. `paper-smoke` runs the same code on a folder laid out the
same way, written here from a few demo photos (data/demo/images), their automatic object masks
(data/demo/annotations.json, RLE segmentations as COCO's crowd-free instances carry polygons or RLE alike) and
their fixed train/val split (data/demo/split.json). It is then read by `coco_dataset(split, root)`, through
pycocotools, exactly like COCO.

    <data cache>/paper-smoke/coco/annotations/instances_train2017.json   (<data cache>: $SUPERATTN_DATA)
    <data cache>/paper-smoke/coco/annotations/instances_val2017.json
    <data cache>/paper-smoke/coco/train2017/<demo file name>              (copies of the demo photos)
    <data cache>/paper-smoke/coco/val2017/<demo file name>

The photos are the first `MINI_TRAIN` train and `MINI_VAL` val photos of split.json that have at least one
object larger than 10% of the image (so object crops join the candidate references, as on COCO), in the
split's order; image and annotation ids are the demo annotation file's (unique across both splits, as COCO's).
The folder is written deterministically on first use and rewritten whenever its inputs change (a stamp holds
the SHA-256 of the inputs and of this selection rule), each file atomically.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..core import hub
from ..core.files import atomic_write
from . import demo_data
from .coco import coco_dataset, coco_root
from .datasets import OBJECT_MIN_AREA_FRACTION, CocoLikeDataset

MINI_NAME = "paper-smoke"  # <data cache>/paper-smoke/coco
MINI_TRAIN = 12  # train photos: the targets and the reference pool (about 30 candidates with their objects)
MINI_VAL = 4  # val photos: the evaluation pairs
SPLIT_FOLDERS = {"train": "train2017", "val": "val2017"}
STAMP = ".mini-coco"
RULE = f"mini-coco/1 first {MINI_TRAIN} train and {MINI_VAL} val photos with an object > {OBJECT_MIN_AREA_FRACTION}"


def mini_data_root() -> Path:
    """The data root of the mini COCO (`coco_root(mini_data_root())` is its COCO folder)."""
    return hub.data_dir() / MINI_NAME


def mini_coco_root() -> Path:
    """<data cache>/paper-smoke/coco: laid out as COCO 2017 is by `make data-coco`."""
    return coco_root(mini_data_root())


def _inputs(demo_dir: Path) -> tuple[dict, dict, str]:
    annotations_file, split_file = demo_dir / "annotations.json", demo_dir / "split.json"
    digest = hashlib.sha256(RULE.encode())
    for path in (annotations_file, split_file):
        digest.update(path.read_bytes())
    annotations = json.loads(annotations_file.read_text(encoding="utf-8"))
    split = json.loads(split_file.read_text(encoding="utf-8"))
    return annotations, split, digest.hexdigest()


def select_photos(annotations: dict, split: dict) -> dict[str, list[dict]]:
    """split -> the image entries of the mini COCO, in the split's order (see the module docstring)."""
    by_name = {image["file_name"]: image for image in annotations["images"]}
    pixels = {image["id"]: image["width"] * image["height"] for image in annotations["images"]}
    large = {a["image_id"] for a in annotations["annotations"]
             if not a.get("iscrowd", 0) and a["area"] > OBJECT_MIN_AREA_FRACTION * pixels[a["image_id"]]}
    chosen = {}
    for name, count in (("train", MINI_TRAIN), ("val", MINI_VAL)):
        images = [by_name[f] for f in split[name] if f in by_name and by_name[f]["id"] in large][:count]
        if len(images) < count:
            raise ValueError(f"the demo {name} split has only {len(images)} photos with a large object, "
                             f"{count} are needed for the mini COCO")
        chosen[name] = images
    return chosen


def build_mini_coco(demo_dir: Path | None = None, root: Path | None = None) -> Path:
    """Write (or keep, when its stamp matches its inputs) the mini COCO; returns its COCO folder."""
    demo_dir = Path(demo_dir) if demo_dir is not None else demo_data.DEMO_DIR
    base = coco_root(root) if root is not None else mini_coco_root()
    annotations, split, digest = _inputs(demo_dir)
    stamp = base / STAMP
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest:
        return base
    chosen = select_photos(annotations, split)
    for name, images in chosen.items():
        folder = base / SPLIT_FOLDERS[name]
        folder.mkdir(parents=True, exist_ok=True)
        for image in images:
            source, copy = demo_dir / "images" / image["file_name"], folder / image["file_name"]
            atomic_write(copy, lambda tmp, source=source: shutil.copyfile(source, tmp))
        ids = {image["id"] for image in images}
        instances = {
            "info": {"description": f"A miniature COCO 2017 {name} split made from the demo photos by "
                                    f"sa_lib.data.coco_mini ({RULE})"},
            "licenses": [],
            "images": images,
            "annotations": [a for a in annotations["annotations"] if a["image_id"] in ids],
            "categories": annotations["categories"],
        }
        text = json.dumps(instances, sort_keys=True) + "\n"
        atomic_write(base / "annotations" / f"instances_{SPLIT_FOLDERS[name]}.json",
                     lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    atomic_write(stamp, lambda tmp: tmp.write_text(digest + "\n", encoding="utf-8"))
    return base


def mini_coco_dataset(split: str = "train") -> CocoLikeDataset:
    """The mini COCO's `split` through COCO's own reader (`sa_lib.data.coco.coco_dataset`), built first if needed."""
    build_mini_coco()
    return coco_dataset(split, mini_data_root())
