"""What DataLoader workers get instead of a dataset object: the image files only, opened lazily.

A `CocoLikeDataset` holds pycocotools' COCO object: for COCO train2017 that is every annotation, a few GB of
Python objects. A worker process that inherits it (fork) touches those pages through reference counting and
copies them one by one, and a spawned worker would unpickle all of it; with 8 workers per rank on several
ranks that is tens of GB. Training reads nothing but the pixels (the reference boxes come from the
references file), so the workers get an `ImageFiles`: the image ids and file paths in two flat numpy arrays
(no Python object per image, so nothing for reference counting to copy), and each file is opened when an
item asks for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .image_io import load_photo_rgb


class ImageFiles:
    """image id -> file, for `load_rgb` in DataLoader workers; pickles as two arrays (ids, UTF-8 paths)."""

    def __init__(self, image_ids, paths):
        ids = np.asarray(image_ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[order]  # (N,) for the lookup
        self._paths = np.array([str(p).encode("utf-8") for p in paths], dtype=np.bytes_)[order]  # (N,) bytes
        if len(self._sorted_ids) != len(self._paths):
            raise ValueError("one path per image id is needed")
        if len(ids) and (np.diff(self._sorted_ids) == 0).any():
            raise ValueError("image ids must be unique")
        self.image_ids = ids  # (N,) in the dataset's own order, as CocoLikeDataset.image_ids

    @classmethod
    def of(cls, dataset) -> "ImageFiles":
        """The files of a CocoLikeDataset (or anything with image_ids and record(i).path); an ImageFiles as is."""
        if isinstance(dataset, cls):
            return dataset
        return cls(dataset.image_ids, [dataset.record(i).path for i in dataset.image_ids])

    def __len__(self) -> int:
        return len(self.image_ids)

    def path(self, image_id: int) -> Path:
        row = int(np.searchsorted(self._sorted_ids, image_id))
        if row >= len(self._sorted_ids) or self._sorted_ids[row] != image_id:
            raise KeyError(f"image id {image_id} is not in this set")
        return Path(self._paths[row].decode("utf-8"))

    def load_rgb(self, image_id: int) -> np.ndarray:
        """(H, W, 3) uint8 sRGB, EXIF orientation applied (as CocoLikeDataset.load_rgb)."""
        return load_photo_rgb(self.path(image_id))
