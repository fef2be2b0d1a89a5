"""Training-free exemplar colorization baselines that run anywhere (Table 2's measured comparison rows).

Every baseline is a colorizer with the evaluator's interface, `colorizer(target_l, reference) -> rgb`:
target_l is the gray target's CIE L* (H, W) in [0, 100], reference an sRGB image (h, w, 3) in [0, 1];
the output is sRGB (H, W, 3) float in [0, 1], rebuilt from the target's own L* and the transferred a*b*
(so, as for the network, only colour is predicted). The ground truth's colours are never seen.

* `reinhard` -- a Reinhard-style global colour statistics transfer, on a*b* only, in CIE Lab (Reinhard et
  al. 2001 used l-alpha-beta; Lab is the colour space of everything else here). Reinhard's method rescales
  the channels of a colour source; a gray target has none to rescale, so this is an L*-driven extension of
  it (see `reinhard_ab`), not Reinhard's algorithm as published.
* `welsh` -- Welsh, Ashikhmin & Mueller 2002 (the paper's [10]): luminance remapping, jittered samples
  of the reference, each target pixel takes the a*b* of the sample whose luminance and 5x5 luminance
  standard deviation are closest (50% / 50%).
* `SuperpixelFeatureTransfer` -- the authors' training-free predecessor (the paper's [17], Carrillo et al.,
  VISAPP 2022): non-local matching of superpixel deep features; each target superpixel takes the mean
  a*b* of its best-matching reference superpixel. Offline, the deep features are EfficientNet-Lite0's
  (first three levels), not the VGG19 features of [17], whose weights cannot be had here.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import uniform_filter
from skimage.color import rgb2lab

from ..core.color import combine_l_ab
from ..model.encoders import build_color_encoder
from ..superpixels.pyramid import slic_labels, superpixel_pool, superpixel_unpool

__all__ = ["SuperpixelFeatureTransfer", "compose", "jittered_samples", "reference_lab", "reinhard", "reinhard_ab",
           "welsh", "welsh_ab"]


def _check_inputs(target_l: np.ndarray, reference: np.ndarray) -> None:
    if target_l.ndim != 2:
        raise ValueError(f"target_l must be (H, W) L* in [0, 100], got shape {target_l.shape}")
    if reference.ndim != 3 or reference.shape[2] != 3:
        raise ValueError(f"reference must be (h, w, 3) sRGB in [0, 1], got shape {reference.shape}")


def reference_lab(reference: np.ndarray) -> np.ndarray:
    """(h, w, 3) sRGB in [0, 1] (or uint8) -> (h, w, 3) CIE Lab (D65)."""
    ref = np.asarray(reference)
    ref = ref.astype(np.float64) / 255.0 if ref.dtype == np.uint8 else np.clip(ref.astype(np.float64), 0.0, 1.0)
    return rgb2lab(ref)


def compose(target_l: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The target's own L* (H, W) with a*b* (H, W, 2) -> sRGB (H, W, 3) float32 in [0, 1], gamut-clipped.

    Uses the network's recombination (`sa_lib.core.color.combine_l_ab`), so baselines and model outputs are
    rebuilt the same way.
    """
    l_t = torch.from_numpy(np.asarray(target_l, dtype=np.float32))[None, None]  # (1, 1, H, W)
    ab_t = torch.from_numpy(np.ascontiguousarray(ab, dtype=np.float32)).permute(2, 0, 1)[None]  # (1, 2, H, W)
    return combine_l_ab(l_t, ab_t)[0].permute(1, 2, 0).numpy()  # (H, W, 3)


# --------------------------------------------------------------------------------------------- Reinhard


