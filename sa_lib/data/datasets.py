"""Images and their instance masks through one path: COCO 2017 and the offline demo photos alike.

Both are read from a COCO-format annotation file with pycocotools, so the code that serves COCO serves
the demo unchanged. The demo's `data/demo/annotations.json` holds masks made automatically (see
`sa_lib.data.demo_annotations`), COCO's come from its instance annotations.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from .demo_data import DEMO_DIR, load_split
from .image_io import load_photo_rgb

OBJECT_MIN_AREA_FRACTION = 0.10  # section 4: objects larger than 10% of their image become references


@dataclass(frozen=True)
class ImageRecord:
    image_id: int
    path: Path
    width: int
    height: int


class CocoLikeDataset:
    """The images of a COCO-format annotation file (optionally a subset of them) and their object masks."""

    def __init__(self, annotation_file: Path | str, image_dir: Path | str, file_names: set[str] | None = None):
        annotation_file, self.image_dir = Path(annotation_file), Path(image_dir)
        if not annotation_file.is_file():
            raise FileNotFoundError(f"annotation file not found: {annotation_file}")
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.image_dir}")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            self.coco = COCO(str(annotation_file))
        self.image_ids = sorted(i for i, info in self.coco.imgs.items()
                                if file_names is None or info["file_name"] in file_names)
        if file_names is not None and len(self.image_ids) != len(file_names):
            raise ValueError(f"{len(file_names) - len(self.image_ids)} requested images are not in {annotation_file}")

    def __len__(self) -> int:
        return len(self.image_ids)

    def record(self, image_id: int) -> ImageRecord:
        info = self.coco.imgs[image_id]
        return ImageRecord(image_id, self.image_dir / info["file_name"], info["width"], info["height"])

    def load_rgb(self, image_id: int) -> np.ndarray:
        """(H, W, 3) uint8 sRGB, EXIF orientation applied."""
        return load_photo_rgb(self.record(image_id).path)

    def object_masks(self, image_id: int, min_area_fraction: float = OBJECT_MIN_AREA_FRACTION
                     ) -> list[np.ndarray]:
        """Binary masks (H, W) of the objects covering more than `min_area_fraction` of the image."""
        info = self.coco.imgs[image_id]
        limit = min_area_fraction * info["width"] * info["height"]
        annotations = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id], iscrowd=False))
        masks = (self.coco.annToMask(a) for a in annotations if a["area"] > limit)
        return [m for m in masks if m.sum() > limit]

    def object_boxes(self, image_id: int, min_area_fraction: float = OBJECT_MIN_AREA_FRACTION
                     ) -> list[tuple[int, int, int, int]]:
        """(x, y, w, h) pixel boxes around those large objects: the crops that join the candidate references."""
        boxes = []
        for mask in self.object_masks(image_id, min_area_fraction):
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            boxes.append((int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)))
        return boxes


def demo_dataset(split: str = "train") -> CocoLikeDataset:
    """The offline demo photos of `split` ("train", "val" or "all") with their automatic masks."""
    wanted = {path.name for path in load_split(split)}
    return CocoLikeDataset(DEMO_DIR / "annotations.json", DEMO_DIR / "images", file_names=wanted)
