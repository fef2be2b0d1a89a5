"""Automatic instance masks for the offline demo photos, written as a COCO instances file.

The demo photos have no human annotations, but the reference-selection code wants the objects that cover
more than 10% of an image (section 4 of the paper), read from COCO-format masks. Here each photo is
segmented with Felzenszwalb's graph-based method (scikit-image) at a fixed working size, and its large
connected segments (over 5% of the image, at most 8, largest first) become the "objects" of a single
category. Parameters are fixed, so the output is deterministic.

`python -m sa_lib.cli.demo_annotations` regenerates data/demo/annotations.json (a few seconds for all photos).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from skimage.measure import label
from skimage.segmentation import felzenszwalb

from ..core.files import atomic_write
from .image_io import load_photo_rgb

CATEGORY = {"id": 1, "name": "segment", "supercategory": "auto"}
WORK_SIDE = 256  # photos are segmented with their longest side brought down to this many pixels
FELZENSZWALB = {"scale": 400.0, "sigma": 0.8}
MIN_SIZE_FRACTION = 0.005  # felzenszwalb's min_size, as a fraction of the working image
MIN_AREA_FRACTION = 0.05  # segments kept: connected, larger than this fraction of the image ...
MAX_OBJECTS = 8  # ... and at most this many per image, largest first


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of a binary (H, W) mask, its `counts` as str so that it can be written to JSON."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict) -> np.ndarray:
    """The (H, W) uint8 mask of an RLE written by `encode_mask` (str or bytes `counts`)."""
    counts = rle["counts"]
    with warnings.catch_warnings():  # pycocotools' Cython decoder predates numpy 2's __array__(copy=...)
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode({"size": rle["size"],
                                  "counts": counts.encode("ascii") if isinstance(counts, str) else counts})


def mask_annotation(mask: np.ndarray, annotation_id: int, image_id: int, category_id: int = CATEGORY["id"]
                    ) -> dict:
    """A COCO instance annotation (RLE segmentation, area, [x, y, w, h] bbox) of a binary mask."""
    rle = encode_mask(mask)
    coco_rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return {"id": annotation_id, "image_id": image_id, "category_id": category_id, "segmentation": rle,
            "area": int(mask_utils.area(coco_rle)), "bbox": [int(v) for v in mask_utils.toBbox(coco_rle)],
            "iscrowd": 0}


def segment_masks(rgb: np.ndarray, min_area_fraction: float = MIN_AREA_FRACTION,
                  max_objects: int = MAX_OBJECTS) -> list[np.ndarray]:
    """Binary (H, W) masks of the large connected Felzenszwalb segments of an (H, W, 3) uint8 image.

    Segmentation runs on a copy whose longest side is at most WORK_SIDE; the label map is brought back to
    full size by nearest-neighbour, so every mask is a union of whole working-size pixels. Masks come
    largest first (ties by position), each one connected and larger than `min_area_fraction` of the image.
    """
    height, width = rgb.shape[:2]
    factor = min(1.0, WORK_SIDE / max(height, width))
    small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = rgb if small_size == (width, height) else np.asarray(
        Image.fromarray(rgb).resize(small_size, Image.BILINEAR))
    min_size = max(1, round(MIN_SIZE_FRACTION * small.shape[0] * small.shape[1]))
    segments = felzenszwalb(small, min_size=min_size, **FELZENSZWALB)
    components = label(segments + 1, background=0, connectivity=1)  # a segment may come in several pieces
    if small is not rgb:
        components = np.asarray(Image.fromarray(components.astype(np.int32)).resize((width, height),
                                                                                       Image.NEAREST))
    counts = np.bincount(components.ravel())
    counts[0] = 0
    order = np.argsort(-counts, kind="stable")  # largest first; equal sizes keep label (raster) order
    limit = min_area_fraction * height * width
    return [components == k for k in order[:max_objects] if counts[k] > limit]


def build_annotations(image_dir: Path | str, file_names: list[str] | None = None) -> dict:
    """The COCO instances dict of the images in `image_dir` (all *.jpg/*.png, or `file_names`), ids in name order."""
    image_dir = Path(image_dir)
    if file_names is None:
        file_names = [p.name for p in image_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}]
    images, annotations = [], []
    for image_id, name in enumerate(sorted(file_names), start=1):
        rgb = load_photo_rgb(image_dir / name)
        height, width = rgb.shape[:2]
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for mask in segment_masks(rgb):
            annotations.append(mask_annotation(mask, len(annotations) + 1, image_id))
    return {
        # the committed annotations.json's words (the command's first name): kept, so it regenerates as is
        "info": {"description": "Automatic masks of the superattn demo photos: large connected Felzenszwalb "
                                "segments (python -m sa_lib.demo_annotations). Not human annotations.",
                 "version": "1.0"},
        "images": images,
        "annotations": annotations,
        "categories": [CATEGORY],
    }


def write_annotations(data: dict, path: Path | str) -> None:
    """Compact JSON (no indentation), ending with a newline."""
    text = json.dumps(data, separators=(",", ":")) + "\n"
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
