"""One evaluator for every method: section 5's metrics over an evaluation pair file, Tables 1 and 2.

    sa-evaluate --profile demo                 # shipped demo checkpoints, committed demo pairs (CPU, minutes)
    sa-evaluate --profile smoke                # 4 pairs at 96 px (tests, notebooks)
    sa-evaluate --profile paper                # COCO val pairs + checkpoints/paper-{none,standard,super}
    sa-evaluate --profile demo --method deep_exemplar=outputs/de/ --method mine=outputs/mine/
    sa-evaluate --profile paper --checkpoint official=checkpoints/official.safetensors   # another model, too

A method is either a colorizer -- a callable `(target_l, reference) -> rgb` that sees only the target's L*
(H, W) in [0, 100] and the reference sRGB (h, w, 3) in [0, 1], never the ground truth's colours -- or a
folder of another method's outputs, one image per pair named after the pair's target
(`<target stem>.png|.jpg|...`, as `sa-colorize --pairs` writes them); a missing or extra file is reported.

Every pair is scored the same way (conventions and reasons in docs/metrics.md): the target and the
reference (its box crop, if any) are resized to EVAL_SIZE x EVAL_SIZE (224, the paper's size) with bicubic
filtering, as in training; a folder output of another size is resized to it. SSIM, LPIPS(alex) (the main
LPIPS figure), LPIPS(vgg) (the paper does not say which it used), PSNR(ab) and CIEDE2000 compare the output
with the ground truth, colourfulness is the output's own, HIS compares the
output with the reference, and dHIS = |mean HIS(output, reference) - HIS_ref| where HIS_ref = mean
HIS(ground truth, reference) over the same pairs. The tables go to --out (default figures/):
table1_ablation.{md,csv} and table2_comparison.{md,csv}, written only once both are computed, each file
atomically. Per-pair CSVs go to --per-pair (default build/eval/<profile>/, or <out>/per_pair with --pairs).
Published numbers of the paper sit in their own columns, labelled "published (paper, COCO)", and are never
mixed with measured ones. A --method NAME may not be one of our own method keys (RESERVED_NAMES).

Scale: pairs are streamed (`PairStream`: a DataLoader with the profile's workers, Profile.eval_workers, decodes
them for each method in turn; none is kept in memory), a profile checkpoint that is missing is skipped (its rows
read "not run", the log and the table notes say which), and each model runs with the SLIC backend it was trained
with (its config's slic_backend) unless --slic names another.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import baselines, metrics
from ..core.color import rgb_to_lab
from ..core.devices import DeviceError, resolve_device
from ..core.errors import UsageError
from ..core.files import CHECKPOINT_DIR, REPO_ROOT, atomic_write
from ..data.image_io import IMAGE_SUFFIXES
from ..data.image_io import ImageInputError, load_photo_rgb, read_image
from ..data.pairs import Pair, crop_resized, read_pairs
from ..model.checkpoint import load_checkpoint, read_config
from ..model.colorizer import NAMED_MODELS
from ..model.paper_readings import PAPER_READINGS
from ..model.predict import predict_rgb
from ..profiles import EVAL_SIZE, Profile, get_profile
from ..superpixels.pyramid import resolve_backend

TOP1, GTREF = "top-1", "ground truth"  # the two kinds of reference: the pair's ranked one, the target itself
NAMED = "the pair's"  # how the tables call TOP1 for a --pairs file: the reference its row names, ranked or not

ColorizerFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Tables 1 and 2 of the paper: SSIM, LPIPS, dHIS on its 5000 COCO val pairs (never released); None = "-".
PUBLISHED: dict[str, tuple[float, float, float | None]] = {
    "none": (0.920, 0.164, None),
    "standard": (0.921, 0.172, 0.081),
    "super": (0.925, 0.160, 0.054),
    "xcnet": (0.867, 0.270, 0.139),
    "deep_exemplar": (0.894, 0.241, 0.127),
    "just_attention": (0.896, 0.239, 0.125),
}
PUBLISHED_HIS_REF = 0.542  # the paper's HIS(ground truth, top-1 reference) on its COCO pairs
EXTERNAL_METHODS = {"xcnet": "XCNET [29]", "deep_exemplar": "Deep Exemplar [13]",
                    "just_attention": "Just Attention [15]"}  # cannot run here: outputs folder or published only
VARIANT_NAMES = {"none": "Ours without reference", "standard": "Ours with standard attention",
                 "super": "Ours (super-attention)",
                 "transfer": "Ours + transfer options (not in the paper: docs/transfer.md)"}
BASELINE_KEYS = ("reinhard", "welsh", "carrillo2022")  # the training-free baselines of Table 2 (baseline_colorizers)
RESERVED_NAMES = (*NAMED_MODELS, *BASELINE_KEYS)  # our own rows: a folder of outputs may not take their names
FOLDER_PREFIX = "folder:"  # setup.results keys of folder methods: (FOLDER_PREFIX + name, TOP1)
CHECKPOINT_PREFIX = "checkpoint:"  # setup.results keys of --checkpoint NAME=FILE models
OUTPUT_PATTERN = f"<target stem>{{{','.join(IMAGE_SUFFIXES)}}}"  # how a folder's outputs must be named


class EvaluationError(RuntimeError):
    """Something the evaluation needs is missing or broken (exit code 1)."""


# ------------------------------------------------------------------------------------------------ profiles


def default_pairs(profile: Profile) -> tuple[Path, Path, Path]:
    """(pairs CSV, target image folder, reference image folder) of a profile (sa_lib.profiles)."""
    photos = profile.photos
    return photos.pairs_file(), photos.target_dir(), photos.reference_dir()


# ------------------------------------------------------------------------------------------------- pairs


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


# ---------------------------------------------------------------------------------------------- methods


def model_colorizer(checkpoint: str | Path, device: str = "auto", slic: str | None = None,
                    flip_average: bool | None = None, chroma_gain: float | None = None) -> ColorizerFn:
    """A checkpoint (shipped name or .safetensors path) as a colorizer: ab predicted at the given size and
    recombined with the target's own L* (the `sa-colorize` recombination). Superpixels come from `slic`
    (a backend or "auto"), by default the backend the model was trained with (its config's slic_backend).
    `flip_average`, `chroma_gain`: None keeps the checkpoint's (sa_lib.model.predict.predict_ab)."""
    model = load_checkpoint(checkpoint, device=resolve_device(device))
    dev = next(model.parameters()).device
    backend = slic or model.config.slic_backend

    def colorize(target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
        l_star = torch.from_numpy(np.ascontiguousarray(target_l, dtype=np.float32))[None, None].to(dev)  # (1,1,H,W)
        # (1, 3, H', W')
        ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).permute(2, 0, 1)[None].to(dev)
        rgb = predict_rgb(model, l_star, ref, slic_backend=backend, flip_average=flip_average,
                          chroma_gain=chroma_gain)[0][0]  # (3, H, W)
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


def check_method_names(folders: Iterable[str]) -> None:
    """A folder method may not take the name of one of our own rows (UsageError)."""
    for name in folders:
        if name in RESERVED_NAMES:
            raise UsageError(f"--method {name}: the names {', '.join(RESERVED_NAMES)} are reserved for this "
                             "project's own rows; give the folder another NAME")


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


# ---------------------------------------------------------------------------------------------- scoring

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


# ----------------------------------------------------------------------------------------------- tables

MEASURED = (("pairs", "pairs", "{:d}"), ("ssim", "SSIM ↑", "{:.3f}"), ("lpips", "LPIPS(alex) ↓", "{:.3f}"),
            ("lpips_vgg", "LPIPS(vgg) ↓", "{:.3f}"),
            ("delta_his", "ΔHIS ↓", "{:.3f}"), ("his_pred_ref", "HIS(pred, ref)", "{:.3f}"),
            ("his_ref", "HIS_ref", "{:.3f}"), ("psnr_ab", "PSNR(ab) ↑", "{:.2f}"),
            ("ciede2000", "CIEDE2000 ↓", "{:.2f}"), ("colorfulness", "colourfulness", "{:.1f}"))
PUBLISHED_COLUMNS = (("published_ssim", "published (paper, COCO) SSIM ↑"),
                     ("published_lpips", "published (paper, COCO) LPIPS ↓"),
                     ("published_delta_his", "published (paper, COCO) ΔHIS ↓"))
LPIPS_OFFLINE = "unavailable offline"
NOT_RUN = "not run"


@dataclass
class Table:
    """A results table: rows of cells (strings), rendered as markdown (with notes) and as CSV."""

    title: str
    intro: list[str]
    rows: list[dict[str, str]]  # keys: "method", "reference", MEASURED keys, PUBLISHED_COLUMNS keys
    notes: list[str]

    def markdown(self) -> str:
        keys = ["method", "reference", *(k for k, _, _ in MEASURED), *(k for k, _ in PUBLISHED_COLUMNS)]
        names = ["method", "reference", *(n for _, n, _ in MEASURED), *(n for _, n in PUBLISHED_COLUMNS)]
        lines = [f"# {self.title}", "", *self.intro, "", "| " + " | ".join(names) + " |",
                 "|" + "---|" * len(names)]
        lines += ["| " + " | ".join(row.get(k, "") for k in keys) + " |" for row in self.rows]
        return "\n".join([*lines, "", *self.notes, ""])

    def csv(self) -> str:
        keys = ["method", "reference", *(k for k, _, _ in MEASURED), *(k for k, _ in PUBLISHED_COLUMNS)]
        header = ["method", "reference", *(k for k, _, _ in MEASURED),
                  *(k.replace("published_", "published_paper_coco_") for k, _ in PUBLISHED_COLUMNS)]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[row.get(k, "").replace("`", "") for k in keys] for row in self.rows])
        return buffer.getvalue()

    def write(self, folder: Path | str, stem: str) -> tuple[Path, Path]:
        folder = Path(folder)
        md, table_csv = folder / f"{stem}.md", folder / f"{stem}.csv"
        atomic_write(md, lambda tmp: tmp.write_text(self.markdown(), encoding="utf-8"))
        atomic_write(table_csv, lambda tmp: tmp.write_text(self.csv(), encoding="utf-8"))
        return md, table_csv


