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

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import baselines, metrics
from ..core.devices import DeviceError, resolve_device
from ..core.errors import UsageError
from ..core.files import CHECKPOINT_DIR, REPO_ROOT
from ..data.pairs import read_pairs
from ..model.checkpoint import read_config
from ..model.colorizer import NAMED_MODELS
from ..model.paper_readings import PAPER_READINGS
from ..profiles import Profile, get_profile
from ..superpixels.pyramid import resolve_backend
from .pair_images import GTREF, TOP1, PairImages, PairStream
from .scoring import (ColorizerFn, EvaluationError, MethodResult, check_output_folders, evaluate_colorizer,
                      evaluate_folder, folder_report, model_colorizer, write_per_pair_csv)
from .table import NOT_RUN, Table, measured_cells, published_cells

NAMED = "the pair's"  # how the tables call TOP1 for a --pairs file: the reference its row names, ranked or not

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


# ------------------------------------------------------------------------------------------------ profiles


def default_pairs(profile: Profile) -> tuple[Path, Path, Path]:
    """(pairs CSV, target image folder, reference image folder) of a profile (sa_lib.profiles)."""
    photos = profile.photos
    return photos.pairs_file(), photos.target_dir(), photos.reference_dir()


def check_method_names(folders: Iterable[str]) -> None:
    """A folder method may not take the name of one of our own rows (UsageError)."""
    for name in folders:
        if name in RESERVED_NAMES:
            raise UsageError(f"--method {name}: the names {', '.join(RESERVED_NAMES)} are reserved for this "
                             "project's own rows; give the folder another NAME")


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


def reading_trained(setup: Setup, reading: str) -> bool:
    """Whether the checkpoint of the profile's `super` trained with this paper reading exists."""
    return (CHECKPOINT_DIR / f"{setup.profile.reading_checkpoint(reading)}.safetensors").is_file()


def reading_result(setup: Setup, reading: str, reference: str = TOP1) -> MethodResult | None:
    """The result of the profile's `super` trained with one of the paper's readings; None without its checkpoint."""
    if not reading_trained(setup, reading):
        return None
    name = setup.profile.reading_checkpoint(reading)
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
    missing = [setup.profile.reading_checkpoint(r) for r in readings if not reading_trained(setup, r)]
    return ["- The \"paper's reading\" rows are the paper's `super`, trained with its row's settings and seed, "
            "with one of this project's departures from the paper undone (`sa-train --paper-reading NAME`, "
            "`make train-ablations`; docs/faithfulness.md): "
            + "; ".join(f"`{r}`, {PAPER_READINGS[r].differs}" for r in readings) + "."] + (
        [f"- Skipped, not trained yet: {', '.join(f'`{m}`' for m in missing)} (rows `{NOT_RUN}`; "
         "`make train-ablations`)."] if missing else [])


def blend_note(setup: Setup) -> str:
    """Table 1's words for the transfer checkpoint's blend partner (ColorizerConfig.blend_partner), if it has one."""
    path = CHECKPOINT_DIR / f"{setup.checkpoint('transfer')}.safetensors"
    partner = read_config(path).partner_config if path.is_file() else None
    return ("" if partner is None else
            f"averages its a*b* with those of the paper's `{partner.variant}` network, whose weights it holds (the "
            f"`{setup.profile.checkpoint(partner.variant)}` run; `sa-calibrate-chroma --blend`), and ")


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
          "distance); its checkpoint also "
          + blend_note(setup)
          + "multiplies the predicted a*b* by a chroma gain fitted after training on "
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