def reinhard_ab(target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """a*b* (H, W, 2) with exactly the reference's per-channel a*b* mean and standard deviation.

    Reinhard et al. rescale each channel of the source: out = mu_ref + sigma_ref / sigma_src * (x - mu_src).
    A gray target has no a*b* spread to rescale, so its one varying channel, L*, carries it: for c in
    {a*, b*}, out_c = mu_c + sign(rho_c) * sigma_c * (L - mu_L) / sigma_L, where mu_c, sigma_c are the
    reference's statistics of c and rho_c the correlation of L* and c in the reference (so that, e.g., a
    reference whose bright parts are bluer gives a target whose bright parts are bluer). A flat target gets
    the reference's mean a*b*. The statistics are global: no spatial information is used. This L*-driven
    extension to gray targets is this project's, not part of Reinhard et al. 2001.
    """
    _check_inputs(target_l, reference)
    lab = reference_lab(reference).reshape(-1, 3)  # (N_ref, 3)
    l_ref, ab_ref = lab[:, 0], lab[:, 1:]
    mean, std = ab_ref.mean(axis=0), ab_ref.std(axis=0)
    l_t = np.asarray(target_l, dtype=np.float64)
    sigma_l = l_t.std()
    if sigma_l < 1e-6:
        return np.broadcast_to(mean, (*l_t.shape, 2)).copy()
    z = (l_t - l_t.mean()) / sigma_l  # (H, W) standardised target luminance
    l_centred = l_ref - l_ref.mean()
    sign = np.where((l_centred[:, None] * (ab_ref - mean)).sum(axis=0) < 0, -1.0, 1.0)  # (2,) sign of rho_c
    return mean + sign * std * z[..., None]


def reinhard(target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Reinhard-style (L*-driven) global statistics transfer on a*b* (see `reinhard_ab`), as sRGB."""
    return compose(target_l, reinhard_ab(target_l, reference))


# ------------------------------------------------------------------------------------------------ Welsh


def _local_std(l_star: np.ndarray, window: int) -> np.ndarray:
    """Standard deviation of L* over a window x window neighbourhood of each pixel (mirrored borders)."""
    mean = uniform_filter(l_star, size=window, mode="reflect")
    mean_sq = uniform_filter(l_star * l_star, size=window, mode="reflect")
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def jittered_samples(height: int, width: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) (row, col) positions: one uniformly drawn pixel in each cell of a grid of about n_samples cells."""
    rows = max(1, min(height, round(math.sqrt(n_samples * height / width))))
    cols = max(1, min(width, round(n_samples / rows)))
    r_edges = np.linspace(0, height, rows + 1).astype(int)
    c_edges = np.linspace(0, width, cols + 1).astype(int)
    points = [(rng.integers(r0, max(r0 + 1, r1)), rng.integers(c0, max(c0 + 1, c1)))
              for r0, r1 in itertools.pairwise(r_edges) for c0, c1 in itertools.pairwise(c_edges)]
    return np.asarray(points, dtype=np.int64)


def welsh_ab(target_l: np.ndarray, reference: np.ndarray, n_samples: int = 200, window: int = 5,
             weight_luminance: float = 0.5, seed: int = 0) -> np.ndarray:
    """a*b* (H, W, 2) by Welsh et al. 2002's global matching of luminance and neighbourhood statistics.

    1. Luminance remapping: the reference's L* is shifted and scaled to the target's mean and std, so the
       two luminance histograms are comparable.
    2. About `n_samples` reference pixels are drawn on a jittered grid (one per cell; seeded).
    3. Each target pixel takes the a*b* of the sample minimising
       w * (L_t - L_s)^2 + (1 - w) * (sigma_t - sigma_s)^2, with sigma the L* std over a `window` x `window`
       neighbourhood and w = `weight_luminance` (Welsh's 50% / 50%).
    """
    _check_inputs(target_l, reference)
    lab = reference_lab(reference)
    l_ref, ab_ref = lab[..., 0], lab[..., 1:]
    l_t = np.asarray(target_l, dtype=np.float64)
    sigma_ref, sigma_t = l_ref.std(), l_t.std()
    scale = sigma_t / sigma_ref if sigma_ref > 1e-6 else 1.0
    l_ref = (l_ref - l_ref.mean()) * scale + l_t.mean()

    points = jittered_samples(*l_ref.shape, n_samples, np.random.default_rng(seed))
    rows, cols = points[:, 0], points[:, 1]
    sample_stats = np.stack([l_ref[rows, cols], _local_std(l_ref, window)[rows, cols]], axis=1)  # (n, 2)
    sample_ab = ab_ref[rows, cols]  # (n, 2)
    target_stats = np.stack([l_t, _local_std(l_t, window)], axis=-1).reshape(-1, 2)  # (H*W, 2)
    weights = np.array([weight_luminance, 1.0 - weight_luminance])

    best = np.empty(len(target_stats), dtype=np.int64)
    for start in range(0, len(target_stats), 8192):  # chunks keep the (chunk, n) distance matrix small
        chunk = target_stats[start:start + 8192]
        distance = (((chunk[:, None, :] - sample_stats[None]) ** 2) * weights).sum(axis=2)  # (chunk, n)
        best[start:start + 8192] = distance.argmin(axis=1)
    return sample_ab[best].reshape(*l_t.shape, 2)  # (H, W, 2)


def welsh(target_l: np.ndarray, reference: np.ndarray, n_samples: int = 200, window: int = 5,
          seed: int = 0) -> np.ndarray:
    """Welsh et al. 2002 (the paper's [10]) colour transfer (see `welsh_ab`), as sRGB."""
    return compose(target_l, welsh_ab(target_l, reference, n_samples=n_samples, window=window, seed=seed))


# ------------------------------------------------------------------------- Carrillo et al. 2022 ([17])


def _super_features(encoder, gray: np.ndarray, labels: np.ndarray, levels: Sequence[int],
                    device: torch.device) -> torch.Tensor:
    """(S, D) per-superpixel features: at each level, max-pooled, centred over channels, L2-normalised
    (eq. 3 of the super-attention paper), then the levels concatenated and scaled by 1/sqrt(levels), so a
    dot product is the mean over levels of the per-level cosine similarities."""
    h, w = gray.shape
    rgb = torch.from_numpy(np.asarray(gray, dtype=np.float32)).to(device)[None, None].expand(1, 3, h, w)  # (1, 3, H, W)
    label_t = torch.from_numpy(labels).to(device)[None]  # (1, H, W)
    size = int(labels.max()) + 1
    maps = encoder(rgb, {level: (h, w) for level in levels})
    parts = []
    for level in levels:
        pooled = superpixel_pool(maps[level], label_t, size)[0]  # (C, S)
        pooled = pooled - pooled.mean(dim=0, keepdim=True)
        parts.append(F.normalize(pooled, dim=0))
    return torch.cat(parts, dim=0).T / math.sqrt(len(levels))  # (S, sum C)


class SuperpixelFeatureTransfer:
    """The training-free colour transfer of the paper's [17] (Carrillo, Clement, Bugeau, VISAPP 2022).

    Both images are cut into SLIC superpixels (`sa_lib.superpixels.pyramid.slic_labels` on L*/100, the colorizer's
    settings). Deep features of both luminances (the gray target, and the reference's L*, so the two are
    compared in the same domain) are max-pooled per superpixel at several encoder levels, centred and
    L2-normalised; the non-local similarity of a target and a reference superpixel is their mean cosine
    similarity over the levels. Each target superpixel takes the mean a*b* of its most similar reference
    superpixel; the target's L* is kept. No post-processing. Substitution: [17] uses VGG19 features; they
    cannot be had offline, so this uses EfficientNet-Lite0's first three levels (`encoder` can name
    "vgg19" where its weights are available).
    """

    def __init__(self, encoder: str = "effnet_lite0", levels: Sequence[int] = (0, 1, 2),
                 device: str | torch.device = "cpu", pretrained: bool = True) -> None:
        """`pretrained=False` (profile paper-smoke): the encoder with random weights drawn from seed 0."""
        self.levels = tuple(levels)
        self.device = torch.device(device)
        self.encoder = build_color_encoder(encoder, pretrained=pretrained, max_level=max(self.levels),
                                           seed=0).to(self.device)

    def match(self, target_l: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(target labels (H, W), reference labels (h, w), best reference superpixel of each target one (S_T,))."""
        _check_inputs(target_l, reference)
        gray_t = np.clip(np.asarray(target_l, dtype=np.float64) / 100.0, 0.0, 1.0)
        gray_r = np.clip(reference_lab(reference)[..., 0] / 100.0, 0.0, 1.0)
        labels_t, labels_r = slic_labels(gray_t), slic_labels(gray_r)
        with torch.inference_mode():
            f_t = _super_features(self.encoder, gray_t, labels_t, self.levels, self.device)  # (S_T, D)
            f_r = _super_features(self.encoder, gray_r, labels_r, self.levels, self.device)  # (S_R, D)
            best = (f_t @ f_r.T).argmax(dim=1)  # (S_T,) non-local best match
        return labels_t, labels_r, best.cpu().numpy()

    def ab(self, target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """a*b* (H, W, 2): each target superpixel gets the mean a*b* of its best reference superpixel."""
        labels_t, labels_r, best = self.match(target_l, reference)
        ab_ref = reference_lab(reference)[..., 1:].reshape(-1, 2)  # (h*w, 2)
        counts = np.bincount(labels_r.ravel())  # (S_R,) pixels per reference superpixel
        mean_ab = np.stack([np.bincount(labels_r.ravel(), weights=ab_ref[:, c]) / counts for c in (0, 1)], 1)
        per_target = torch.from_numpy(mean_ab[best].T.copy())[None]  # (1, 2, S_T)
        return superpixel_unpool(per_target, torch.from_numpy(labels_t)[None])[0].permute(1, 2, 0).numpy()  # (H, W, 2)

    def __call__(self, target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Colorize: sRGB (H, W, 3) in [0, 1] from the target's L* and the transferred a*b*."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return compose(target_l, self.ab(target_l, reference))