def _lpips_cell(lpips: metrics.LPIPSMetric | None) -> str:
    return LPIPS_OFFLINE if lpips is None or lpips.missing_weights else "unavailable"


def measured_cells(result: MethodResult | None, lpips: metrics.LPIPSMetric | None,
                   lpips_vgg: metrics.LPIPSMetric | None = None) -> dict[str, str]:
    """Formatted measured cells of a row; `not run` everywhere for a method without result."""
    if result is None:
        return {key: NOT_RUN for key, _, _ in MEASURED}
    summary = result.summary()
    cells = {}
    for key, _, fmt in MEASURED:
        value = summary.get(key)
        if key == "pairs":
            cells[key] = f"{value}" if value == result.n_total else f"{value}/{result.n_total}"
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            cells[key] = {"lpips": _lpips_cell(lpips), "lpips_vgg": _lpips_cell(lpips_vgg)}.get(key, "-")
        else:
            cells[key] = fmt.format(value)
    return cells


def published_cells(method: str | None) -> dict[str, str]:
    values = PUBLISHED.get(method or "")
    if values is None:
        return {key: "" for key, _ in PUBLISHED_COLUMNS}
    return {key: "-" if v is None else f"{v:.3f}" for (key, _), v in zip(PUBLISHED_COLUMNS, values)}


