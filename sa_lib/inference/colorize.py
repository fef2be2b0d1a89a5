"""Colorize a gray target from a colour reference: the Python API and the `sa-colorize` command.

    sa-colorize TARGET REFERENCE -o OUT.png [--checkpoint demo-transfer] [--mode fast|highres] [--explain F.png]
                [--slic auto|skimage|opencv|torch]
    sa-colorize TARGET_DIR REFERENCE -o OUT_DIR          # every image of a folder, one reference
    sa-colorize --pairs PAIRS.csv -o OUT_DIR             # CSV rows: target,reference
    sa-colorize TARGET --reference-from PHOTOS_DIR -o OUT.png   # the reference: the top-1 of sa-suggest

Any size and aspect ratio. Only ab is predicted: the output is rebuilt from the target's own full-resolution
L*, so it has the target's size, orientation and detail. A colour target is used through its L* only.
`fast` (default) predicts ab at a working size (long side 256 px by default) and upsamples it onto the
full-resolution L*; `highres` runs the network and the super-attention at the image's own resolution.
`--slic` picks the superpixel backend of super-attention (sa_lib.superpixels; auto: on the CPU scikit-image,
the demo weights' own, up to 256x256 px per level and OpenCV's 2.2x faster SLIC above; batched torch on a GPU).
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .baselines import SuperpixelFeatureTransfer
from .checkpoint import DEFAULT_CHECKPOINT, PAPER_MODEL_CHECKPOINT, CheckpointError, load_checkpoint
from .devices import DeviceError, resolve_device
from .hub import AssetUnavailable
from .color import combine_l_ab, rgb_to_lab
from .image_io import (
    IMAGE_SUFFIXES,
    MIN_SIDE,
    ImageInputError,
    ImageOutputError,
    read_image,
    write_image_atomic,
)
from .model import AUTHORS_PREPROCESSING, Colorizer
from .pairs import PairsError, output_keys
from .suggest import ReferenceSuggester, SuggestError, file_hash
from .superpixels import SLIC_BACKENDS, resolve_backend

MODES = ("fast", "highres")
SLIC_CHOICES = ("auto", *SLIC_BACKENDS)
DEFAULT_WORKING_SIZE = 256


class UsageError(ValueError):
    """A mistake in how the command was called (exit code 2)."""


@dataclass
class Colorization:
    """The result and what produced it: the image, and the model's intermediates at the working size."""

    image: Image.Image
    intermediates: dict
    target_l: torch.Tensor  # (1, 1, h, w) L* at the size the network ran
    reference: torch.Tensor  # (1, 3, h', w') sRGB at the size the network ran
    full_l: torch.Tensor | None = None  # (1, 1, H, W) the target's own L* at full resolution (on the CPU)


def resolve_slic(slic: str, device: torch.device | str) -> str:
    """The SLIC backend that `slic` (auto, skimage, opencv or torch) runs on `device`; UsageError if none."""
    if slic not in SLIC_CHOICES:
        raise UsageError(f"unknown SLIC backend {slic!r}; choose {', '.join(SLIC_CHOICES)}")
    try:
        return resolve_backend(slic, device)
    except RuntimeError as err:  # opencv asked for but not installed
        raise UsageError(str(err)) from err


@functools.lru_cache(maxsize=4)
def load_model(checkpoint: str = DEFAULT_CHECKPOINT, device: str = "auto") -> Colorizer:
    """The colorizer of a shipped checkpoint name or a .safetensors path, cached per (checkpoint, device)."""
    return load_checkpoint(checkpoint, device=resolve_device(device))


