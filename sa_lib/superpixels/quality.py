"""Quality of a superpixel label map against a reference segmentation: boundary recall and undersegmentation.

Used to compare the SLIC backends (sa_lib.superpixels.pyramid) with scikit-image's SLIC, the authors' choice, and
with object masks. Both functions take two (H, W) integer label maps of the same shape; label values need
not be contiguous.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def boundary_map(labels: np.ndarray) -> np.ndarray:
    """(H, W) bool, True where a pixel's right or lower neighbour has another label.

    One pixel per boundary crossing (not two), so a straight edge between two regions is one pixel thick.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"label maps must be 2-D, got shape {labels.shape}")
    edges = np.zeros(labels.shape, dtype=bool)
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edges[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edges


def _check_pair(labels: np.ndarray, reference_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, reference_labels = np.asarray(labels), np.asarray(reference_labels)
    if labels.shape != reference_labels.shape or labels.ndim != 2:
        raise ValueError(f"label maps must be 2-D and of one shape, got {labels.shape} and {reference_labels.shape}")
    return labels, reference_labels


def boundary_recall(labels: np.ndarray, reference_labels: np.ndarray, tolerance: int = 2) -> float:
    """Fraction of the reference's boundary pixels that lie within `tolerance` px of a boundary of `labels`.

    Distance is the chessboard distance (a (2t+1) x (2t+1) window, as in Stutz et al.'s superpixel
    benchmark). 1.0 when the reference has no boundary at all.
    """
    labels, reference_labels = _check_pair(labels, reference_labels)
    reference_edges = boundary_map(reference_labels)
    total = int(reference_edges.sum())
    if total == 0:
        return 1.0
    edges = boundary_map(labels)
    if tolerance > 0:
        edges = ndimage.binary_dilation(edges, structure=np.ones((3, 3), bool), iterations=tolerance)
    return float((edges & reference_edges).sum() / total)


def undersegmentation_error(labels: np.ndarray, reference_labels: np.ndarray) -> float:
    """Undersegmentation error of Neubert & Protzel (2012), "Superpixel benchmark and comparison".

    UE = (1 / N) * sum over reference segments G of sum over superpixels S touching G of
    min(|S and G|, |S minus G|): each superpixel that leaks out of a reference segment is charged the smaller
    of its part inside and its part outside. 0 for a perfect fit; N is the number of pixels.
    """
    labels, reference_labels = _check_pair(labels, reference_labels)
    _, s = np.unique(labels.ravel(), return_inverse=True)
    _, g = np.unique(reference_labels.ravel(), return_inverse=True)
    size = np.bincount(s)  # (S,) pixels per superpixel
    # overlap of every (superpixel, reference segment) pair that touches, as a sparse contingency table
    pair, overlap = np.unique(s.astype(np.int64) * (g.max() + 1) + g, return_counts=True)
    outside = size[pair // (g.max() + 1)] - overlap
    return float(np.minimum(overlap, outside).sum() / labels.size)