# ------------------------------------------------------------------------------------------ evaluation run


@dataclass
class Setup:
    """A loaded evaluation: the profile, its pairs at the evaluation size, LPIPS, and results so far."""

    profile: Profile
    pairs_file: Path
    data: Sequence[PairImages]  # a PairStream (prepare), or a list of PairImages
    device: str
    lpips: metrics.LPIPSMetric
    results: dict[tuple[str, str], MethodResult] = field(default_factory=dict)
    log: Callable[[str], None] = print
    checkpoints: dict[str, Path] = field(default_factory=dict)  # --checkpoint NAME=FILE: more models, every table
    missing: tuple[str, ...] = ()  # the profile's own variants without a checkpoint (skipped: rows "not run")
    lpips_vgg: metrics.LPIPSMetric | None = None  # the second LPIPS column (the paper does not say which it used)
    slic: str | None = None  # --slic: every model's SLIC backend; None: each model's own (its training backend)

    def checkpoint(self, variant: str) -> str:
        return self.profile.checkpoint(variant)


def _check_checkpoints(profile: Profile, allow_missing: bool = False) -> tuple[str, ...]:
    """The variants whose profile checkpoint is missing; they are skipped. An EvaluationError when none of them
    exists, unless allow_missing (other models are scored: --checkpoint)."""
    missing, hints = [], []
    for variant in profile.eval_models:
        name = profile.checkpoint(variant)
        if not (CHECKPOINT_DIR / f"{name}.safetensors").is_file():
            hint = ("run `make train-demo`" if profile.ships_checkpoints else
                    f"train it with `sa-train --profile {profile.name} --variant {variant} --export "
                    f"checkpoints/{name}.safetensors` (no {profile.name} checkpoint ships)")
            hints.append(f"checkpoint {CHECKPOINT_DIR / (name + '.safetensors')} not found; {hint}")
            missing.append(variant)
    if missing and len(missing) == len(profile.eval_models) and not allow_missing:
        raise EvaluationError(f"no checkpoint of profile {profile.name} exists: {hints[0]}")
    return tuple(missing)


