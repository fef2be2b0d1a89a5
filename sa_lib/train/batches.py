"""The batches of training: (target, reference) pairs drawn reproducibly, their SLIC grids, resumable order.

Each step: a batch of targets, each with a reference drawn by the ReferenceSampler (itself, or one of its
top-4), resized to the training size; SLIC grids are computed in the DataLoader workers, not in the step, with
the model's SLIC backend (ColorizerConfig.slic_backend; "torch" runs batched on the training device in the step
instead). The workers get the image files only (sa_lib.data.lazy_data.ImageFiles), never the COCO object with
its annotations.
"""

from __future__ import annotations

import random
from pathlib import Path
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.color import rgb_to_lab
from ..data.augment import transfer_pair
from ..data.datasets import CocoLikeDataset
from ..data.pairs import crop_resized
from ..data.references import References, load_references
from ..profiles import PHOTO_SOURCES
from ..superpixels.pyramid import SuperpixelPyramid, image_pyramid_labels
from .config import ConfigError, TrainConfig


def load_resized(dataset, image_id: int, size: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(size, size, 3) uint8: the image (or its box crop) resized to the square training size, as the paper."""
    return crop_resized(dataset.load_rgb(image_id), box, size)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0  # (3, H, W)


def gray_levels(rgb: torch.Tensor, levels: int, compactness: float, backend: str = "skimage") -> list[np.ndarray]:
    """SLIC label maps of one (3, H, W) image's L*/100, at every attention level, with SLIC `backend`."""
    return image_pyramid_labels(rgb_to_lab(rgb[None])[0, 0].numpy() / 100.0, levels, compactness, backend)


class PairDataset(Dataset):
    """(target, reference) training pairs; indexed by (epoch, i) so each draw is reproducible anywhere."""

    def __init__(self, targets, pool, sampler, size: int, seed: int, with_superpixels: bool,
                 compactness: float, reference_augment: str = "none", p_recolor: float = 0.0,
                 slic_backend: str = "skimage"):
        self.targets, self.pool, self.sampler = targets, pool, sampler
        self.slic_backend = slic_backend
        self.size, self.seed = size, seed
        self.with_superpixels, self.compactness = with_superpixels, compactness
        self.reference_augment, self.p_recolor = reference_augment, p_recolor

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        image_id = self.targets.image_ids[index]
        rng = random.Random(f"{self.seed}/{epoch}/{index}")
        choice = self.sampler.sample(image_id, rng)
        target = to_tensor(load_resized(self.targets, image_id, self.size))
        if choice == "self" and self.reference_augment == "warp_recolor":
            target, reference = transfer_pair(target, rng, self.p_recolor)
        elif choice == "self":
            reference = target
        else:
            reference = to_tensor(load_resized(self.pool, choice.image_id, self.size, choice.box))
        item = {"target": target, "reference": reference}
        if self.with_superpixels:
            item["target_labels"] = gray_levels(target, 3, self.compactness, self.slic_backend)
            item["reference_labels"] = gray_levels(reference, 3, self.compactness, self.slic_backend)
        return item


def collate(items: list[dict]) -> dict:
    batch = {k: torch.stack([it[k] for it in items]) for k in ("target", "reference")}
    if "target_labels" in items[0]:
        batch["target_sp"] = SuperpixelPyramid.stack([it["target_labels"] for it in items])
        batch["reference_sp"] = SuperpixelPyramid.stack([it["reference_labels"] for it in items])
    return batch


def check_batch_fits(n: int, batch_size: int) -> None:
    """ConfigError unless a dataset of `n` images holds at least one batch."""
    if n < batch_size:
        raise ConfigError(f"the dataset has {n} images, fewer than one batch of {batch_size}")


class ResumableBatches(torch.utils.data.Sampler):
    """Batches of (epoch, index) keys: a seeded permutation per epoch, starting at any global step.

    Under DDP every rank sees the same global batch order and takes its own slice of each batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, total_steps: int,
                 rank: int = 0, world: int = 1):
        check_batch_fits(n, batch_size)
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start_step, self.total_steps, self.rank, self.world = start_step, total_steps, rank, world
        self.steps_per_epoch = n // batch_size

    def __len__(self) -> int:
        return self.total_steps - self.start_step

    def __iter__(self):
        for step in range(self.start_step, self.total_steps):
            epoch, within = divmod(step, self.steps_per_epoch)
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            batch = order[within * self.batch_size:(within + 1) * self.batch_size].tolist()
            yield [(epoch, i) for i in batch[self.rank::self.world]]


@dataclass
class TrainingData:
    """What a run reads: the train targets, the pool their references come from, and the ranked references."""

    targets: CocoLikeDataset
    pool: CocoLikeDataset
    references: References


def open_data(config: TrainConfig) -> TrainingData:
    """The training data of the run's photos (sa_lib.profiles.PHOTO_SOURCES): the train photos are both the
    targets and the pool of their references (see sa_lib.data.references)."""
    photos = PHOTO_SOURCES[config.data]
    train = photos.dataset("train")
    references_file = Path(config.references) if config.references else photos.references_file()
    if not references_file.is_file():
        raise ConfigError(f"references file not found: {references_file} (run sa-references first)")
    return TrainingData(train, train, load_references(references_file))
