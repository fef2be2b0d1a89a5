"""`sa-colorize`: colorize a gray target from a colour reference (sa_lib.inference.colorize), one pair, a folder
or a pairs file.

    sa-colorize TARGET REFERENCE -o OUT.png [--checkpoint demo-transfer] [--mode fast|highres] [--explain F.png]
                [--slic auto|skimage|opencv|torch] [--flip-average auto|on|off] [--chroma-gain auto|K]
                [--blend auto|off]
    sa-colorize TARGET_DIR REFERENCE -o OUT_DIR          # every image of a folder, one reference
    sa-colorize --pairs PAIRS.csv -o OUT_DIR             # CSV rows: target,reference[,ref_x,ref_y,ref_w,ref_h]
    sa-colorize TARGET --reference-from PHOTOS_DIR -o OUT.png   # the reference: the top-1 of sa-suggest

Any size and aspect ratio; the output has the target's size, orientation and detail (its own L*). `fast`
(default) predicts ab at a working size and upsamples it onto the full-resolution L*; `highres` runs the network
at the image's own resolution. `--slic` picks the superpixel backend of super-attention. `--flip-average off`
skips the checkpoint's second, mirrored pass (on for demo-transfer: about half the time, slightly worse colours).
`--chroma-gain 1` shows the network's colours as predicted, without the checkpoint's calibrated chroma gain
(demo-transfer's makes it more colourful and a little less accurate on average). `--blend off` runs the
checkpoint's network without its blend partner (demo-transfer: the transfer network alone, without the paper's
standard network averaged in; faster, more of the reference's colours, less accurate on average).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..app.suggest import ReferenceSuggester, file_hash
from ..core.devices import DeviceError
from ..core.errors import UsageError
from ..core.hub import AssetUnavailable
from ..data.image_io import (IMAGE_SUFFIXES, WRITE_FORMATS, ImageInputError, ImageOutputError, read_image,
                             write_image_atomic)
from ..data.pairs import Box, PairsError, crop_reference, output_keys, read_pair_rows
from ..figures.explain import explain_figure, other_methods
from ..inference.colorize import (BLEND_CHOICES, DEFAULT_WORKING_SIZE, FLIP_AVERAGE_CHOICES, MODES, SLIC_CHOICES,
                                  check_settings, colorize_detailed, load_model, parse_chroma_gain)
from ..model.checkpoint import DEFAULT_CHECKPOINT, PAPER_MODEL_CHECKPOINT, CheckpointError
from .command import (EXIT_FAILURE, CommandParser, check_not_overwritten, check_output_file,
                      check_output_folder, fail, interrupted, one_line, report, run_command, summary)

PROG = "sa-colorize"
IMAGES_FOLDER = "images"  # a pairs file's names are found beside it, else in this folder beside it (data/demo's)


@dataclass(frozen=True)
class Job:
    """One image to colorize: the target, its reference (None with --reference-from: picked when it runs) and
    the reference's box (x, y, w, h) from a pairs file's ref_x..ref_h columns, as the evaluator crops it."""

    target: Path
    reference: Path | None
    output: Path
    box: Box | None = None


def _unique_outputs(jobs: list[Job]) -> list[Job]:
    """Refuse two targets that would write the same output file (e.g. x.jpg and x.png)."""
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.output in seen:
            raise UsageError(f"{seen[job.output]} and {job.target} would both be written to {job.output}; rename one")
        seen[job.output] = job.target
    return jobs


def _output_folder(out: Path) -> Path:
    """The output folder of folder and pairs mode: refused if it is a file or named like an image (the user
    meant one output file); created later, once all is checked."""
    check_output_folder(out, "output (folder and pairs mode)")
    if not out.exists() and out.suffix.lower() in IMAGE_SUFFIXES:
        raise UsageError(f"output {out} is named like an image file; folder and pairs mode write into a folder "
                         f"(e.g. -o {out.with_suffix('')})")
    return out


def _no_overwritten_input(jobs: list[Job], explain: Path | None, reference_folder: Path | None) -> None:
    """Refuse an output (or the --explain figure) that would overwrite an input photo (a target, a reference or a
    photo of --reference-from's folder) or the other output."""
    photos = [p for job in jobs for p in (job.target, job.reference) if p is not None]
    if reference_folder is not None and reference_folder.is_dir():
        photos += [p for p in reference_folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    outputs = [("output", job.output) for job in jobs]
    check_not_overwritten(outputs + ([("--explain", explain)] if explain is not None else []), photos)
    if explain is not None:  # the figure would replace the colorized image
        check_not_overwritten([("--explain", explain)], [output for _, output in outputs], "the output image")


def _pair_rows(pairs_file: Path) -> list[tuple[str, str, Box | None]]:
    """(target, reference, box) rows of a pairs file: with a target,reference header, the evaluator's reader
    (its ref_x..ref_h box columns included, as `sa-references` writes them); without one, target,reference rows
    (lines starting with # skipped). Usage mistakes raise UsageError."""
    if not pairs_file.is_file():
        raise UsageError(f"pairs file not found: {pairs_file}")
    try:
        with open(pairs_file, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except (UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"{pairs_file}: not a UTF-8 CSV file ({err})") from None
    header = bool(rows) and rows[0][:2] == ["target", "reference"]
    if len(rows) <= header:
        raise UsageError(f"{pairs_file}: no target,reference rows")
    if header:
        try:
            return read_pair_rows(pairs_file)
        except PairsError as err:
            raise UsageError(str(err)) from None
    for number, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise UsageError(f"{pairs_file}: row {number} needs target,reference")
    return [(row[0], row[1], None) for row in rows]


def _located(name: str, base: Path) -> Path:
    """A pairs file's image: relative to the file, else in the images/ folder beside it (the layout of data/demo,
    whose pairs files name photos of data/demo/images); a name found in neither is reported when it runs."""
    for candidate in (base / name, base / IMAGES_FOLDER / name):
        if candidate.exists():
            return candidate
    return base / name


def _jobs(args: argparse.Namespace) -> list[Job]:
    """The jobs of the command line; usage mistakes raise UsageError.

    The reference is None with --reference-from: each target's top-1 is picked when it is colorized."""
    out = Path(args.output)
    if args.reference_from and (args.pairs or args.reference is not None):
        raise UsageError("--reference-from replaces REFERENCE: give one or the other"
                         + (", and not with --pairs" if args.pairs else ""))
    if args.pairs and (args.target is not None or args.reference is not None):
        raise UsageError("--pairs replaces TARGET and REFERENCE: give one or the other")
    if args.pairs:
        _output_folder(out)
        pairs_file = Path(args.pairs)
        rows = _pair_rows(pairs_file)
        try:
            keys = output_keys([(target, reference) for target, reference, _ in rows])
        except PairsError as err:
            raise UsageError(f"{pairs_file}: {err}") from None
        base = pairs_file.parent
        return _unique_outputs([Job(_located(target, base), _located(reference, base), out / (key + ".png"), box)
                                for (target, reference, box), key in zip(rows, keys)])
    if args.target is None or (args.reference is None and not args.reference_from):
        raise UsageError("give TARGET and REFERENCE, TARGET and --reference-from FOLDER, or --pairs FILE")
    target = Path(args.target)
    reference = Path(args.reference) if args.reference is not None else None
    if target.is_dir():
        _output_folder(out)
        files = sorted(p for p in target.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {target}")
        return _unique_outputs([Job(f, reference, out / (f.stem + ".png")) for f in files])
    output = check_output_file(out, "output", folder_must_exist=True)
    if output.suffix.lower() not in WRITE_FORMATS:
        got = f"extension '{output.suffix}'" if output.suffix else "no extension"
        raise UsageError(f"output {output} has {got}; use one of {', '.join(WRITE_FORMATS)}")
    return [Job(target, reference, output)]


EPILOG = """one example per mode:
  sa-colorize old.jpg reference.jpg -o result.png                 # a pair (--explain why.png: where colours came from)
  sa-colorize scans/ reference.jpg -o coloured/                   # every image of a folder, one reference
  sa-colorize --pairs pairs.csv -o coloured/                      # CSV rows target,reference (paths relative to it)
  sa-colorize old.jpg --reference-from ~/Pictures -o result.png   # the reference: sa-suggest's top-1 in a folder
Folder and pairs mode create the output folder. Errors are one line each; exit 2 for usage, 1 if an image failed.
"""


def chroma_gain_argument(text: str) -> float | None:
    """An argparse type: parse_chroma_gain, its error a usage error."""
    try:
        return parse_chroma_gain(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__), epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", help="gray (or colour) target image, or a folder of them")
    p.add_argument("reference", nargs="?", help="colour reference image")
    p.add_argument("-o", "--output", required=True,
                   help="output image (or folder for folder/pairs input; created if missing)")
    p.add_argument("--pairs", help="CSV file of target,reference rows (paths relative to the file, or to an images/ "
                                  "folder beside it); a header's ref_x,ref_y,ref_w,ref_h columns crop the reference, "
                                  "as sa-evaluate does")
    p.add_argument("--reference-from", metavar="FOLDER",
                   help="use the photo of FOLDER that sa-suggest ranks first for each target (demo profile's "
                        "ranking; features cached per folder)")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help=f"shipped name ({DEFAULT_CHECKPOINT}, the default; {PAPER_MODEL_CHECKPOINT}, the paper's "
                        "model; demo-standard, demo-none) or a .safetensors file")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--mode", default="fast", choices=MODES)
    p.add_argument("--working-size", type=int, default=DEFAULT_WORKING_SIZE,
                   help="fast mode: long side (px) at which ab is predicted")
    p.add_argument("--slic", default="auto", choices=SLIC_CHOICES,
                   help="superpixel backend (auto: skimage up to 256x256 px per level and opencv above on "
                        "the CPU, torch on a GPU)")
    p.add_argument("--flip-average", default="auto", choices=tuple(FLIP_AVERAGE_CHOICES),
                   help="average a second pass on the mirrored images (auto: the checkpoint's setting, on for "
                        "demo-transfer; off: half the time)")
    p.add_argument("--chroma-gain", default="auto", type=chroma_gain_argument, metavar="auto|K",
                   help="multiply the predicted a*b* by K (auto: the checkpoint's gain, calibrated by "
                        "sa-calibrate-chroma for demo-transfer; 1: the network's colours as predicted)")
    p.add_argument("--blend", default="auto", choices=tuple(BLEND_CHOICES),
                   help="auto: average the checkpoint's blend partner in (the paper's standard network for "
                        "demo-transfer); off: the checkpoint's network alone")
    p.add_argument("--explain", help="also write a figure of where the colours came from (single pair; a "
                                    "super-attention checkpoint)")
    return p


def prepare(args: argparse.Namespace) -> tuple[list, ReferenceSuggester | None, object]:
    """Check the whole command line before any image is colorized: (jobs, suggester, folder scan)."""
    suggester, scan = None, None
    jobs = _jobs(args)
    check_settings(args.mode, args.working_size, args.slic, args.device, FLIP_AVERAGE_CHOICES[args.flip_average],
                   args.chroma_gain)
    if args.explain and len(jobs) != 1:
        raise UsageError("--explain works for a single target")
    if args.explain and Path(args.explain).suffix.lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg"):
        raise UsageError(f"--explain {args.explain}: use a .png, .jpg, .pdf or .svg file name")
    if args.explain:
        check_output_file(Path(args.explain), "--explain", folder_must_exist=True)
    _no_overwritten_input(jobs, Path(args.explain) if args.explain else None,
                          Path(args.reference_from) if args.reference_from else None)
    try:
        model = load_model(args.checkpoint, args.device)
    except CheckpointError as err:
        if str(err).startswith("unknown checkpoint"):
            raise UsageError(str(err)) from None
        raise
    if args.explain and model.config.variant != "super":
        raise UsageError(f"--explain needs a super-attention checkpoint (variant 'super'); {args.checkpoint} is "
                         f"'{model.config.variant}'")
    if not args.pairs and Path(args.target).is_dir() and args.reference is not None:
        read_image(args.reference, role="reference")  # one reference for the whole folder: a bad one fails once
    if args.reference_from:
        suggester = ReferenceSuggester("demo", device=args.device)
        scan = suggester.scan(args.reference_from)
        for line in scan.skipped:
            print(f"{PROG}: skipped: {line}", file=sys.stderr)
        if scan.cache_error:
            print(f"{PROG}: warning: {scan.cache_error}", file=sys.stderr)
    if args.pairs or Path(args.target).is_dir():
        Path(args.output).mkdir(parents=True, exist_ok=True)
    return jobs, suggester, scan


def colorize_one(args: argparse.Namespace, job: Job, suggester: ReferenceSuggester | None, scan) -> None:
    """One job: pick the reference (--reference-from), colorize, write the output (and --explain's figure)."""
    target, reference, output = job.target, job.reference, job.output
    source = target  # a path, or the target already read to rank the folder for it
    if job.box is not None:  # the pairs file's crop of the reference, as sa-evaluate cuts it
        reference = crop_reference(read_image(reference, role="reference"), job.box)
    if suggester is not None:
        source = read_image(target, role="target")
        best = suggester.rank(source, scan, 1, target_hash=file_hash(target))
        if not best:
            raise ImageInputError(f"target image {target}: no other photo in {args.reference_from}")
        reference = best[0].path
        print(f"{PROG}: {target} <- reference {reference} (distance {best[0].distance:.3f})", file=sys.stderr)
    result = colorize_detailed(source, reference, args.checkpoint, args.device, args.mode, args.working_size,
                               args.slic, FLIP_AVERAGE_CHOICES[args.flip_average], args.chroma_gain,
                               BLEND_CHOICES[args.blend])
    write_image_atomic(output, np.asarray(result.image, dtype=np.float32) / 255.0)
    if args.explain:
        shown = other_methods(result.target_l[0, 0].numpy(), result.reference[0].permute(1, 2, 0).numpy(),
                              args.checkpoint, args.device, args.slic)
        try:
            explain_figure(result, args.explain, comparisons=shown, checkpoint=str(args.checkpoint))
        except OSError as err:  # disk full, a name too long...: the result is written, the figure is not
            raise ImageOutputError(f"--explain figure {args.explain} could not be written "
                                   f"({err.strerror or one_line(err)})") from None


def main(argv: list[str] | None = None) -> None:
    """`sa-colorize`: one line on stderr per problem; exit 2 for usage errors, 1 if any image failed."""
    args = parser().parse_args(argv)
    jobs, suggester, scan = run_command(PROG, lambda: prepare(args), failures=(CheckpointError, OSError, RuntimeError,
                                                                        AssetUnavailable, ImageInputError))
    failures = 0
    progress = tqdm(total=len(jobs), unit="image", desc="colorize") if len(jobs) > 1 else None

    def report_failure(message: object) -> None:  # on its own line, not glued onto the progress bar
        if progress is None:
            report(PROG, message)
        else:
            progress.write(f"{PROG}: error: {one_line(message)}", file=sys.stderr)

    for job in jobs:
        target = job.target
        try:
            colorize_one(args, job, suggester, scan)
        except (ImageInputError, ImageOutputError, UsageError, DeviceError) as err:
            failures += 1
            report_failure(err)
        except (RuntimeError, MemoryError, OSError) as err:  # e.g. out of memory in highres mode
            failures += 1
            report_failure(f"{target}: {one_line(err)[:200]}")
        except KeyboardInterrupt:
            interrupted(PROG, f"interrupted at {target}; finished outputs are complete, none is half-written")
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()
    if failures and len(jobs) == 1:
        sys.exit(EXIT_FAILURE)  # its one error line is already printed
    if failures:
        fail(PROG, f"{failures} of {len(jobs)} image(s) failed")


if __name__ == "__main__":
    main()