def check_extra_checkpoints(checkpoints: dict[str, Path], folders: Iterable[str] = ()) -> None:
    """--checkpoint NAME=FILE: each NAME free (not ours, not a folder's) and each FILE a colorizer checkpoint."""
    for name, path in checkpoints.items():
        if name in RESERVED_NAMES or name in set(folders):
            raise UsageError(f"--checkpoint {name}: the name is taken (by this project's rows or a --method); "
                             "give another NAME")
        read_config(path)  # CheckpointError in one line: missing, not safetensors, not ours


def prepare(profile: str = "demo", pairs: Path | str | None = None, device: str = "auto",
            log: Callable[[str], None] = print, folders: dict[str, Path] | None = None,
            checkpoints: dict[str, Path | str] | None = None, slic: str | None = None,
            workers: int | None = None) -> Setup:
    """Check a profile's assets (and the folders of other methods' outputs against its pairs) and stream its
    pairs at the evaluation size (one-line errors if missing). `checkpoints` (name -> .safetensors) adds
    models to every table; a missing profile checkpoint is skipped (its rows read not run), and with
    `checkpoints` all of them may be missing. `slic`: every model's SLIC backend (default: each model's own).
    `workers`: the processes that decode the pairs (default: the profile's eval_workers)."""
    checkpoints = {name: Path(path) for name, path in (checkpoints or {}).items()}
    check_extra_checkpoints(checkpoints, folders or {})
    settings = get_profile(profile)
    try:
        resolve_device(device)
    except DeviceError as err:
        raise UsageError(str(err)) from None
    pairs_csv, target_dir, reference_dir = default_pairs(settings)
    if settings.photos.name == "coco" and pairs is None:
        if not target_dir.is_dir():
            raise EvaluationError(f"COCO val2017 is not in {settings.photos.root()}: run `make data-coco` (or "
                                  "`python -m sa_lib.cli.coco download --splits val train`)")
        if not pairs_csv.is_file():
            raise EvaluationError(f"COCO evaluation pairs not found: {pairs_csv}; run `make references PROFILE=paper`")
    if pairs is not None:
        pairs_csv = Path(pairs)
        if not pairs_csv.is_file():
            raise UsageError(f"pairs file not found: {pairs_csv}")
    if slic is not None and slic != "auto":
        try:
            resolve_backend(slic)
        except (ValueError, RuntimeError) as err:
            raise UsageError(f"--slic: {err}") from None
    missing = _check_checkpoints(settings, allow_missing=bool(checkpoints))
    if missing:
        log(f"[evaluate] skipped, no checkpoint: {', '.join(settings.checkpoint(v) for v in missing)} "
            "(their rows read \"not run\")")
    pair_list = read_pairs(pairs_csv, target_dir, reference_dir, settings.eval_limit)
    check_output_folders(dict(folders or {}), pair_list)
    data = PairStream(pair_list, settings.eval_size, settings.eval_workers if workers is None else workers)
    lpips = metrics.LPIPSMetric(str(resolve_device(device)))
    lpips_vgg = metrics.LPIPSMetric(str(resolve_device(device)), net="vgg")
    for metric in (lpips, lpips_vgg):
        if not metric.available():
            log(f"[evaluate] {metric.reason}")
    log(f"[evaluate] profile {settings.name}: {len(data)} pairs from {pairs_csv} at "
        f"{settings.eval_size}x{settings.eval_size}, streamed "
        f"{f'by {data.workers} worker processes' if data.workers else 'in this process'}")
    return Setup(settings, pairs_csv, data, device, lpips, log=log, checkpoints=checkpoints, missing=missing,
                 lpips_vgg=lpips_vgg, slic=slic)


