"""The web app (`sa-app`): colorize a photo from a reference in the browser, and see why a region got its colour.

What it does, in the page:

- inputs: a target and a reference (upload, paste, or one of the demo pairs below them);
- options: the checkpoint (the shipped demo-* ones and any other .safetensors in checkpoints/), the mode
  (fast/highres), the working size (fast mode's long side) and the colour strength (a factor on the checkpoint's
  own chroma gain, ColorizerConfig.chroma_gain: 1 runs it as shipped, as `sa-colorize` does);
- output: the result at the target's full resolution beside the target's own L* (what the model sees), a
  before/after slider, and the PNG to download;
- why this colour: click a point of the target (or of the result): the reference lit by that superpixel's
  attention row at the chosen level, and two swatches, the colour the row points at and the colour the model
  gave it (the notebook explorer's logic, sa_lib.figures.attention_maps, on the one model run of the pair);
- suggest references: the photos of a folder on the server ranked for the current target (sa_lib.app.suggest,
  the same ranking as `sa-references`), as a gallery; clicking one makes it the reference.

Errors (a file that is not an image, too small, too large, truncated; a checkpoint that cannot load; highres
that would not fit in memory) are the CLI's one-line messages, shown in the page; the app keeps running.
Requests queue and run one at a time per action, and one colorizer model is kept in memory: choosing another
checkpoint drops the previous one.

The logic lives in `AppService` (plain Python, tested without a server); `build_app` only lays out the Gradio
page and wires it to the service. Gradio is the optional `app` extra (`pip install -e '.[app]'`) and is only
imported by `build_app` and `launch`. Analytics are off and no share link is ever made: the app works offline.
"""

# No `from __future__ import annotations` here: Gradio reads its handlers' annotations (evt: gr.SelectData) at
# run time to know which ones want the click's data.
import ipaddress
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..figures.attention_maps import (
    LEVEL_NAMES,
    LEVELS,
    PairAttention,
    default_point,
    from_colorization,
    reference_view,
    selection_html,
    superpixel_at,
    target_view,
)
from ..core.color import combine_l_ab
from ..core.devices import DeviceError, resolve_device
from ..core.errors import UsageError
from ..core.files import atomic_write
from ..core.hub import AssetUnavailable
from ..data.demo_data import DEMO_DIR
from ..data.image_io import ImageInputError, ImageOutputError, read_image, write_image_atomic
from ..data.pairs import Pair, PairsError, crop_reference, read_pairs
from ..data.references import DEFAULT_K
from ..inference.colorize import DEFAULT_WORKING_SIZE, MODES, colorize_detailed, load_model
from ..inference.memory import InsufficientMemory
from ..model.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT, PAPER_MODEL_CHECKPOINT, CheckpointError
from ..model.colorizer import CHROMA_GAIN_RANGE, check_chroma_gain
from .suggest import ReferenceSuggester, SuggestError, Suggestion, as_uint8, file_hash, thumbnail

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
EXAMPLE_COUNT = 4  # demo pairs offered under the inputs
EXAMPLE_FILES = ("matched_pairs.csv", "eval_pairs.csv")  # the first that exists in data/demo gives the examples
WORKING_SIZES = (64, 1024)  # range of the working-size slider, px
VIEW_SIDE = 480  # px: the why-view's pictures are enlarged (nearest neighbour) to about this long side
KEEP_RUNS = 32  # result folders kept on disk (oldest removed first)
STRENGTHS = (0.25, 3.0)  # range of the colour-strength slider: a factor on the checkpoint's own chroma gain
MAX_UPLOAD = "200mb"  # Gradio refuses larger uploads; pixels are limited by sa_lib.data.image_io (100 megapixels)


class AppError(ValueError):
    """A one-line message for the page (bad upload, unusable checkpoint, folder not allowed, ...)."""


# ------------------------------------------------------------------------------------------- choices


