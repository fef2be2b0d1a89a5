"""SLIC superpixels at the attention scales, and superpixel pooling / unpooling in plain torch.

Settings follow the authors: SLIC on the gray image (L*/100 in [0, 1]), compactness 0.1, sigma 0, one
grid per attention level, each computed on the image resized to that level's feature-map size.

How n_segments scales with the input: at a level of h x w pixels we ask SLIC for round(sqrt(h * w))
superpixels. For a 224 x 224 input this gives exactly the authors' 224 / 112 / 56 at the three levels,
and it is the paper's N ~ sqrt(H x W) rule, so a super-attention map (N_T x N_R entries) grows LINEARLY
with the number of pixels instead of quadratically.

Labels are made contiguous (0 .. S-1, every label used), so no empty superpixel ever enters a softmax.
(The preset of the authors' released network, ColorizerConfig.official(), keeps their grids instead:
SUPERPIXEL_SCHEMES "authors", authors_pyramid_labels, interior pooling with superpixel_pool's border.)
Batches hold label maps of equal size and a count per image; slots past an image's count are padding
that the attention masks out.

Backends (SLIC_BACKENDS), one interface (slic_labels, image_pyramid_labels, SuperpixelPyramid.from_gray):

- "skimage": scikit-image's SLIC, the authors' choice; the demo checkpoints were trained with it.
- "opencv": cv2.ximgproc's C++ SLIC (algorithm SLIC, not SLICO, whose adaptive compactness matched
  scikit-image worse) on the gray image rescaled to [0, 1] as scikit-image rescales it, float32, ruler =
  compactness (the same distance as scikit-image's), region_size = round(sqrt(h * w / n_segments)),
  10 iterations, enforceLabelConnectivity at OpenCV's default 25% (50% gave scikit-image's count but a worse
  fit to it). It makes about 1.2x as many superpixels as scikit-image.
- "torch": sa_lib.superpixels.slic_torch, batched SLIC in torch on the images' own device (a whole CUDA batch per call).
- "auto": chosen by device and size. "torch" for CUDA tensors; on the CPU "opencv" for a level of more than
  AUTO_OPENCV_MIN_PIXELS (256 x 256) pixels, "skimage" below (and wherever cv2.ximgproc is missing).
  So on a GPU a forward pass without precomputed superpixels (validation, sa-evaluate, sa-colorize) uses the
  torch SLIC at every size, while training's DataLoader workers label crops on the CPU (scikit-image). On the
  CPU the demo model scores the same with either (below), but its individual outputs differ; pass
  backend="skimage" (`--slic skimage`) on a GPU to reproduce CPU numbers exactly.

Measured on this project's 2-core CPU (benchmarks/slic_backends.py, benchmarks/slic_quality.py,
BENCHMARKS.md): opencv is 2.2x faster than scikit-image for the superpixels of a 2048x1365 pair (all levels,
both images) and 2.4-2.5x per image at 224 to 2048 px; on the demo val photos its boundary recall against
the object masks is 0.706 (scikit-image 0.642, torch 0.659), and against scikit-image's labels 0.839
(torch 0.917; scikit-image against itself on the mirrored photo 0.786). With demo-super, only the backend
changed, PSNR(ab) / CIEDE2000 on the demo eval pairs are 19.37 / 10.87 (skimage), 19.39 / 10.85 (opencv),
19.37 / 10.85 (torch) in fast mode, 19.01 / 11.33 and 18.97 / 11.41 (skimage, opencv) in highres mode.
Why the size threshold: everything at or under 256 x 256 per level (training at 128 or 224 px, evaluation at
224, the default fast mode's 256-px working size) keeps scikit-image, the SLIC the checkpoints were trained
with and that the model card and tables were measured with, and there SLIC is a few percent of a run; the
large levels of --mode highres, where SLIC costs seconds, get OpenCV's 2.2x (with its default 2 threads;
about 1.8x on one core) with no measured loss of boundaries or of model quality.
The torch backend on the CPU is 3-6x slower than scikit-image: it is for GPUs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.segmentation import slic
from skimage.transform import resize as skimage_resize

from .slic_torch import slic_torch

SLIC_COMPACTNESS = 0.1
SLIC_SIGMA = 0.0
SLIC_BACKENDS = ("skimage", "opencv", "torch")  # "auto" picks one of these (resolve_backend)
# "contiguous": this project's grids (above); "authors": those of the authors' released code (authors_pyramid_labels).
SUPERPIXEL_SCHEMES = ("contiguous", "authors")
AUTO_OPENCV_MIN_PIXELS = 256 * 256  # "auto" on the CPU: opencv above this many pixels per level, skimage up to it
OPENCV_MIN_ELEMENT_PERCENT = 25  # OpenCV's default: segments under 25% of the mean size are merged
OPENCV_ITERATIONS = 10  # scikit-image's max_num_iter


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


def opencv_available() -> bool:
    """True when OpenCV's contrib module with SLIC (cv2.ximgproc) can be imported."""
    try:
        import cv2  # deferred: OpenCV's contrib SLIC is optional: this checks whether it is there
    except ImportError:
        return False
    return hasattr(cv2, "ximgproc")