def run_method(setup: Setup, method: str, colorizer: ColorizerFn | Callable[[], ColorizerFn],
               reference: str = TOP1, lazy: bool = False) -> MethodResult:
    """Evaluate (once; cached in the setup) a colorizer under a method key. `lazy`: colorizer is a factory."""
    key = (method, reference)
    if key not in setup.results:
        fn = colorizer() if lazy else colorizer
        result = evaluate_colorizer(method, fn, setup.data, setup.lpips, reference, setup.lpips_vgg)
        setup.results[key] = result
        setup.log(f"[evaluate] {method} ({reference_cell(setup, reference)} reference): {len(result.rows)} pairs, "
                  f"{result.seconds:.1f} s")
    return setup.results[key]


def folder_key(name: str) -> tuple[str, str]:
    """The setup.results key of a folder method: its own namespace, so it never replaces one of our rows."""
    return FOLDER_PREFIX + name, TOP1


def folder_result(setup: Setup, name: str, folder: Path | str) -> MethodResult:
    """Score (once per folder; cached in the setup) a folder of another method's outputs."""
    key = folder_key(name)
    cached = setup.results.get(key)
    if cached is None or cached.folder != Path(folder):
        setup.results[key] = evaluate_folder(name, folder, setup.data, setup.lpips, setup.lpips_vgg)
        setup.log(f"[evaluate] {name} (outputs in {folder}): {len(setup.results[key].rows)} pairs, "
                  f"{setup.results[key].seconds:.1f} s")
    return setup.results[key]


def variant_result(setup: Setup, variant: str, reference: str = TOP1) -> MethodResult | None:
    """A variant's result; None when its profile checkpoint is missing (skipped: its rows read not run)."""
    if variant in setup.missing:
        return None
    return run_method(setup, variant, lambda: model_colorizer(setup.checkpoint(variant), setup.device, setup.slic),
                      reference, lazy=True)


def reading_result(setup: Setup, reading: str, reference: str = TOP1) -> MethodResult | None:
    """The result of the profile's `super` trained with one of the paper's readings; None without its checkpoint."""
    name = setup.profile.reading_checkpoint(reading)
    if not (CHECKPOINT_DIR / f"{name}.safetensors").is_file():
        return None
    return run_method(setup, name, lambda: model_colorizer(name, setup.device, setup.slic), reference, lazy=True)


def reading_rows(setup: Setup, reference: str = TOP1) -> list[dict[str, str]]:
    """Table 1's rows of `super` with each of the profile's paper readings (PAPER_READINGS): each departure of
    this project from the paper, undone and trained like `super`, so a reader sees what it changes."""
    return [{"method": f"{VARIANT_NAMES['super']}, the paper's reading: {PAPER_READINGS[reading].label} "
                       f"(`{setup.profile.reading_checkpoint(reading)}`)",
             "reference": reference_cell(setup, reference),
             **measured_cells(reading_result(setup, reading, reference), setup.lpips, setup.lpips_vgg),
             **published_cells(None)}
            for reading in setup.profile.paper_readings]


def reading_notes(setup: Setup) -> list[str]:
    """Table 1's notes on the paper-reading rows: what each undoes, and the ones not trained yet."""
    readings = setup.profile.paper_readings
    if not readings:
        return []
    missing = [setup.profile.reading_checkpoint(r) for r in readings
               if not (CHECKPOINT_DIR / f"{setup.profile.reading_checkpoint(r)}.safetensors").is_file()]
    return ["- The \"paper's reading\" rows are the paper's `super`, trained exactly as its row, with one of this "
            "project's departures from the paper undone (`sa-train --paper-reading NAME`, `make train-ablations`; "
            "docs/faithfulness.md): " + "; ".join(f"`{r}`, {PAPER_READINGS[r].differs}" for r in readings) + "."] + (
        [f"- Skipped, not trained yet: {', '.join(f'`{m}`' for m in missing)} (rows `{NOT_RUN}`; "
         "`make train-ablations`)."] if missing else [])


def checkpoint_rows(setup: Setup, reference: str = TOP1) -> list[dict[str, str]]:
    """The rows of the --checkpoint NAME=FILE models; the authors' released model (sa-convert-official) is
    set beside the paper's published super-attention numbers."""
    rows = []
    for name, path in setup.checkpoints.items():
        result = run_method(setup, CHECKPOINT_PREFIX + name,
                            lambda p=path: model_colorizer(p, setup.device, setup.slic), reference, lazy=True)
        official = read_config(path).extra.get("preset") == "official"
        rows.append({"method": f"{name} (`{path}`)", "reference": reference_cell(setup, reference),
                     **measured_cells(result, setup.lpips, setup.lpips_vgg),
                     **(published_cells("super") if official and reference == TOP1 else published_cells(None))})
    return rows