def checkpoint_choices(folder: Path = CHECKPOINT_DIR) -> list[str]:
    """The checkpoints the app offers: the shipped demo-* ones (the default first, then the paper's demo-super),
    then any other .safetensors of `folder`, by name (load_checkpoint resolves a name in checkpoints/), and last
    the paper-reading ablations (demo-super-paper-*, a research comparison rather than a model to colorize with)."""
    names = sorted(p.stem for p in Path(folder).glob("*.safetensors"))
    ablations = [n for n in names if n.startswith(PAPER_MODEL_CHECKPOINT + "-paper-")]
    demo = sorted((n for n in names if n.startswith("demo-") and n not in ablations),
                  key=lambda n: (n != DEFAULT_CHECKPOINT, n != PAPER_MODEL_CHECKPOINT, n))
    return demo + [n for n in names if not n.startswith("demo-")] + ablations


def example_pairs(limit: int = EXAMPLE_COUNT, demo_dir: Path = DEMO_DIR) -> list[Pair]:
    """The first `limit` pairs of data/demo/matched_pairs.csv when it exists, else of eval_pairs.csv (each target
    with its ranked reference); [] when neither can be read."""
    for name in EXAMPLE_FILES:
        path = Path(demo_dir) / name
        if path.is_file():
            try:
                return read_pairs(path, Path(demo_dir) / "images", Path(demo_dir) / "images", limit=limit)
            except PairsError as err:
                print(f"sa-app: warning: no examples from {path}: {err}", file=sys.stderr)
    return []


def example_files(pairs: list[Pair], folder: Path) -> list[tuple[Path, Path, Path]]:
    """(target, reference, thumbnail) per pair, copied into `folder` (where the page may serve them): the
    reference cut to its box, and a thumbnail of the two side by side for the examples gallery."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, pair in enumerate(pairs):
        target = folder / f"{number}-target{pair.target_path.suffix.lower()}"
        reference = folder / f"{number}-reference.png"
        thumb = folder / f"{number}-pair.jpg"
        if not thumb.is_file():
            atomic_write(target, lambda tmp: shutil.copyfile(pair.target_path, tmp))
            with Image.open(pair.reference_path) as image:
                cropped = crop_reference(image.convert("RGB"), pair.box)
            atomic_write(reference, lambda tmp: cropped.save(tmp, format="PNG"))
            sides = [thumbnail(read_image(path, role="example"), 160) for path in (target, reference)]
            sheet = Image.new("RGB", (sum(s.width for s in sides) + 6, max(s.height for s in sides)), "white")
            sheet.paste(sides[0], (0, 0))
            sheet.paste(sides[1], (sides[0].width + 6, 0))
            atomic_write(thumb, lambda tmp: sheet.save(tmp, format="JPEG", quality=90))
        rows.append((target, reference, thumb))
    return rows


# -------------------------------------------------------------------------------------------- inputs


def read_upload(path: str | Path | None, role: str) -> np.ndarray:
    """An uploaded image as sa-colorize reads it, (H, W, 3) float32; AppError with the CLI's one-line message,
    naming the file as the user named it (the upload's file name, not the server's temporary path)."""
    if path is None or str(path) == "":
        raise AppError(f"no {role} image: upload one (or pick an example)")
    try:
        return read_image(path, role=role)
    except ImageInputError as err:
        raise AppError(str(err).replace(f"'{path}'", f"'{Path(path).name}'")) from None


def neutral_gray(full_l: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8: the target's own L* (1, 1, H, W), as colorize computed it, shown as gray (a* = b* = 0):
    what the model sees of the target."""
    with torch.inference_mode():
        gray = combine_l_ab(full_l, torch.zeros(1, 2, *full_l.shape[-2:]))[0]  # (3, H, W) in [0, 1]
    return as_uint8(gray.permute(1, 2, 0).numpy())


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the app is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One colorization: the files the page shows and the attention the why-view draws from."""

    result_png: Path  # the full-resolution result, the file the page offers for download
    before_png: Path  # the target's own L* as gray, same size
    size: tuple[int, int]  # (width, height) of the target and the result
    attention: PairAttention | None  # None for a checkpoint without super-attention
    checkpoint: str
    seconds: float
    chroma_gain: float  # the a*b* were multiplied by it: the checkpoint's own times the page's colour strength


@dataclass
class Why:
    """What the why-view shows now: the run's attention, the level and the picked point (y, x, network size)."""

    attention: PairAttention
    size: tuple[int, int]  # (width, height) of the full-resolution target, to map clicks on the result
    level: int
    point: tuple[int, int]


