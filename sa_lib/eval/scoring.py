"""Scoring one method on the evaluation pairs: a colorizer run on them (`evaluate_colorizer`, with each pair's
reference or the ground truth as reference) or a folder of another method's outputs (`evaluate_folder`, its
files checked first), each output scored by section 5's metrics (`score`; conventions in docs/metrics.md) into a
`MethodResult` of per-pair rows.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import metrics
from ..core.devices import resolve_device
from ..core.errors import UsageError
from ..core.files import atomic_write
from ..data.image_io import IMAGE_SUFFIXES, ImageInputError, read_image
from ..data.pairs import Pair
from ..model.checkpoint import load_checkpoint
from ..model.predict import predict_rgb
from .pair_images import TOP1, PairImages, PairStream

ColorizerFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
OUTPUT_PATTERN = f"<target stem>{{{','.join(IMAGE_SUFFIXES)}}}"  # how a folder's outputs must be named


class EvaluationError(RuntimeError):
    """Something the evaluation needs is missing or broken (exit code 1)."""


def model_colorizer(checkpoint: str | Path, device: str = "auto", slic: str | None = None,
                    flip_average: bool | None = None, chroma_gain: float | None = None,
                    blend: bool | None = None) -> ColorizerFn:
    """A checkpoint (shipped name or .safetensors path) as a colorizer: ab predicted at the given size and
    recombined with the target's own L* (the `sa-colorize` recombination). Superpixels come from `slic`
    (a backend or "auto"), by default the backend the model was trained with (its config's slic_backend).
    `flip_average`, `chroma_gain`, `blend`: None keeps the checkpoint's (sa_lib.model.predict.predict_ab)."""
    model = load_checkpoint(checkpoint, device=resolve_device(device))
    dev = next(model.parameters()).device
    backend = slic or model.config.slic_backend

    def colorize(target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
        l_star = torch.from_numpy(np.ascontiguousarray(target_l, dtype=np.float32))[None, None].to(dev)  # (1,1,H,W)
        # (1, 3, H', W')
        ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).permute(2, 0, 1)[None].to(dev)
        rgb = predict_rgb(model, l_star, ref, slic_backend=backend, flip_average=flip_average,
                          chroma_gain=chroma_gain, blend=blend)[0][0]  # (3, H, W)
        return rgb.permute(1, 2, 0).cpu().numpy()  # (H, W, 3)

    return colorize


def find_outputs(folder: Path, pairs: Sequence[Pair]) -> tuple[dict[str, Path], list[str], list[str]]:
    """(key -> output file, missing pair keys, extra image files) of a folder of another method's outputs.

    Two files for one pair, or no file for any pair, is an EvaluationError.
    """
    if not folder.is_dir():
        raise UsageError(f"outputs folder not found: {folder}")
    files: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            files.setdefault(path.stem, []).append(path)
    keys = {p.key for p in pairs}
    ambiguous = [stem for stem, found in files.items() if stem in keys and len(found) > 1]
    if ambiguous:
        raise EvaluationError(f"{folder}: several files for {ambiguous[0]!r} "
                              f"({', '.join(p.name for p in files[ambiguous[0]])}); keep one")
    found = {key: files[key][0] for key in keys if key in files}
    if pairs and not found:
        raise EvaluationError(f"{folder}: no output matches a pair; expected one image per pair named "
                              f"{OUTPUT_PATTERN} (e.g. {pairs[0].key}.png), as `sa-colorize --pairs` writes them")
    missing = [p.key for p in pairs if p.key not in found]
    extra = [path.name for stem, paths in files.items() if stem not in keys for path in paths]
    return found, missing, extra


def check_output_folders(folders: dict[str, Path], pairs: Sequence[Pair]) -> None:
    """The cheap checks of folder methods, made before any computation: each folder exists, matches at least
    one pair, has one file per pair, and each of its outputs opens as an image (header; PNG checksums)."""
    for name, folder in folders.items():
        found, _, _ = find_outputs(Path(folder), pairs)
        for path in found.values():
            try:
                with Image.open(path) as image:
                    image.verify()
            except Exception as err:  # Pillow's plugins raise many kinds of errors on a broken file
                reason = " ".join(str(err).split())[:160]
                raise EvaluationError(f"--method {name}: {path} is not a readable image "
                                      f"({type(err).__name__}: {reason})") from None


def _read_output(path: Path, size: int) -> np.ndarray:
    """Another method's output as (size, size, 3) float32 in [0, 1] (resized bicubically if needed)."""
    try:
        rgb = read_image(path, role="output")
    except ImageInputError as err:
        raise EvaluationError(str(err)) from None
    if rgb.shape[:2] == (size, size):
        return rgb
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0



METRIC_KEYS = ("ssim", "lpips", "lpips_vgg", "his_pred_ref", "his_gt_ref", "psnr_ab", "ciede2000", "colorfulness")


def score(pred: np.ndarray, truth: np.ndarray, reference: np.ndarray,
          lpips: metrics.LPIPSMetric | None, reference_histogram: np.ndarray | None = None,
          his_gt_ref: float | None = None, lpips_vgg: metrics.LPIPSMetric | None = None) -> dict[str, float]:
    """Every per-pair metric of one output (NaN for LPIPS(alex) / LPIPS(vgg) when unavailable or not given).

    `reference_histogram` (ab_histogram of the reference) and `his_gt_ref` may be passed when known: they
    depend on the pair only, not on the method.
    """
    pred = np.clip(np.asarray(pred, dtype=np.float64), 0.0, 1.0)
    lpips_value = lpips_vgg_value = float("nan")
    if lpips is not None and lpips.available():
        lpips_value = lpips(pred, truth)
    if lpips_vgg is not None and lpips_vgg.available():
        lpips_vgg_value = lpips_vgg(pred, truth)
    ref_hist = metrics.ab_histogram(reference) if reference_histogram is None else reference_histogram
    if his_gt_ref is None:
        his_gt_ref = metrics.histogram_intersection(metrics.ab_histogram(truth), ref_hist)
    return {
        "ssim": metrics.ssim(pred, truth),
        "lpips": lpips_value,
        "lpips_vgg": lpips_vgg_value,
        "his_pred_ref": metrics.histogram_intersection(metrics.ab_histogram(pred), ref_hist),
        "his_gt_ref": his_gt_ref,
        "psnr_ab": metrics.psnr_ab(pred, truth),
        "ciede2000": metrics.ciede2000(pred, truth),
        "colorfulness": metrics.colorfulness(pred),
    }


@dataclass
class MethodResult:
    """Per-pair scores of one method with one kind of reference, and what its folder lacked or had extra."""

    name: str
    reference: str  # TOP1 or GTREF
    rows: list[dict] = field(default_factory=list)  # {"target", "reference", *METRIC_KEYS}
    n_total: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    seconds: float = 0.0
    folder: Path | None = None  # the outputs folder of a folder method

    def summary(self) -> dict[str, float]:
        """Means over the scored pairs; dHIS from the HIS lists of those same pairs."""
        if not self.rows:
            return {"pairs": 0}
        out = {key: float(np.mean([r[key] for r in self.rows])) for key in METRIC_KEYS}
        out["his_ref"] = out.pop("his_gt_ref")
        out["delta_his"] = metrics.delta_his([r["his_pred_ref"] for r in self.rows],
                                             [r["his_gt_ref"] for r in self.rows])
        out["pairs"] = len(self.rows)
        return out


def evaluate_colorizer(name: str, colorizer: ColorizerFn, data: Sequence[PairImages],
                       lpips: metrics.LPIPSMetric | None = None, reference: str = TOP1,
                       lpips_vgg: metrics.LPIPSMetric | None = None) -> MethodResult:
    """Run a colorizer on every pair (with its ranked reference, or with the ground truth as reference)."""
    result = MethodResult(name, reference, n_total=len(data))
    start = time.perf_counter()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    # One image at a time is too small a job to share: on this project's loaded 2-core machine the smoke
    # ablation took 10.8 s with torch's 2 threads and 0.85 s with one.
    torch.set_num_threads(1)
    try:
        for item in data:
            ref, ref_hist, his_ref = item.scoring_context(reference)
            pred = colorizer(item.target_l, ref)
            if pred.shape != item.truth.shape:
                raise EvaluationError(f"{name} returned shape {pred.shape} for {item.pair.target}, "
                                      f"expected {item.truth.shape}")
            result.rows.append({"target": item.pair.target, "reference": item.pair.reference if reference == TOP1
                                else item.pair.target, **score(pred, item.truth, ref, lpips, ref_hist, his_ref,
                                                                lpips_vgg)})
    finally:
        torch.set_num_threads(threads)
    result.seconds = time.perf_counter() - start
    return result


def evaluate_folder(name: str, folder: Path | str, data: Sequence[PairImages],
                    lpips: metrics.LPIPSMetric | None = None,
                    lpips_vgg: metrics.LPIPSMetric | None = None) -> MethodResult:
    """Score a folder of another method's outputs (top-1 references); missing/extra files are recorded."""
    found, missing, extra = find_outputs(Path(folder), data.pairs if isinstance(data, PairStream)
                                         else [d.pair for d in data])
    result = MethodResult(name, TOP1, n_total=len(data), missing=missing, extra=extra, folder=Path(folder))
    start = time.perf_counter()
    for item in data:
        if item.pair.key in found:
            pred = _read_output(found[item.pair.key], item.truth.shape[0])
            ref, ref_hist, his_ref = item.scoring_context(TOP1)
            result.rows.append({"target": item.pair.target, "reference": item.pair.reference,
                                **score(pred, item.truth, ref, lpips, ref_hist, his_ref, lpips_vgg)})
    result.seconds = time.perf_counter() - start
    return result


def folder_report(result: MethodResult, folder: Path | str) -> list[str]:
    """One line per problem of a folder method: the pair outputs it lacks, the files it has for no pair."""
    lines = []
    if result.missing:
        shown = ", ".join(result.missing[:5]) + (", ..." if len(result.missing) > 5 else "")
        lines.append(f"{result.name}: {len(result.missing)} of {result.n_total} pair outputs missing in {folder} "
                     f"({shown}); scored on the {len(result.rows)} present, HIS_ref on the same pairs")
    if result.extra:
        shown = ", ".join(result.extra[:5]) + (", ..." if len(result.extra) > 5 else "")
        lines.append(f"{result.name}: {len(result.extra)} extra file(s) in {folder} match no pair ({shown}); ignored")
    return lines


def write_per_pair_csv(result: MethodResult, path: Path) -> None:
    """The per-pair scores of one method (LPIPS empty when unavailable)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["target", "reference", *METRIC_KEYS])
    for row in result.rows:
        writer.writerow([row["target"], row["reference"],
                         *("" if math.isnan(row[k]) else f"{row[k]:.6g}" for k in METRIC_KEYS)])
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))