def baseline_colorizers(setup: Setup) -> dict[str, tuple[str, Callable[[], ColorizerFn]]]:
    """method key -> (row name, factory) of the training-free baselines of sa_lib.eval.baselines."""
    encoder = setup.profile.baseline_encoder
    features = "VGG19 features" if encoder.startswith("vgg") else "EfficientNet-Lite0 features, not VGG19"
    if not setup.profile.pretrained:
        features = f"random-weight {features}"
    return {
        "reinhard": ("Reinhard-style statistics transfer (L*-driven extension of Reinhard et al. 2001 to a gray "
                     "target; global Lab statistics, a*b* only)", lambda: baselines.reinhard),
        "welsh": ("Welsh et al. 2002 [10] (luminance + neighbourhood statistics)", lambda: baselines.welsh),
        "carrillo2022": (f"Carrillo et al. 2022 [17] (training-free superpixel matching; {features})",
                         lambda: baselines.SuperpixelFeatureTransfer(encoder, device=_torch_device(setup),
                                                                     pretrained=setup.profile.pretrained)),
    }


def _torch_device(setup: Setup) -> str:
    return str(resolve_device(setup.device))


def _own_pairs(setup: Setup) -> bool:
    """True when the pairs are the profile's own (each target with its top-1 ranked reference), not --pairs."""
    return setup.pairs_file.resolve() == default_pairs(setup.profile)[0].resolve()


def reference_cell(setup: Setup, reference: str) -> str:
    """A row's "reference" cell: GTREF, or TOP1 as "top-1" on the profile's own pairs and NAMED on a --pairs file."""
    return NAMED if reference == TOP1 and not _own_pairs(setup) else reference


def _intro(setup: Setup, what: str) -> list[str]:
    try:
        shown = setup.pairs_file.resolve().relative_to(REPO_ROOT)
    except ValueError:
        shown = setup.pairs_file
    n, size = len(setup.data), setup.profile.eval_size
    own = _own_pairs(setup)
    command = f"sa-evaluate --profile {setup.profile.name}" + ("" if own else f" --pairs {shown}")
    which = "its top-1 ranked reference" if own else "the reference its row names"
    return [f"{what} Measured by `{command}` on {n} pairs of `{shown}` "
            f"(each target with {which}) at {size}x{size}. Conventions: `docs/metrics.md`. "
            "The columns labelled \"published (paper, COCO)\" are the paper's numbers on its 5000 COCO val pairs, "
            "copied from the paper, not measured here."]


def _notes(setup: Setup, extra: Iterable[str] = ()) -> list[str]:
    data = setup.data
    his_ref = data.his_ref() if isinstance(data, PairStream) else np.mean([d.scoring_context(TOP1)[2] for d in data])
    vgg = setup.lpips_vgg
    which = "top-1 reference" if _own_pairs(setup) else "the pair's reference"
    notes = [f"- HIS_ref = mean HIS(ground truth, {which}) over these pairs = {his_ref:.3f} "
             f"(the paper's is {PUBLISHED_HIS_REF} on its COCO pairs); ΔHIS = |HIS(pred, ref) - HIS_ref|.",
             "- LPIPS is the `lpips` package, v0.1, inputs in [-1, 1]: AlexNet (the main figure) and VGG16 beside "
             "it; the paper does not say which backbone it scored with. "
             + (f"Here: {setup.lpips.reason}" if setup.lpips.reason else "LPIPS(alex) was available for this run.")
             + (f" {vgg.reason}" if vgg is not None and vgg.reason else
                (" LPIPS(vgg) was available for this run." if vgg is not None else "")),
             "- Superpixels: " + (f"SLIC backend `{setup.slic}` for every model (--slic)." if setup.slic else
                                  "each model's own SLIC backend, the one it was trained with (its config's "
                                  "`slic_backend`).")]
    if setup.missing:
        notes.append("- Skipped, no checkpoint: " + ", ".join(f"`{setup.checkpoint(v)}`" for v in setup.missing)
                     + f" (rows `{NOT_RUN}`).")
    return notes + list(extra)


