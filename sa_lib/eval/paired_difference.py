"""How sure a difference between two methods on the same pairs is: the mean of the per-pair differences and its
paired bootstrap interval (the pairs resampled with replacement, the same draws for every metric).

The inputs are two per-pair CSVs of `sa-evaluate` (one row per target/reference pair; `write_per_pair_csv`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import UsageError

PAIR_KEY = ("target", "reference")
COMPARED_METRICS = ("psnr_ab", "ciede2000", "ssim", "his_pred_ref", "colorfulness")


@dataclass(frozen=True)
class PairedDifference:
    """mean(a - b) over the pairs and its bootstrap interval [low, high] at `level`."""

    metric: str
    pairs: int
    mean: float
    low: float
    high: float
    level: float


def read_per_pair(path: Path | str) -> dict[tuple[str, str], dict[str, str]]:
    """(target, reference) -> the row of a per-pair CSV."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"per-pair scores not found: {path}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not set(PAIR_KEY) <= set(rows[0]):
        raise UsageError(f"{path} is not a per-pair CSV of sa-evaluate (no target/reference columns)")
    return {(row["target"], row["reference"]): row for row in rows}


def paired_differences(a: Path | str, b: Path | str, metrics: tuple[str, ...] = COMPARED_METRICS,
                       draws: int = 5000, level: float = 0.95, seed: int = 0) -> list[PairedDifference]:
    """a - b on the pairs both CSVs score, for each metric both have a value for on every such pair."""
    if draws < 1 or not 0 < level < 1:
        raise UsageError(f"draws must be >= 1 and level in (0, 1), got {draws} and {level}")
    rows_a, rows_b = read_per_pair(a), read_per_pair(b)
    keys = sorted(set(rows_a) & set(rows_b))
    if not keys:
        raise UsageError(f"{a} and {b} share no pair")
    draw = np.random.default_rng(seed).integers(0, len(keys), size=(draws, len(keys)))  # (draws, pairs)
    tail = (1 - level) / 2 * 100  # percent below the interval, and above it
    results = []
    for metric in metrics:
        try:
            diff = np.array([float(rows_a[k][metric]) - float(rows_b[k][metric]) for k in keys])
        except (KeyError, ValueError):  # a column one of them lacks, or an empty cell (an unavailable metric)
            continue
        means = diff[draw].mean(axis=1)  # (draws,)
        results.append(PairedDifference(metric, len(keys), float(diff.mean()), float(np.percentile(means, tail)),
                                        float(np.percentile(means, 100 - tail)), level))
    return results