@dataclass
class WhyView:
    """The why-view's pictures and text for one pick."""

    target: np.ndarray  # (s h, s w, 3) uint8: the gray target with the picked superpixel outlined
    reference: np.ndarray  # (s h', s w', 3) uint8: the reference lit by its attention row
    html: str  # where it is, its strongest reference superpixel and the two swatches
    label: int


def whole_number(value: object, what: str) -> int:
    """A page's number (Gradio gives floats) as an int; AppError if it is not a finite whole number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AppError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise AppError(f"{what} must be a whole number, got {value!r}")
    return int(number)


class AppService:
    """The app without its page: one model in memory, results written under `work_dir`, folders to rank.

    `photos_root`: when set, only folders inside it can be ranked; otherwise any folder when the app is served
    on a loopback address, none beyond it (`allow_any_folder=False`)."""

    def __init__(self, device: str = "auto", work_dir: Path | str | None = None, photos_root: Path | str | None = None,
                 allow_any_folder: bool = True, keep_runs: int = KEEP_RUNS):
        self.device = str(resolve_device(device))
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="sa-app-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.photos_root = Path(photos_root).resolve() if photos_root is not None else None
        self.allow_any_folder = allow_any_folder
        self.keep_runs = keep_runs
        self.loaded: str | None = None  # the checkpoint whose model is in memory
        self.runs = 0  # colorizations done, for the tests and the log
        self._suggester: ReferenceSuggester | None = None
        self._lock = threading.Lock()  # model swaps and runs never overlap, whatever the queue settings

    # ------------------------------------------------------------------------------------- colorize

    def _model(self, checkpoint: str) -> None:
        """Keep exactly one colorizer in memory: drop the previous checkpoint's before loading another."""
        if checkpoint != self.loaded:
            load_model.cache_clear()
            self.loaded = None
            try:
                load_model(checkpoint, self.device)
            except CheckpointError as err:
                raise AppError(str(err)) from None
            self.loaded = checkpoint

    def colorize(self, target: str | Path | None, reference: str | Path | None, checkpoint: str = DEFAULT_CHECKPOINT,
                 mode: str = "fast", working_size: int = DEFAULT_WORKING_SIZE,
                 progress: Callable[[float, str], None] | None = None, strength: float = 1.0) -> Run:
        """Colorize an uploaded pair; the result and the gray target are written as PNGs in a new run folder.

        `strength` multiplies the checkpoint's own chroma gain (its calibrated ColorizerConfig.chroma_gain): 1 runs
        the checkpoint as `sa-colorize` does; the product must lie in CHROMA_GAIN_RANGE."""
        step = progress or (lambda fraction, text: None)
        start = time.perf_counter()
        if mode not in MODES:
            raise AppError(f"unknown mode {mode!r}; choose fast or highres")
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise AppError(f"colour strength {strength!r} is not a number") from None
        working_size = whole_number(working_size, "working size")
        step(0.05, "reading the images")
        target_rgb, reference_rgb = read_upload(target, "target"), read_upload(reference, "reference")
        with self._lock:
            step(0.15, f"loading {checkpoint}" if checkpoint != self.loaded else f"{checkpoint} is loaded")
            self._model(checkpoint)
            own_gain = load_model(checkpoint, self.device).config.chroma_gain
            gain = own_gain * strength
            try:
                check_chroma_gain(gain)  # NaN included
            except ValueError:
                low, high = CHROMA_GAIN_RANGE
                raise AppError(f"colour strength {strength:g} gives {checkpoint} a chroma gain of {gain:.3g} (its own "
                               f"{own_gain:g} times {strength:g}), outside [{low:g}, {high:g}]") from None
            step(0.3, f"colorizing ({mode}{f', {int(working_size)} px' if mode == 'fast' else ''})")
            try:
                result = colorize_detailed(target_rgb, reference_rgb, checkpoint, self.device, mode, int(working_size),
                                           chroma_gain=None if strength == 1.0 else gain)
            except (UsageError, InsufficientMemory, DeviceError) as err:
                raise AppError(str(err)) from None
            except (RuntimeError, MemoryError) as err:  # e.g. out of memory in highres mode
                raise AppError(f"colorization failed: {' '.join(str(err).split())[:200]}") from None
            self.runs += 1
        step(0.85, "writing the PNG")
        folder = self._run_folder()
        stem = Path(str(target)).stem or "target"
        result_png, before_png = folder / f"{stem}-colorized.png", folder / f"{stem}-gray.png"
        try:
            write_image_atomic(result_png, np.asarray(result.image))
            write_image_atomic(before_png, neutral_gray(result.full_l))
        except ImageOutputError as err:
            raise AppError(str(err)) from None
        attention = from_colorization(result, stem) if "target_superpixels" in result.intermediates else None
        return Run(result_png, before_png, result.image.size, attention, checkpoint, time.perf_counter() - start,
                   gain)

    def _run_folder(self) -> Path:
        """A new folder for one run's files; the oldest beyond `keep_runs` are removed."""
        runs = sorted((p for p in self.work_dir.glob("run-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for old in runs[:max(0, len(runs) - self.keep_runs + 1)]:
            shutil.rmtree(old, ignore_errors=True)
        folder = self.work_dir / f"run-{time.time_ns()}-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        return folder

    # ---------------------------------------------------------------------------------- why this colour

    @staticmethod
    def why_start(run: Run, level: int = LEVELS[0]) -> Why | None:
        """The why-view of a new run: at the centre of the target (None without super-attention)."""
        if run.attention is None:
            return None
        return Why(run.attention, run.size, level, default_point(run.attention))

    @staticmethod
    def view_scale(why: Why) -> int:
        """How many screen pixels per network pixel the why-view's pictures are drawn with (nearest neighbour)."""
        return max(1, round(VIEW_SIDE / max(why.attention.gray.shape)))

    @staticmethod
    def why_click(why: Why, x: float, y: float, on: str = "view") -> Why:
        """A click at pixel (x, y) of the why-view's target as drawn (`on="view"`) or of the full-resolution
        target or result (`on="full"`): the picked point moves there."""
        h, w = why.attention.gray.shape
        if on == "full":
            x, y = x * w / why.size[0], y * h / why.size[1]
        else:
            scale = AppService.view_scale(why)
            x, y = x / scale, y / scale
        why.point = (min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1))
        return why

    @staticmethod
    def why_level(why: Why, level: int) -> Why:
        """Another level, the same point (the superpixel under it at that level is picked)."""
        if level not in why.attention.attention:
            raise AppError(f"level {level} is not one of {why.attention.levels}")
        why.level = int(level)
        return why

    @staticmethod
    def why_view(why: Why) -> WhyView:
        """The pictures (uint8, enlarged by `view_scale`) and text of the pick: only the drawing is redone."""
        pa, level = why.attention, why.level
        label = superpixel_at(pa, level, *why.point)
        scale = AppService.view_scale(why)

        def shown(image: np.ndarray) -> np.ndarray:
            return np.repeat(np.repeat(as_uint8(image), scale, axis=0), scale, axis=1)

        return WhyView(shown(target_view(pa, level, label)), shown(reference_view(pa, level, label)),
                       selection_html(pa, level, label, why.point), label)

    # ------------------------------------------------------------------------------- suggest references

    def allowed_folder(self, folder: str | Path) -> Path:
        """The folder to rank, if this app may read it; AppError otherwise."""
        if not str(folder).strip():
            raise AppError("type the path of a folder of photos on the server")
        path = Path(str(folder).strip()).expanduser()
        resolved = path.resolve()
        if self.photos_root is not None:
            if resolved != self.photos_root and self.photos_root not in resolved.parents:
                raise AppError(f"folder {path} is outside {self.photos_root}, the folder sa-app was started with "
                               f"(--photos)")
        elif not self.allow_any_folder:
            raise AppError("this app is served beyond this machine: start sa-app with --photos DIR to choose which "
                           "server folder it may rank")
        return path

    @property
    def suggester(self) -> ReferenceSuggester:
        """The ranking's encoder, built on first use and kept (a small network, beside the one colorizer)."""
        if self._suggester is None:
            self._suggester = ReferenceSuggester("demo", device=self.device)
        return self._suggester

    def suggest(self, target: str | Path | None, folder: str | Path, k: int = DEFAULT_K,
                progress: bool = False) -> tuple[list[Suggestion], list[str]]:
        """The k photos of `folder` nearest to the uploaded target, and the lines about unreadable photos."""
        k = whole_number(k, "the number of suggestions")
        if k < 1:
            raise AppError(f"the number of suggestions must be at least 1, got {k}")
        path = self.allowed_folder(folder)
        target_rgb = read_upload(target, "target")
        try:
            scan = self.suggester.scan(path, progress=progress)
            return self.suggester.rank(target_rgb, scan, k, target_hash=file_hash(target)), scan.skipped
        except SuggestError as err:
            raise AppError(str(err)) from None

    def as_reference(self, photo: str | Path) -> Path:
        """A copy of a suggested photo in the work folder, where the page may serve it as the reference."""
        folder = self._run_folder()
        copy = folder / Path(photo).name
        try:
            atomic_write(copy, lambda tmp: shutil.copyfile(photo, tmp))
        except OSError as err:
            raise AppError(f"photo '{photo}' cannot be read: {err.strerror or err}") from None
        return copy


# ------------------------------------------------------------------------------------------------ page

CSS = """
.sa-why-target img, .sa-result img { cursor: crosshair; }
.sa-swatch { margin-right: 6px; }
#sa-examples .thumbnail-item { aspect-ratio: 2 / 1; }  /* a pair: target and reference side by side */
"""


def _hand_over_the_path(image):
    """Make a gr.Image (type "filepath") give the app the uploaded file untouched. Gradio's own preprocessing
    opens the file with Pillow first and would fail on a bad file with its own message, before the app could
    check it with sa-colorize's reader. (Set on the instance: a subclass of gr.Image would make Gradio write a
    .pyi stub beside this module.)"""
    gradio_preprocess = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path:
            return payload.path
        return gradio_preprocess(payload)  # pasted data URLs: Gradio writes them to a file

    image.preprocess = preprocess
    return image


def build_app(service: AppService, photos: str | Path | None = None, demo_pairs: list[Pair] | None = None):
    """The Gradio Blocks of the app, wired to `service`; `photos` pre-fills the folder of the suggestion tab;
    `demo_pairs` replaces the examples (default: `example_pairs()`)."""
    offline_environment()
    import gradio as gr  # deferred: the optional 'app' extra, seconds to import

    pairs = example_pairs() if demo_pairs is None else demo_pairs
    examples = example_files(pairs, service.work_dir / "examples")
    choices = checkpoint_choices()
    levels = [(f"{level}: {LEVEL_NAMES[level]}", level) for level in LEVELS]

    def fail(err: Exception) -> gr.Error:
        """The page's error box: the one-line message; a bug also goes, with its traceback, to the server log."""
        if isinstance(err, (AppError, AssetUnavailable, ImageInputError)):  # the user's mistake: no server traceback
            return gr.Error(" ".join(str(err).split()), duration=None, print_exception=False)
        traceback.print_exc()  # once, here: Gradio would print the gr.Error's own, which says nothing more
        return gr.Error(f"internal error: {type(err).__name__}: {' '.join(str(err).split())[:200]}", duration=None,
                        print_exception=False)

    def why_outputs(why: Why | None):
        if why is None:
            note = ("<div class='sa-why-info'>This checkpoint has no super-attention: choose demo-transfer or "
                    "demo-super to see where each region's colour came from.</div>")
            return None, None, None, note
        view = AppService.why_view(why)
        return why, view.target, view.reference, f"<div class='sa-why-info'>{view.html}</div>"

    def on_colorize(target, reference, checkpoint, mode, working_size, level, strength=1.0, progress=gr.Progress()):
        try:
            run = service.colorize(target, reference, checkpoint, mode, working_size,
                                   progress=lambda f, text: progress(f, desc=text), strength=strength)
        except Exception as err:  # every failure becomes the page's one-line message
            raise fail(err) from None
        why = AppService.why_start(run, int(level))
        status = (f"{run.size[0]}x{run.size[1]} px with {run.checkpoint} ({mode}, chroma gain {run.chroma_gain:.2f}) "
                  f"in {run.seconds:.1f} s. "
                  + ("Click the target or the result to see why a region got its colour." if why is not None else
                     "This checkpoint has no super-attention, so there is no attention to show for a click."))
        return (str(run.before_png), str(run.result_png), (str(run.before_png), str(run.result_png)),
                gr.DownloadButton(value=str(run.result_png), interactive=True), status, *why_outputs(why))

    def on_click(why: Why | None, on: str, evt: gr.SelectData):
        if why is None or evt is None or evt.index is None:
            return (gr.skip(),) * 4
        x, y = evt.index[:2]
        return why_outputs(AppService.why_click(why, x, y, on))

    def on_click_view(why, evt: gr.SelectData):  # the why-view's own target, as drawn (enlarged)
        return on_click(why, "view", evt)

    def on_click_full(why, evt: gr.SelectData):  # the full-resolution target or result
        return on_click(why, "full", evt)

    def on_level(why, level):
        if why is None:
            return (gr.skip(),) * 4
        try:
            return why_outputs(AppService.why_level(why, int(level)))
        except Exception as err:
            raise fail(err) from None

    def on_suggest(target, folder, k, progress=gr.Progress(track_tqdm=True)):
        try:
            progress(0.0, desc="ranking the folder's photos")
            ranked, skipped = service.suggest(target, folder, int(k), progress=True)
            gallery = [(thumbnail(read_image(s.path, role="candidate"), 256),
                        f"{rank}. {s.path.name} ({s.distance:.3f})") for rank, s in enumerate(ranked, start=1)]
        except Exception as err:
            raise fail(err) from None
        note = f"{len(ranked)} nearest photos of {folder}; click one to use it as the reference."
        if skipped:
            note += f" {len(skipped)} file(s) could not be read: " + "; ".join(skipped[:3])
        return gallery, [str(s.path) for s in ranked], note

    def on_pick(paths, evt: gr.SelectData):
        if not paths or evt is None or evt.index is None:
            return gr.skip()
        try:
            return str(service.as_reference(paths[int(evt.index)]))
        except Exception as err:
            raise fail(err) from None

    def on_example(evt: gr.SelectData):
        if evt is None or evt.index is None:
            return gr.skip(), gr.skip()
        target, reference, _ = examples[int(evt.index)]
        return str(target), str(reference)

    with gr.Blocks(title="superattn: exemplar-based colorization", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        gr.Markdown("## superattn: colorize a photo from a reference\n"
                    "Super-attention for exemplar-based image colorization (Carrillo, Clément, Bugeau, ACCV 2022). "
                    "Upload a target (gray or colour: only its L* is used) and a colour reference, or pick a demo "
                    "pair, then **Colorize**.")
        with gr.Row(equal_height=False):
            target_in = _hand_over_the_path(gr.Image(
                label="target", type="filepath", format="png", height=360, scale=2, sources=["upload", "clipboard"],
                elem_id="sa-target-input"))
            reference_in = _hand_over_the_path(gr.Image(
                label="reference", type="filepath", format="png", height=360, scale=2,
                sources=["upload", "clipboard"], elem_id="sa-reference-input"))
            with gr.Column(scale=2, min_width=300):
                checkpoint_in = gr.Dropdown(choices, value=choices[0] if choices else None, label="checkpoint",
                                            elem_id="sa-checkpoint")
                mode_in = gr.Radio(list(MODES), value="fast", label="mode",
                                   info="fast: the network runs at the working size; highres: at full resolution")
                size_in = gr.Slider(*WORKING_SIZES, value=DEFAULT_WORKING_SIZE, step=32, label="working size (px)",
                                    info="fast mode: the long side at which a*b* is predicted")
                strength_in = gr.Slider(*STRENGTHS, value=1.0, step=0.05, label="colour strength",
                                        elem_id="sa-strength",
                                        info="times the checkpoint's own chroma gain; 1: as shipped (demo-transfer's "
                                             "is calibrated to 85% of real photos' colourfulness)")
                run_button = gr.Button("Colorize", variant="primary", elem_id="sa-run")
                status = gr.Markdown(elem_id="sa-status")
        examples_gallery = gr.Gallery([(str(thumb), pair.name) for (_, _, thumb), pair in zip(examples, pairs)],
                                      label="demo pairs: a target and a colour reference (click one to use it)",
                                      columns=max(len(examples), 1), rows=1, height=190, allow_preview=False,
                                      object_fit="contain",
                                      visible=bool(examples), elem_id="sa-examples")
        with gr.Tabs():
            with gr.Tab("Result"):
                with gr.Row():
                    before_out = gr.Image(label="target (its L*, what the model sees)", type="filepath", format="png",
                                          interactive=False, elem_classes=["sa-result"], elem_id="sa-before")
                    result_out = gr.Image(label="result (full resolution)", type="filepath", format="png",
                                          interactive=False, elem_classes=["sa-result"], elem_id="sa-result")
                slider_out = gr.ImageSlider(label="before / after", type="filepath", format="png", interactive=False,
                                            elem_id="sa-slider")
                download = gr.DownloadButton("Download the PNG", interactive=False, elem_id="sa-download")
            with gr.Tab("Why this colour"):
                gr.Markdown("Click a point of the target: the reference is lit by that superpixel's attention row "
                            "(brighter = more weight), with the colour the row points at and the colour it received.")
                level_in = gr.Radio(levels, value=LEVELS[0], label="level", elem_id="sa-level")
                with gr.Row():
                    why_target = gr.Image(label="target: the picked superpixel in red (click to pick)", interactive=False,
                                          format="png", elem_classes=["sa-why-target"], elem_id="sa-why-target")
                    why_reference = gr.Image(label="reference lit by its attention row", interactive=False, format="png",
                                             elem_id="sa-why-reference")
                why_info = gr.HTML(elem_id="sa-why-info")
            with gr.Tab("Suggest references"):
                gr.Markdown("Rank the photos of a folder on the server for the current target (the paper's section 4 "
                            "ranking, as `sa-suggest`); click one to make it the reference. Features are cached per "
                            "folder, so the second query is fast.")
                with gr.Row():
                    folder_in = gr.Textbox(value=str(photos) if photos else "", label="folder of photos (on the server)",
                                           elem_id="sa-folder", scale=4)
                    k_in = gr.Slider(1, 12, value=DEFAULT_K, step=1, label="how many", scale=1)
                    suggest_button = gr.Button("Suggest references", elem_id="sa-suggest", scale=1)
                suggest_note = gr.Markdown()
                gallery = gr.Gallery(label="nearest photos, nearest first", columns=6, height=260, object_fit="contain",
                                     allow_preview=False, elem_id="sa-gallery")
        why_state, paths_state = gr.State(None), gr.State([])

        why_outs = [why_state, why_target, why_reference, why_info]
        run_button.click(on_colorize, [target_in, reference_in, checkpoint_in, mode_in, size_in, level_in, strength_in],
                         [before_out, result_out, slider_out, download, status, *why_outs], api_name="colorize")
        why_target.select(on_click_view, [why_state], why_outs, api_name=False)
        for full in (before_out, result_out):
            full.select(on_click_full, [why_state], why_outs, api_name=False)
        level_in.change(on_level, [why_state, level_in], why_outs, api_name=False)
        suggest_button.click(on_suggest, [target_in, folder_in, k_in], [gallery, paths_state, suggest_note],
                             api_name="suggest")
        gallery.select(on_pick, [paths_state], [reference_in], api_name=False)
        examples_gallery.select(on_example, None, [target_in, reference_in], api_name=False)
    return demo


def launch(demo, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, service: AppService | None = None,
           block: bool = True, quiet: bool = False):
    """Queue (one run at a time per action) and serve `demo` on host:port, offline: no share link, no analytics."""
    allowed = [str(service.work_dir)] if service is not None else []
    demo.queue(default_concurrency_limit=1, max_size=64)
    return demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=True,
                       prevent_thread_lock=not block, quiet=quiet, allowed_paths=allowed, max_file_size=MAX_UPLOAD,
                       ssr_mode=False, css=CSS)


def offline_environment() -> None:
    """Gradio and gradio_client send telemetry and check for updates unless told not to: tell them."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