def _trained_sizes(profile: Profile) -> str:
    """The size the shipped checkpoints that `profile` evaluates were trained at (by the profile of their prefix):
    "128 px", or "128 px (the transfer model at 224 px)" when Table 1 shows a transfer model trained at its own."""
    trainer = get_profile(profile.checkpoint_prefix)  # smoke evaluates the demo checkpoints
    size = trainer.training.get("image_size")
    transfer = trainer.variant_training.get("transfer", {}).get("image_size", size)
    shown = "transfer" in profile.eval_models
    return f"{size} px" + (f" (the transfer model at {transfer} px)" if shown and transfer != size else "")


def ablation_table(setup: Setup) -> Table:
    """Table 1: the three variants with top-1 references (the paper's table), then with the ground truth
    as reference (Fig. 5's last rows; not in the paper's table, so no published numbers there)."""
    rows = []
    for reference in (TOP1, GTREF):
        for variant in setup.profile.eval_models:
            result = variant_result(setup, variant, reference)
            rows.append({"method": f"{VARIANT_NAMES[variant]} (`{setup.checkpoint(variant)}`)",
                         "reference": reference_cell(setup, reference),
                         **measured_cells(result, setup.lpips, setup.lpips_vgg),
                         **(published_cells(variant) if reference == TOP1 else {})})
            if variant == "super":  # each of this project's departures undone, beside the model it departs in
                rows += reading_rows(setup, reference)
        rows += checkpoint_rows(setup, reference)
    demo = setup.profile.ships_checkpoints  # the demo checkpoints, trained on this CPU
    notes = _notes(setup, [
        "- Rows with the ground truth as reference: each target is its own reference, so HIS_ref = 1 and "
        "ΔHIS = 1 - HIS(pred, ground truth). A model that uses its reference should gain most there.",
        "- The paper gives no ΔHIS for the variant without reference (it uses none); it is measured here all "
        "the same, since the pairs have a reference.",
    ] + (["- The transfer row is not part of the paper's ablation: the paper's `super` with five named options "
          "(matching on the frozen encoder's features, of levels 0-2 and of levels 3-4, carried a*b* with the match "
          "confidence, a head that corrects the carried a*b*, and at inference the mean of a pass on the images "
          "and one on both mirrored) "
          "trained on warped and recoloured self references, then at a lower rate with more ranked references, "
          "and last with a loss term, not in the paper, for the truth's amount of colour (the chroma distribution "
          "distance); its checkpoint also multiplies the predicted a*b* by a chroma gain fitted after training on "
          "the training photos (`sa-calibrate-chroma`) (`docs/transfer.md`). It shows what those departures "
          "add over the paper's model."]
         if "transfer" in setup.profile.eval_models else []) + reading_notes(setup) + ([
             f"- The demo checkpoints were trained on the CPU at {_trained_sizes(setup.profile)} on 214 demo photos "
             "(`checkpoints/MODEL_CARD.md`), not on COCO: their numbers are not comparable with the published ones."]
         if demo else []))
    return Table(f"Table 1: ablation (profile `{setup.profile.name}`)",
                 _intro(setup, "The three variants of the paper's ablation"
                        + (" and the transfer model." if "transfer" in setup.profile.eval_models else ".")),
                 rows, notes)