def as_rgb_array(image: str | Path | Image.Image | np.ndarray, role: str) -> np.ndarray:
    """Paths, PIL images or arrays (H, W) / (H, W, 3|4), uint8 or float in [0, 1] -> (H, W, 3) float32."""
    if isinstance(image, (str, Path)):
        return read_image(image, role=role)
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    else:
        array = np.asarray(image)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        if array.ndim != 3 or array.shape[2] not in (3, 4):
            raise ImageInputError(f"{role} array must be (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
        array = array[..., :3]
        if np.issubdtype(array.dtype, np.integer):  # uint8, uint16 (16-bit files), ...: scale by the type's max
            array = array.astype(np.float32) / np.iinfo(array.dtype).max
        elif array.size and float(np.nanmax(array)) > 1.0 + 1e-6:
            raise ImageInputError(f"{role} array is float with values above 1; give floats in [0, 1] or integers")
        else:
            array = array.astype(np.float32)
    if min(array.shape[:2]) < MIN_SIDE:
        raise ImageInputError(f"{role} image is {array.shape[1]}x{array.shape[0]} px; the smallest side must be "
                              f"at least {MIN_SIDE} px")
    return np.clip(array, 0.0, 1.0)


def working_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the long side `long_side` (never upscaled) and the aspect ratio kept, sides >= 32."""
    scale = min(1.0, long_side / max(height, width))
    return max(32, round(height * scale)), max(32, round(width * scale))


def exact_8bit(rgb: torch.Tensor) -> torch.Tensor:
    """A float32 image -> float64; one read from an 8-bit file gets its exact values k / 255 back.

    For the authors' preprocessing (ColorizerConfig.official), which runs SLIC in float64 on values read from
    8-bit files: float32's rounding of k / 255 (3e-8) is enough to move a few pixels of a flat region to
    another superpixel."""
    x = rgb.double()
    steps = torch.round(x * 255.0)
    return steps / 255.0 if (x * 255.0 - steps).abs().max() < 1e-3 else x


def _resize(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == shape:
        return x
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=True)


# Peak memory of --mode highres on the CPU, measured with demo-super (widths from 16): 2.6 GB for a 2048x1365
# pair, 7.7 GB for a 4000x2667 pair (BENCHMARKS.md), i.e. about 0.8 GB + 330 bytes per pixel of target plus
# reference. The per-pixel term grows with the network's first width.
HIGHRES_BASE_BYTES = 0.8e9
HIGHRES_BYTES_PER_PIXEL = 330.0


class InsufficientMemory(RuntimeError):
    """--mode highres would need more memory than the machine has available: refused before it starts."""


def highres_memory_estimate(target_pixels: int, reference_pixels: int, first_width: int = 16) -> float:
    """Approximate peak bytes of a highres colorization on the CPU (see HIGHRES_BYTES_PER_PIXEL)."""
    return HIGHRES_BASE_BYTES + HIGHRES_BYTES_PER_PIXEL * first_width / 16 * (target_pixels + reference_pixels)


def available_memory() -> float | None:
    """MemAvailable of /proc/meminfo in bytes, or None where it cannot be read (then nothing is checked)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_highres_memory(target_shape: tuple[int, int], reference_shape: tuple[int, int], first_width: int) -> None:
    """Refuse, in one line, a highres run that would not fit in the available memory (instead of an OOM kill)."""
    need = highres_memory_estimate(target_shape[0] * target_shape[1], reference_shape[0] * reference_shape[1],
                                   first_width)
    have = available_memory()
    if have is not None and need > have:
        raise InsufficientMemory(
            f"--mode highres needs about {need / 1e9:.1f} GB for a {target_shape[1]}x{target_shape[0]} target and a "
            f"{reference_shape[1]}x{reference_shape[0]} reference, {have / 1e9:.1f} GB is available: use --mode fast "
            f"(the default) or smaller images")


def colorize_detailed(target, reference, checkpoint: str = DEFAULT_CHECKPOINT, device: str = "auto",
                      mode: str = "fast", working_size: int = DEFAULT_WORKING_SIZE,
                      slic: str = "auto") -> Colorization:
    """colorize(), also returning the attention maps and superpixels (for --explain and notebooks)."""
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; choose fast or highres")
    if working_size < 32:
        raise UsageError(f"working size must be at least 32 px, got {working_size}")
    resolve_slic(slic, resolve_device(device))
    model = load_model(str(checkpoint), device)
    dev = next(model.parameters()).device
    target_rgb = torch.from_numpy(as_rgb_array(target, "target")).permute(2, 0, 1)[None].to(dev)  # (1, 3, H, W)
    reference_rgb = torch.from_numpy(as_rgb_array(reference, "reference")).permute(2, 0, 1)[None].to(dev)
    if mode == "highres" and dev.type == "cpu":
        check_highres_memory(tuple(target_rgb.shape[-2:]), tuple(reference_rgb.shape[-2:]), model.config.widths[0])
    with torch.inference_mode():
        if model.config.luminance_input == AUTHORS_PREPROCESSING:  # float64 preprocessing: SLIC is discontinuous
            target_rgb, reference_rgb = exact_8bit(target_rgb), exact_8bit(reference_rgb)
        full_l = rgb_to_lab(target_rgb)[:, :1]  # (1, 1, H, W): the target's own L*, kept at full resolution
        if mode == "fast":
            net_l = _resize(full_l, working_shape(*full_l.shape[-2:], working_size))
            net_ref = _resize(reference_rgb, working_shape(*reference_rgb.shape[-2:], working_size))
        else:
            net_l, net_ref = full_l, reference_rgb
        ab, intermediates = model(net_l, net_ref, slic_backend=slic)
        rgb = combine_l_ab(full_l, ab.float())[0]  # ab upsampled onto the full-resolution L*
    pixels = (rgb.permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Colorization(Image.fromarray(pixels), intermediates, net_l.cpu(), net_ref.cpu(), full_l.cpu())


def colorize(target, reference, checkpoint: str = DEFAULT_CHECKPOINT, device: str = "auto", mode: str = "fast",
             working_size: int = DEFAULT_WORKING_SIZE, slic: str = "auto") -> Image.Image:
    """Colorize `target` (path, PIL image or array; colour targets are used through their L*) from
    `reference`. Returns an RGB PIL image of the target's size. `slic`: superpixel backend (auto, skimage,
    opencv or torch; see sa_lib.superpixels)."""
    return colorize_detailed(target, reference, checkpoint, device, mode, working_size, slic).image


def other_methods(target_l: np.ndarray, reference: np.ndarray, checkpoint: str = DEFAULT_CHECKPOINT,
                  device: str = "auto", slic: str = "auto") -> dict[str, np.ndarray]:
    """The same pair coloured by the methods a result is shown beside (--explain, the explorer): the paper's
    super-attention model (unless `checkpoint` is it) and the training-free [17] baseline.

    target_l: (h, w) L* in [0, 100] and reference (h', w', 3) sRGB in [0, 1], at the size the network ran.
    Returns title -> (h, w, 3) sRGB in [0, 1].
    """
    shown: dict[str, np.ndarray] = {}
    if Path(str(checkpoint)).stem != PAPER_MODEL_CHECKPOINT:
        model = load_model(PAPER_MODEL_CHECKPOINT, device)
        dev = next(model.parameters()).device
        l_star = torch.from_numpy(np.ascontiguousarray(target_l, dtype=np.float32))[None, None].to(dev)  # (1, 1, h, w)
        ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).permute(2, 0, 1)[None].to(dev)
        with torch.inference_mode():
            ab, _ = model(l_star, ref, slic_backend=slic)
            rgb = combine_l_ab(l_star, ab.float())[0]  # (3, h, w)
        shown[f"paper's super-attention ({PAPER_MODEL_CHECKPOINT})"] = rgb.permute(1, 2, 0).cpu().numpy()
    shown["Carrillo 2022 [17] (training-free)"] = carrillo_baseline(str(resolve_device(device)))(
        np.asarray(target_l, dtype=np.float64), np.asarray(reference, dtype=np.float64))
    return shown


@functools.lru_cache(maxsize=2)
def carrillo_baseline(device: str = "cpu") -> SuperpixelFeatureTransfer:
    """The [17] baseline, built once per device (its encoder's weights are read from disk once)."""
    return SuperpixelFeatureTransfer(device=device)


# ------------------------------------------------------------------------------------------------------- CLI


def _unique_outputs(jobs: list[tuple[Path, Path, Path]]) -> list[tuple[Path, Path, Path]]:
    """Refuse two targets that would write the same output file (e.g. x.jpg and x.png)."""
    seen: dict[Path, Path] = {}
    for target, _, output in jobs:
        if output in seen:
            raise UsageError(f"{seen[output]} and {target} would both be written to {output}; rename one")
        seen[output] = target
    return jobs


def _output_folder(out: Path) -> Path:
    """The output folder of folder and pairs mode: refused if it is a file; created later, once all is checked."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} is a file; folder and pairs mode write into a folder")
    return out


def _jobs(args: argparse.Namespace) -> list[tuple[Path, Path | None, Path]]:
    """(target, reference, output) triples from the command line; usage mistakes raise UsageError.

    The reference is None with --reference-from: each target's top-1 is picked when it is colorized."""
    out = Path(args.output)
    if args.reference_from and (args.pairs or args.reference is not None):
        raise UsageError("--reference-from replaces REFERENCE: give one or the other"
                         + (", and not with --pairs" if args.pairs else ""))
    if args.pairs:
        _output_folder(out)
        pairs_file = Path(args.pairs)
        if not pairs_file.is_file():
            raise UsageError(f"pairs file not found: {pairs_file}")
        with open(pairs_file, newline="") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
        if rows and rows[0][:2] == ["target", "reference"]:
            rows = rows[1:]
        for number, row in enumerate(rows, start=1):
            if len(row) < 2:
                raise UsageError(f"{pairs_file}: row {number} needs target,reference")
        base = pairs_file.parent
        try:
            keys = output_keys([(r[0], r[1]) for r in rows])
        except PairsError as err:
            raise UsageError(f"{pairs_file}: {err}") from None
        return _unique_outputs([(base / r[0], base / r[1], out / (key + ".png")) for r, key in zip(rows, keys)])
    if args.target is None or (args.reference is None and not args.reference_from):
        raise UsageError("give TARGET and REFERENCE, TARGET and --reference-from FOLDER, or --pairs FILE")
    target = Path(args.target)
    reference = Path(args.reference) if args.reference is not None else None
    if target.is_dir():
        _output_folder(out)
        files = sorted(p for p in target.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {target}")
        return _unique_outputs([(f, reference, out / (f.stem + ".png")) for f in files])
    if out.is_dir():
        raise UsageError(f"output path is a directory: {out} (give a file name, e.g. {out / 'result.png'})")
    if not out.parent.is_dir():
        raise UsageError(f"output folder does not exist: {out.parent}")
    return [(target, reference, out)]


EPILOG = """one example per mode:
  sa-colorize old.jpg reference.jpg -o result.png                 # a pair (--explain why.png: where colours came from)
  sa-colorize scans/ reference.jpg -o coloured/                   # every image of a folder, one reference
  sa-colorize --pairs pairs.csv -o coloured/                      # CSV rows target,reference (paths relative to it)
  sa-colorize old.jpg --reference-from ~/Pictures -o result.png   # the reference: sa-suggest's top-1 in a folder
Folder and pairs mode create the output folder. Errors are one line each; exit 2 for usage, 1 if an image failed.
"""


def main(argv: list[str] | None = None) -> None:
    """`sa-colorize`: one line on stderr per problem; exit 2 for usage errors, 1 if any image failed."""
    parser = argparse.ArgumentParser(prog="sa-colorize", description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", help="gray (or colour) target image, or a folder of them")
    parser.add_argument("reference", nargs="?", help="colour reference image")
    parser.add_argument("-o", "--output", required=True,
                        help="output image (or folder for folder/pairs input; created if missing)")
    parser.add_argument("--pairs", help="CSV file of target,reference rows (paths relative to the file)")
    parser.add_argument("--reference-from", metavar="FOLDER",
                        help="use the photo of FOLDER that sa-suggest ranks first for each target (demo profile's "
                             "ranking; features cached per folder)")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                        help=f"shipped name ({DEFAULT_CHECKPOINT}, the default; {PAPER_MODEL_CHECKPOINT}, the paper's "
                             "model; demo-standard, demo-none) or a .safetensors file")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--mode", default="fast", choices=MODES)
    parser.add_argument("--working-size", type=int, default=DEFAULT_WORKING_SIZE,
                        help="fast mode: long side (px) at which ab is predicted")
    parser.add_argument("--slic", default="auto", choices=SLIC_CHOICES,
                        help="superpixel backend (auto: skimage up to 256x256 px per level and opencv above on "
                             "the CPU, torch on a GPU)")
    parser.add_argument("--explain", help="also write a figure of where the colours came from (single pair)")
    args = parser.parse_args(argv)
    suggester, scan = None, None
    try:
        jobs = _jobs(args)
        resolve_slic(args.slic, resolve_device(args.device))
        if args.explain and len(jobs) != 1:
            raise UsageError("--explain works for a single target")
        if args.explain and Path(args.explain).suffix.lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg"):
            raise UsageError(f"--explain {args.explain}: use a .png, .jpg, .pdf or .svg file name")
        load_model(args.checkpoint, args.device)
        if args.reference_from:
            suggester = ReferenceSuggester("demo", device=args.device)
            scan = suggester.scan(args.reference_from)
            for line in scan.skipped:
                print(f"sa-colorize: skipped: {line}", file=sys.stderr)
        if args.pairs or Path(args.target).is_dir():
            Path(args.output).mkdir(parents=True, exist_ok=True)
    except (UsageError, DeviceError, SuggestError) as err:
        parser.exit(2, f"sa-colorize: error: {err}\n")
    except CheckpointError as err:
        unknown = str(err).startswith("unknown checkpoint")
        parser.exit(2 if unknown else 1, f"sa-colorize: error: {err}\n")
    except (OSError, RuntimeError, AssetUnavailable) as err:
        parser.exit(1, f"sa-colorize: error: {' '.join(str(err).split())[:200]}\n")

    failures = 0
    progress = None
    if len(jobs) > 1:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(jobs), unit="image", desc="colorize")
    for target, reference, output in jobs:
        try:
            source = target  # a path, or the target already read to rank the folder for it
            if suggester is not None:
                source = read_image(target, role="target")
                best = suggester.rank(source, scan, 1, target_hash=file_hash(target))
                if not best:
                    raise ImageInputError(f"target image {target}: no other photo in {args.reference_from}")
                reference = best[0].path
                print(f"sa-colorize: {target} <- reference {reference} (distance {best[0].distance:.3f})",
                      file=sys.stderr)
            result = colorize_detailed(source, reference, args.checkpoint, args.device, args.mode, args.working_size,
                                       args.slic)
            write_image_atomic(output, np.asarray(result.image, dtype=np.float32) / 255.0)
            if args.explain:
                from .explain import explain_figure

                shown = other_methods(result.target_l[0, 0].numpy(), result.reference[0].permute(1, 2, 0).numpy(),
                                      args.checkpoint, args.device, args.slic)
                explain_figure(result, args.explain, comparisons=shown, checkpoint=str(args.checkpoint))
        except (ImageInputError, ImageOutputError, UsageError, DeviceError) as err:
            failures += 1
            print(f"sa-colorize: error: {err}", file=sys.stderr)
        except (RuntimeError, MemoryError) as err:  # e.g. out of memory in highres mode
            failures += 1
            print(f"sa-colorize: error: {target}: {' '.join(str(err).split())[:200]}", file=sys.stderr)
        except KeyboardInterrupt:
            print(f"sa-colorize: interrupted at {target}; finished outputs are complete, none is half-written",
                  file=sys.stderr)
            sys.exit(130)
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()
    if failures:
        print(f"sa-colorize: {failures} of {len(jobs)} image(s) failed", file=sys.stderr)
        sys.exit(1)