def resolve_backend(backend: str = "auto", device: torch.device | str = "cpu", pixels: int = 0) -> str:
    """The backend that runs for `backend` ("auto" or one of SLIC_BACKENDS) on `device` for a level of `pixels`.

    auto: "torch" (batched) for CUDA tensors; on the CPU "opencv" above AUTO_OPENCV_MIN_PIXELS when
    cv2.ximgproc is there, else "skimage". Raises ValueError for an unknown name and RuntimeError when
    "opencv" is asked for without cv2.ximgproc.
    """
    if backend == "auto":
        if torch.device(device).type == "cuda":
            return "torch"
        return "opencv" if pixels > AUTO_OPENCV_MIN_PIXELS and opencv_available() else "skimage"
    if backend not in SLIC_BACKENDS:
        raise ValueError(f"unknown SLIC backend {backend!r}; choose auto, {', '.join(SLIC_BACKENDS)}")
    if backend == "opencv" and not opencv_available():
        raise RuntimeError("SLIC backend 'opencv' needs cv2.ximgproc (pip install opencv-contrib-python-headless); "
                           "or choose auto, skimage or torch")
    return backend


def _contiguous(labels: np.ndarray) -> np.ndarray:
    """Non-negative labels -> int64 labels 0 .. S-1, order kept (a linear-time np.unique(return_inverse))."""
    used = np.bincount(labels.ravel()) > 0
    return (np.cumsum(used) - 1)[labels].astype(np.int64)


def _slic_skimage(gray: np.ndarray, n_segments: int, compactness: float) -> np.ndarray:
    return slic(gray.astype(np.float64), n_segments=n_segments, compactness=compactness, sigma=SLIC_SIGMA,
                channel_axis=None, start_label=0)


def _slic_opencv(gray: np.ndarray, n_segments: int, compactness: float) -> np.ndarray:
    """cv2.ximgproc SLIC (not SLICO: fixed compactness) on the image rescaled to [0, 1] by its min and max
    as scikit-image does; on float32 input OpenCV's ruler is then the same number as the compactness."""
    import cv2  # deferred: OpenCV's contrib SLIC is optional (opencv_available)

    low, high = float(gray.min()), float(gray.max())
    scaled = ((gray - low) / (high - low) if high > low else np.zeros_like(gray)).astype(np.float32)
    h, w = gray.shape
    # OpenCV crashes the process (SIGSEGV) when the region is over about twice the short side (thin strips):
    # the region never exceeds the short side.
    region = min(max(1, round(math.sqrt(h * w / n_segments))), h, w)
    engine = cv2.ximgproc.createSuperpixelSLIC(scaled, algorithm=cv2.ximgproc.SLIC, region_size=region,
                                               ruler=float(compactness))
    engine.iterate(OPENCV_ITERATIONS)
    engine.enforceLabelConnectivity(OPENCV_MIN_ELEMENT_PERCENT)
    return engine.getLabels()


def _slic_torch_single(gray: np.ndarray, n_segments: int, compactness: float) -> np.ndarray:
    labels, _ = slic_torch(torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None], n_segments,
                           compactness)
    return labels[0].numpy()


_RUNNERS = {"skimage": _slic_skimage, "opencv": _slic_opencv, "torch": _slic_torch_single}


def slic_labels(gray: np.ndarray, n_segments: int | None = None, compactness: float = SLIC_COMPACTNESS,
                backend: str = "auto") -> np.ndarray:
    """SLIC label map (h, w) int64 with contiguous labels 0 .. S-1 for a gray image in [0, 1]."""
    if gray.ndim != 2:
        raise ValueError(f"slic_labels expects a 2-D gray image, got shape {gray.shape}")
    h, w = gray.shape
    runner = _RUNNERS[resolve_backend(backend, "cpu", h * w)]
    return _contiguous(runner(gray, n_segments or n_segments_for(h, w), compactness))


def _resize_levels(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """(B, 1, H, W) -> the image at each level's size, antialiased (the full size is the image itself)."""
    out = []
    for h, w in level_sizes(*image.shape[-2:], levels):
        out.append(image if (h, w) == tuple(image.shape[-2:]) else F.interpolate(
            image, size=(h, w), mode="bilinear", align_corners=False, antialias=True))
    return out


def image_pyramid_labels(gray: np.ndarray, levels: int = 3, compactness: float = SLIC_COMPACTNESS,
                         backend: str = "auto") -> list[np.ndarray]:
    """Label maps of one gray image (H, W) in [0, 1] at each level's size (cheap enough for DataLoader workers)."""
    image = torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None, None]  # (1, 1, H, W)
    return [slic_labels(level[0, 0].numpy(), compactness=compactness, backend=backend)
            for level in _resize_levels(image, levels)]