def comparison_table(setup: Setup, folders: dict[str, Path] | None = None) -> Table:
    """Table 2: the training-free baselines (measured), the published methods (measured only from a folder
    of their outputs), other folders, and our super-attention model."""
    folders = dict(folders or {})
    check_method_names(folders)
    rows, extra_notes = [], []
    for key, (name, factory) in baseline_colorizers(setup).items():
        rows.append({"method": name, "reference": reference_cell(setup, TOP1),
                     **measured_cells(run_method(setup, key, factory, lazy=True), setup.lpips, setup.lpips_vgg),
                     **published_cells(None)})
    names = {**EXTERNAL_METHODS, **{k: k for k in folders if k not in EXTERNAL_METHODS}}
    for key, name in names.items():
        result = None
        if key in folders:
            result = folder_result(setup, key, folders[key])
            for line in folder_report(result, folders[key]):
                setup.log(f"[evaluate] {line}")
                extra_notes.append(f"- {line}")
            name = f"{name} (outputs in `{folders[key]}`)"
        rows.append({"method": name, "reference": reference_cell(setup, TOP1),
                     **measured_cells(result, setup.lpips, setup.lpips_vgg),
                     **published_cells(key if key in EXTERNAL_METHODS else None)})
    rows += checkpoint_rows(setup)
    for model in ("super", "transfer"):
        if model in setup.profile.eval_models:
            rows.append({"method": f"{VARIANT_NAMES[model]} (`{setup.checkpoint(model)}`)",
                         "reference": reference_cell(setup, TOP1),
                         **measured_cells(variant_result(setup, model), setup.lpips, setup.lpips_vgg),
                         **published_cells(model)})
    notes = _notes(setup, [
        f"- `{NOT_RUN}`: XCNET, Deep Exemplar and Just Attention cannot run here (no weights; compiled parts). "
        "Give a folder of their outputs, one per pair named `<target stem>.png`, with "
        "`--method xcnet=DIR`, `--method deep_exemplar=DIR` or `--method just_attention=DIR`.",
        "- The Reinhard-style row extends Reinhard et al.'s statistics transfer (made for colour sources) to a "
        "gray target by letting its standardised L* carry the a*b* spread (`docs/metrics.md`).",
        "- Reinhard, Welsh and [17] are implemented in `sa_lib/eval/baselines.py` and run on the same pairs, at the "
        "same size, seeing only the target's L* and the reference. The paper's Table 2 does not include them.",
    ] + extra_notes)
    return Table(f"Table 2: comparison with other exemplar-based methods (profile `{setup.profile.name}`)",
                 _intro(setup, "Our model beside training-free baselines and the paper's published comparison."),
                 rows, notes)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def write_per_pair(setup: Setup, folder: Path) -> list[Path]:
    """One CSV per result: <method>.csv, <method>_gtref.csv; folder-<NAME>.csv for --method NAME=FOLDER."""
    written = []
    for (method, reference), result in setup.results.items():
        path = folder / f"{_slug(method)}{'' if reference == TOP1 else '_gtref'}.csv"
        write_per_pair_csv(result, path)
        written.append(path)
    return written


def per_pair_folder(profile: str, out: Path | str | None, pairs: Path | str | None) -> Path:
    """Default folder of the per-pair CSVs: build/eval/<profile> for the profile's own pairs, <out>/per_pair
    for another pair file (so that its scores never replace those of the profile's pairs)."""
    if pairs is None:
        return REPO_ROOT / "build" / "eval" / profile
    return (Path(out) if out is not None else tables_folder(None, pairs)) / "per_pair"


def tables_folder(out: Path | str | None, pairs: Path | str | None) -> Path:
    """Where the tables go: --out, else figures/ for the profile's own pairs and figures/<pairs stem>/ for
    another pairs file (so that `--pairs data/demo/matched_pairs.csv` never replaces Tables 1 and 2)."""
    if out is not None:
        return Path(out)
    return REPO_ROOT / "figures" if pairs is None else REPO_ROOT / "figures" / Path(pairs).stem


def write_tables(setup: Setup, out: Path | str, folders: dict[str, Path] | None = None) -> list[Path]:
    """Compute Tables 1 and 2 of a setup, then write both (markdown and CSV) into `out`; returns the files."""
    tables = [(ablation_table(setup), "table1_ablation"), (comparison_table(setup, folders), "table2_comparison")]
    Path(out).mkdir(parents=True, exist_ok=True)
    return [path for table, stem in tables for path in table.write(out, stem)]


def run(profile: str = "demo", out: Path | str | None = None, pairs: Path | str | None = None,
        folders: dict[str, Path] | None = None, device: str = "auto", per_pair_dir: Path | str | None = None,
        log: Callable[[str], None] = print, checkpoints: dict[str, Path] | None = None, slic: str | None = None,
        workers: int | None = None) -> list[Path]:
    """Evaluate a profile and write both tables (and the per-pair CSVs); returns the table files written.

    Nothing is written until both tables are computed, so a failed run leaves the previous tables as they
    were; each file is then replaced atomically.
    """
    folders = dict(folders or {})
    check_method_names(folders)
    for name, folder in folders.items():
        if not Path(folder).is_dir():
            raise UsageError(f"--method {name}: outputs folder not found: {folder}")
    setup = prepare(profile, pairs, device, log, folders=folders, checkpoints=checkpoints, slic=slic, workers=workers)
    per_pair_dir = Path(per_pair_dir) if per_pair_dir is not None else per_pair_folder(profile, out, pairs)
    written = write_tables(setup, tables_folder(out, pairs), folders)
    write_per_pair(setup, per_pair_dir)
    log(f"[evaluate] per-pair scores in {per_pair_dir}")
    return written
