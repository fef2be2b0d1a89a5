"""SLIC superpixels at the attention scales, and superpixel pooling / unpooling in plain torch.

Settings follow the authors: SLIC on the gray image (L*/100 in [0, 1]), compactness 0.1, sigma 0, one
grid per attention level, each computed on the image resized to that level's feature-map size.

How n_segments scales with the input: at a level of h x w pixels we ask SLIC for round(sqrt(h * w))
superpixels. For a 224 x 224 input this gives exactly the authors' 224 / 112 / 56 at the three levels,
and it is the paper's N ~ sqrt(H x W) rule, so a super-attention map (N_T x N_R entries) grows LINEARLY
with the number of pixels instead of quadratically.

Labels are made contiguous (0 .. S-1, every label used), so no empty superpixel ever enters a softmax.
Batches hold label maps of equal size and a count per image; slots past an image's count are padding
that the attention masks out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.segmentation import slic

SLIC_COMPACTNESS = 0.1
SLIC_SIGMA = 0.0


def n_segments_for(height: int, width: int) -> int:
    """Superpixels asked of SLIC for an h x w level: round(sqrt(h * w)) (224 -> 224, 112 -> 112, 56 -> 56)."""
    return max(1, round(math.sqrt(height * width)))


def level_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """Feature-map sizes of the first `levels` U-Net levels: full size, then halved with floor (max-pool)."""
    sizes = [(height, width)]
    for _ in range(levels - 1):
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    return sizes


def slic_labels(gray: np.ndarray, n_segments: int | None = None,
                compactness: float = SLIC_COMPACTNESS) -> np.ndarray:
    """SLIC label map (h, w) int64 with contiguous labels 0 .. S-1 for a gray image in [0, 1]."""
    if gray.ndim != 2:
        raise ValueError(f"slic_labels expects a 2-D gray image, got shape {gray.shape}")
    h, w = gray.shape
    labels = slic(gray.astype(np.float64), n_segments=n_segments or n_segments_for(h, w),
                  compactness=compactness, sigma=SLIC_SIGMA, channel_axis=None, start_label=0)
    _, contiguous = np.unique(labels, return_inverse=True)
    return contiguous.reshape(h, w).astype(np.int64)


def image_pyramid_labels(gray: np.ndarray, levels: int = 3,
                         compactness: float = SLIC_COMPACTNESS) -> list[np.ndarray]:
    """Label maps of one gray image (H, W) in [0, 1] at each level's size (cheap enough for DataLoader workers)."""
    image = torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None, None]  # (1, 1, H, W)
    out = []
    for h, w in level_sizes(*gray.shape, levels):
        resized = image if (h, w) == tuple(gray.shape) else F.interpolate(
            image, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        out.append(slic_labels(resized[0, 0].numpy(), compactness=compactness))
    return out


@dataclass
class SuperpixelPyramid:
    """Batched label maps, one entry per attention level.

    labels[l]: (B, h_l, w_l) int64, contiguous per image; counts[l]: (B,) number of superpixels per image.
    """

    labels: list[torch.Tensor]
    counts: list[torch.Tensor]

    @classmethod
    def from_gray(cls, gray: torch.Tensor, levels: int = 3,
                  compactness: float = SLIC_COMPACTNESS) -> "SuperpixelPyramid":
        """Run SLIC (scikit-image, on the CPU) for a batch of gray images (B, 1, H, W) in [0, 1]."""
        per_image = [image_pyramid_labels(g[0].detach().float().cpu().numpy(), levels, compactness)
                     for g in gray]
        return cls.stack(per_image).to(gray.device)

    @classmethod
    def stack(cls, per_image: list[list[np.ndarray]]) -> "SuperpixelPyramid":
        """Collate per-image label lists (as made by image_pyramid_labels) into a batch."""
        levels = len(per_image[0])
        labels = [torch.stack([torch.from_numpy(img[lvl]) for img in per_image]) for lvl in range(levels)]
        counts = [lab.flatten(1).amax(dim=1) + 1 for lab in labels]
        return cls(labels, counts)

    def to(self, device: torch.device | str) -> "SuperpixelPyramid":
        return SuperpixelPyramid([x.to(device) for x in self.labels], [x.to(device) for x in self.counts])


def valid_mask(counts: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) superpixel counts -> (B, size) bool, True for real superpixels, False for padding slots."""
    return torch.arange(size, device=counts.device)[None, :] < counts[:, None]


def superpixel_pool(features: torch.Tensor, labels: torch.Tensor, size: int) -> torch.Tensor:
    """Channel-wise max of (B, C, H, W) features inside each superpixel -> (B, C, size) super-features.

    Padding slots (label never used in that image) are 0. Uses torch.scatter_reduce("amax"): no compiled
    extension, differentiable.
    """
    b, c, h, w = features.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels {tuple(labels.shape)} do not match features {tuple(features.shape)}")
    index = labels.reshape(b, 1, h * w).expand(b, c, h * w)  # (B, C, HW) superpixel id of each pixel
    pooled = features.new_full((b, c, size), float("-inf"))
    pooled = pooled.scatter_reduce(2, index, features.reshape(b, c, h * w), reduce="amax", include_self=False)
    return torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))


def superpixel_unpool(super_features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Broadcast (B, C, S) super-features back to the pixels of (B, H, W) labels -> (B, C, H, W)."""
    b, c, _ = super_features.shape
    h, w = labels.shape[-2:]
    index = labels.reshape(b, 1, h * w).expand(b, c, h * w)  # (B, C, HW)
    return super_features.gather(2, index).reshape(b, c, h, w)