@dataclass
class SuperpixelPyramid:
    """Batched label maps, one entry per attention level.

    labels[l]: (B, h_l, w_l) int64, contiguous per image; counts[l]: (B,) number of superpixels per image.
    """

    labels: list[torch.Tensor]
    counts: list[torch.Tensor]

    @classmethod
    def from_gray(cls, gray: torch.Tensor, levels: int = 3, compactness: float = SLIC_COMPACTNESS,
                  backend: str = "auto", scheme: str = "contiguous") -> "SuperpixelPyramid":
        """SLIC of a batch of gray images (B, 1, H, W) in [0, 1] at every level.

        The torch backend (auto on CUDA) labels the whole batch in one call per level on the batch's device;
        the others run image by image on the CPU. scheme "authors": see authors_pyramid_labels.
        """
        if scheme == "authors":
            per_image = [authors_pyramid_labels(g[0].detach().cpu().double().numpy(), levels, compactness, backend)
                         for g in gray]
            return cls.stack(per_image).to(gray.device)
        if scheme not in SUPERPIXEL_SCHEMES:
            raise ValueError(f"unknown superpixel scheme {scheme!r}; choose {', '.join(SUPERPIXEL_SCHEMES)}")
        if resolve_backend(backend, gray.device) == "torch":
            labels, counts = [], []
            for level in _resize_levels(gray.detach().float(), levels):
                lab, cnt = slic_torch(level, n_segments_for(*level.shape[-2:]), compactness)
                labels.append(lab)
                counts.append(cnt)
            return cls(labels, counts)
        per_image = [image_pyramid_labels(g[0].detach().float().cpu().numpy(), levels, compactness, backend)
                     for g in gray]
        return cls.stack(per_image).to(gray.device)

    @classmethod
    def stack(cls, per_image: list[list[np.ndarray]]) -> "SuperpixelPyramid":
        """Collate per-image label lists (as made by image_pyramid_labels) into a batch."""
        levels = len(per_image[0])
        labels = [torch.stack([torch.from_numpy(img[lvl]) for img in per_image]) for lvl in range(levels)]
        counts = [lab.flatten(1).amax(dim=1) + 1 for lab in labels]  # (B,) superpixels per image at each level
        return cls(labels, counts)

    def to(self, device: torch.device | str) -> "SuperpixelPyramid":
        return SuperpixelPyramid([x.to(device) for x in self.labels], [x.to(device) for x in self.counts])


def valid_mask(counts: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) superpixel counts -> (B, size) bool, True for real superpixels, False for padding slots."""
    return torch.arange(size, device=counts.device)[None, :] < counts[:, None]


RESIZE_CHUNK_CHANNELS = 64  # ResizedMaps: channels resized and pooled at a time


@dataclass(frozen=True)
class ResizedMaps:
    """Feature maps (B, C_i, h_i, w_i) read as if each were resized bilinearly to `size` (H, W) and all were
    concatenated along the channels, (B, sum C_i, H, W), without ever building that stack: superpixel_pool
    resizes and pools them RESIZE_CHUNK_CHANNELS channels at a time. The transfer model's frozen matching
    features are 512 channels, so at full resolution their stack costs about 2 KB per pixel and side; chunked,
    a highres run holds 256 bytes per pixel of them at a time. Resizing is per channel, so the numbers are those
    of the whole stack."""

    maps: tuple[torch.Tensor, ...]
    size: tuple[int, int]

    def chunks(self) -> Iterator[torch.Tensor]:
        """The stack's channels in order, a few at a time: (B, <= RESIZE_CHUNK_CHANNELS, H, W) each."""
        for feature_map in self.maps:
            for start in range(0, feature_map.shape[1], RESIZE_CHUNK_CHANNELS):
                yield F.interpolate(feature_map[:, start:start + RESIZE_CHUNK_CHANNELS], size=self.size,
                                    mode="bilinear", align_corners=False)


