"""The evaluation pairs at the evaluation size: each pair's ground truth, the L* a colorizer sees and the
reference (its box crop), decoded on demand (`load_pair_images`) or streamed through DataLoader workers
(`PairStream`), so that 5,000 COCO pairs never sit in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import metrics
from ..core.color import rgb_to_lab
from ..data.image_io import load_photo_rgb
from ..data.pairs import Pair, crop_resized
from ..profiles import EVAL_SIZE

TOP1, GTREF = "top-1", "ground truth"  # the two kinds of reference: the pair's ranked one, the target itself


@dataclass
class PairImages:
    """One pair at the evaluation size: the ground truth, the L* a colorizer sees, and the reference."""

    pair: Pair
    truth: np.ndarray  # (S, S, 3) float32 sRGB in [0, 1]
    target_l: np.ndarray  # (S, S) float32 L* in [0, 100], computed as the network's input is
    reference: np.ndarray  # (S, S, 3) float32 sRGB in [0, 1]
    truth_histogram: np.ndarray = field(default=None, repr=False)  # (21, 21) ab_histogram of the truth
    reference_histogram: np.ndarray = field(default=None, repr=False)  # (21, 21) ab_histogram of the reference

    def __post_init__(self) -> None:
        if self.truth_histogram is None:
            self.truth_histogram = metrics.ab_histogram(self.truth)
        if self.reference_histogram is None:
            self.reference_histogram = metrics.ab_histogram(self.reference)

    def scoring_context(self, reference: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(reference image, its histogram, HIS(truth, reference)) for TOP1 or GTREF scoring."""
        if reference == GTREF:
            return self.truth, self.truth_histogram, metrics.histogram_intersection(self.truth_histogram,
                                                                                    self.truth_histogram)
        his_ref = metrics.histogram_intersection(self.truth_histogram, self.reference_histogram)
        return self.reference, self.reference_histogram, his_ref


def load_square(path: Path, size: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(size, size, 3) float32 in [0, 1]: the photo (EXIF applied; its box crop, clipped to the photo)
    resized bicubically."""
    return crop_resized(load_photo_rgb(path), box, size).astype(np.float32) / 255.0


def load_pair_images(pair: Pair, size: int = EVAL_SIZE) -> PairImages:
    truth = load_square(pair.target_path, size)
    target_l = rgb_to_lab(torch.from_numpy(truth).permute(2, 0, 1)[None])[0, 0].numpy()  # (S, S) L*
    return PairImages(pair, truth, target_l, load_square(pair.reference_path, size, pair.box))


def _no_collate(item):
    return item


class _PairImagesDataset(torch.utils.data.Dataset):
    """The pairs as a map-style dataset of PairImages: what PairStream's DataLoader workers get (the pair list,
    never a decoded image)."""

    def __init__(self, pairs: Sequence[Pair], size: int):
        self.pairs, self.size = list(pairs), size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> PairImages:
        return load_pair_images(self.pairs[index], self.size)


class PairStream(Sequence):
    """The evaluation pairs at the evaluation size, decoded on demand: iterating streams them through a
    DataLoader (`workers` processes, in order), indexing loads one. Nothing is kept but the pair list and
    HIS(ground truth, top-1 reference) of each pair seen, so 5,000 COCO pairs never sit in memory (about 7 GB
    as PairImages)."""

    def __init__(self, pairs: Sequence[Pair], size: int = EVAL_SIZE, workers: int = 0):
        self.pairs, self.size, self.workers = list(pairs), size, workers
        self._his_ref: dict[int, float] = {}  # pair index -> HIS(truth, top-1 reference)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._seen(index, load_pair_images(self.pairs[index], self.size))

    def __iter__(self):
        if self.workers <= 0 or len(self) <= 1:
            for index in range(len(self)):
                yield self[index]
            return
        loader = torch.utils.data.DataLoader(_PairImagesDataset(self.pairs, self.size), batch_size=None,
                                             num_workers=self.workers, collate_fn=_no_collate,
                                             prefetch_factor=4)
        for index, item in enumerate(loader):
            yield self._seen(index, item)

    def _seen(self, index: int, item: PairImages) -> PairImages:
        self._his_ref[index] = item.scoring_context(TOP1)[2]
        return item

    def his_ref(self) -> float:
        """Mean HIS(ground truth, top-1 reference) over every pair (one more pass only if some were never seen)."""
        if len(self._his_ref) < len(self):
            for _ in self:
                pass
        return float(np.mean([self._his_ref[i] for i in range(len(self))]))
