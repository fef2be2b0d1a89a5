"""Evaluation pairs: a target photo and its reference (a whole photo or a box of one), as listed in a pairs CSV.

The CSV is what `sa-references` writes (data/demo/eval_pairs.csv, <data>/coco/eval_pairs.csv): columns
target,reference[,ref_x,ref_y,ref_w,ref_h,...]. One reader and one crop rule serve the evaluator, the
attention figures and the benchmarks, so every consumer sees the same reference for a pair.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .image_io import read_image

Box = tuple[int, int, int, int]  # (x, y, w, h) in reference pixels


class PairsError(RuntimeError):
    """A pairs file that cannot be read: missing, malformed, or naming an image that is nowhere."""


@dataclass(frozen=True)
class Pair:
    """One pair: target and reference file names as written in the CSV, where they were found, the box."""

    target: str
    reference: str
    box: Box | None  # crop of the reference; None for the whole image
    target_path: Path
    reference_path: Path
    output_key: str | None = None  # set by read_pairs when the target appears in several rows

    @property
    def key(self) -> str:
        """The name another method's output for this pair must have (without suffix): the target's stem, or
        `<target stem>__<reference stem>` for a target that appears in several rows (see `output_keys`)."""
        return self.output_key or Path(self.target).stem

    @property
    def name(self) -> str:
        """Human-readable "target <- reference" (with "(crop)" for a box), for menus and titles."""
        return f"{Path(self.target).stem} <- {Path(self.reference).stem}{' (crop)' if self.box else ''}"


def _locate(name: str, folder: Path, csv_dir: Path) -> Path:
    """An image named in a pairs CSV: in the profile's image folder, else relative to the CSV."""
    for candidate in (folder / name, csv_dir / name):
        if candidate.is_file():
            return candidate
    raise PairsError(f"image {name!r} of the pairs file is neither in {folder} nor in {csv_dir}")


def output_keys(rows: list[tuple[str, str]]) -> list[str]:
    """The output name (no suffix) of each (target, reference) row: the target's stem, or
    `<target stem>__<reference stem>` where several rows share a target (one target, several references).
    `sa-colorize --pairs` writes these names and the evaluator reads them. PairsError if two rows still clash."""
    stems = [Path(target).stem for target, _ in rows]
    keys = [stem if stems.count(stem) == 1 else f"{stem}__{Path(reference).stem}"
            for stem, (_, reference) in zip(stems, rows)]
    repeated = next((k for k in keys if keys.count(k) > 1), None)
    if repeated is not None:
        raise PairsError(f"two pairs would share the output name {repeated!r} (same target and reference names)")
    return keys


def read_pair_rows(pairs_csv: Path | str, limit: int | None = None) -> list[tuple[str, str, Box | None]]:
    """(target, reference, box) as written in a CSV with a target,reference[,ref_x,ref_y,ref_w,ref_h] header
    (the first `limit` rows); PairsError, one line, for a file that is not one."""
    pairs_csv = Path(pairs_csv)
    if not pairs_csv.is_file():
        raise PairsError(f"pairs file not found: {pairs_csv}")
    try:
        with open(pairs_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise PairsError(f"{pairs_csv}: not a UTF-8 CSV file ({err})") from None
    if not rows or not {"target", "reference"} <= set(rows[0]):
        raise PairsError(f"{pairs_csv}: needs a header with target,reference columns and at least one row")
    out = []
    for number, row in enumerate(rows[:limit] if limit else rows, start=2):
        if not row.get("target") or not row.get("reference"):
            raise PairsError(f"{pairs_csv}: line {number} lacks a target or a reference")
        try:
            box = tuple(int(row[k]) for k in ("ref_x", "ref_y", "ref_w", "ref_h")) if row.get("ref_w") else None
        except (TypeError, ValueError):
            raise PairsError(f"{pairs_csv}: line {number} has a malformed reference box") from None
        out.append((row["target"], row["reference"], box))
    return out


def read_pairs(pairs_csv: Path | str, target_dir: Path | str, reference_dir: Path | str,
               limit: int | None = None) -> list[Pair]:
    """The pairs of a CSV (the first `limit`); a target may appear in several rows with different references
    (its outputs are then told apart by the reference's name: `output_keys`)."""
    pairs_csv = Path(pairs_csv)
    pairs = [Pair(target, reference, box, _locate(target, Path(target_dir), pairs_csv.parent),
                  _locate(reference, Path(reference_dir), pairs_csv.parent))
             for target, reference, box in read_pair_rows(pairs_csv, limit)]
    try:
        keys = output_keys([(p.target, p.reference) for p in pairs])
    except PairsError as err:
        raise PairsError(f"{pairs_csv}: {err}") from None
    return [p if key == Path(p.target).stem else replace(p, output_key=key) for p, key in zip(pairs, keys)]


def clipped_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, upper, right, lower) of an (x, y, w, h) box clipped to a width x height image, never empty
    (as sa_lib.data.references crops object candidates)."""
    x, y, bw, bh = box
    x0, y0 = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
    return x0, y0, max(min(x + bw, width), x0 + 1), max(min(y + bh, height), y0 + 1)


def crop_reference(image: Image.Image | np.ndarray, box: Box | None) -> Image.Image | np.ndarray:
    """The reference as the pair uses it: its box crop (clipped) or the whole image; PIL image or (H, W, C)."""
    if box is None:
        return image
    if isinstance(image, Image.Image):
        return image.crop(clipped_box(box, *image.size))
    left, upper, right, lower = clipped_box(box, image.shape[1], image.shape[0])
    return image[upper:lower, left:right]


def crop_resized(rgb: np.ndarray, box: Box | None, size: int) -> np.ndarray:
    """(size, size, 3) uint8: an (H, W, 3) uint8 image cut to its box (clipped) and resized bicubic to the
    square size the paper trains and ranks at (sa_lib.train.loop, sa_lib.data.references)."""
    return np.array(Image.fromarray(crop_reference(rgb, box)).resize((size, size), Image.BICUBIC))  # writable


def load_full_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """(target, reference) at their own resolution as (H, W, 3) float32 sRGB in [0, 1] (EXIF applied, modes
    handled by sa_lib.data.image_io); the reference cut to its box."""
    target = read_image(pair.target_path, role="target")
    return target, crop_reference(read_image(pair.reference_path, role="reference"), pair.box)