def superpixel_pool(features: torch.Tensor | ResizedMaps, labels: torch.Tensor, size: int,
                    border: int = 0) -> torch.Tensor:
    """Channel-wise max of (B, C, H, W) features inside each superpixel -> (B, C, size) super-features.

    Padding slots (label never used in that image) are 0. Uses torch.scatter_reduce("amax"): no compiled
    extension, differentiable. border > 0 pools the interior pixels only (the authors' code drops a 1-pixel
    frame): a superpixel with no interior pixel then gets 0 too. `features` may also be ResizedMaps: the max is
    channel-wise, so each chunk is pooled apart and the results are concatenated, the numbers of the whole stack.
    """
    if isinstance(features, ResizedMaps):
        return torch.cat([superpixel_pool(chunk, labels, size, border) for chunk in features.chunks()], dim=1)
    b, c, h, w = features.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels {tuple(labels.shape)} do not match features {tuple(features.shape)}")
    if border > 0:
        features, labels = interior(features, border), interior(labels, border)
        h, w = max(0, h - 2 * border), max(0, w - 2 * border)
    index = labels.reshape(b, 1, h * w).expand(b, c, h * w)  # (B, C, HW) superpixel id of each pixel
    pooled = features.new_full((b, c, size), float("-inf"))
    # (B, C, S) per superpixel max
    pooled = pooled.scatter_reduce(2, index, features.reshape(b, c, h * w), reduce="amax", include_self=False)
    return torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))


def superpixel_mean(values: torch.Tensor, labels: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of (B, C, H, W) values inside each superpixel -> (B, C, size); padding slots are 0.

    Used to carry the reference's own a*b* per superpixel (the "carry_ab" option): a colour is averaged,
    not max-pooled like features.
    """
    b, c, h, w = values.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels {tuple(labels.shape)} do not match values {tuple(values.shape)}")
    index = labels.reshape(b, 1, h * w).expand(b, c, h * w)  # (B, C, HW) superpixel id of each pixel
    sums = values.new_zeros((b, c, size)).scatter_add(2, index, values.reshape(b, c, h * w))  # (B, C, size)
    counts = values.new_zeros((b, 1, size)).scatter_add(
        2, index[:, :1], values.new_ones((b, 1, h * w)))  # (B, 1, size) pixels per superpixel
    return sums / counts.clamp(min=1.0)


def superpixel_unpool(super_features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Broadcast (B, C, S) super-features back to the pixels of (B, H, W) labels -> (B, C, H, W)."""
    b, c, _ = super_features.shape
    h, w = labels.shape[-2:]
    index = labels.reshape(b, 1, h * w).expand(b, c, h * w)  # (B, C, HW)
    return super_features.gather(2, index).reshape(b, c, h, w)  # (B, C, H, W)


# ------------------------------------------------------------------ the authors' grids (ColorizerConfig.official)


def interior(x: torch.Tensor, border: int) -> torch.Tensor:
    """x[..., border:-border, border:-border] (empty when the map has no interior)."""
    h, w = x.shape[-2:]
    return x[..., border:max(border, h - border), border:max(border, w - border)]


def interior_counts(labels: torch.Tensor, border: int) -> torch.Tensor:
    """(B, H, W) contiguous labels -> (B,) 1 + the largest label with a pixel inside the `border` frame (0 if none).

    The authors' scatter_max returns that many slots: superpixels numbered past the last one that keeps an
    interior pixel are not in their attention at all (those numbered before it, without interior pixels, are,
    with zero features).
    """
    inside = interior(labels, border).flatten(1)  # (B, h_interior * w_interior)
    if inside.shape[1] == 0:
        return torch.zeros(labels.shape[0], dtype=labels.dtype, device=labels.device)
    return inside.amax(dim=1) + 1


def authors_pyramid_labels(gray: np.ndarray, levels: int = 3, compactness: float = SLIC_COMPACTNESS,
                           backend: str = "auto") -> list[np.ndarray]:
    """The grids of the authors' released code for one gray image (H, W) in [0, 1], contiguous labels 0 .. S-1.

    Each level is the image resized with scikit-image's (anti-aliased) `resize` to that level's size, in float64
    (SLIC is discontinuous: float32 moves pixels between superpixels), then scikit-image SLIC with sigma 0 and
    n_segments by this project's rule (the authors' 224 / 112 / 56 at 224 x 224). The authors' labels start at
    1; here they start at 0 and the empty slot 0 their attention keeps becomes SuperAttention's null token.
    `backend` "auto" is scikit-image, the authors' SLIC, at every size; another backend runs on the same levels.
    """
    if gray.ndim != 2:
        raise ValueError(f"authors_pyramid_labels expects a 2-D gray image, got shape {gray.shape}")
    runner = _RUNNERS["skimage" if backend == "auto" else resolve_backend(backend, "cpu")]
    gray = np.asarray(gray, dtype=np.float64)
    out = []
    for h, w in level_sizes(*gray.shape, levels):
        level = skimage_resize(gray, (h, w))  # (h, w) float64; the authors resize level 0 too (to its own size)
        out.append(_contiguous(runner(level, n_segments_for(h, w), compactness)))
    return out
