"""Colorize a gray target from a colour reference: the Python API (`sa_lib.colorize.colorize`).

Any size and aspect ratio. Only ab is predicted: the output is rebuilt from the target's own full-resolution
L*, so it has the target's size, orientation and detail. A colour target is used through its L* only.
`fast` (default) predicts ab at a working size (long side 256 px by default) and upsamples it onto the
full-resolution L*; `highres` runs the network and the super-attention at the image's own resolution.
`slic` picks the superpixel backend of super-attention (sa_lib.superpixels.pyramid; auto: on the CPU
scikit-image, the demo weights' own, up to 256x256 px per level and OpenCV's 2.2x faster SLIC above; batched
torch on a GPU). `flip_average` (None: the checkpoint's ColorizerConfig.flip_average, on for `demo-transfer`)
averages a second, mirrored pass (sa_lib.model.predict.predict_ab): about twice the time. `chroma_gain` (None:
the checkpoint's ColorizerConfig.chroma_gain, calibrated for `demo-transfer` by sa-calibrate-chroma; 1: the
network's a*b* as they are) multiplies the a*b*. `blend` (None: the checkpoint's ColorizerConfig.blend_partner, the
paper's standard network for `demo-transfer`; False: the network alone) averages a second network's a*b* in. The
command `sa-colorize` (sa_lib.cli.colorize) is built on it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..core.color import rgb_to_lab
from ..core.devices import resolve_device
from ..core.errors import UsageError
from ..data.image_io import MIN_SIDE, ImageInputError, read_image
from ..model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from ..model.colorizer import AUTHORS_PREPROCESSING, Colorizer, check_chroma_gain
from ..model.predict import check_blend, predict_rgb
from ..superpixels.pyramid import SLIC_BACKENDS, resolve_backend
from .memory import check_memory

MODES = ("fast", "highres")
SLIC_CHOICES = ("auto", *SLIC_BACKENDS)
DEFAULT_WORKING_SIZE = 256
FLIP_AVERAGE_CHOICES = {"auto": None, "on": True, "off": False}  # command-line words -> flip_average
BLEND_CHOICES = {"auto": None, "off": False}  # command-line words -> blend


def parse_flip_average(value: bool | str | None) -> bool | None:
    """The API's flip_average: None, True or False, or the command line's words auto, on and off; else UsageError."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, str) and value in FLIP_AVERAGE_CHOICES:
        return FLIP_AVERAGE_CHOICES[value]
    raise UsageError(f"flip_average must be None, True, False, 'auto', 'on' or 'off', got {value!r}")


def parse_chroma_gain(text: str) -> float | None:
    """A command line's chroma gain: "auto" (None: the checkpoint's) or a number in CHROMA_GAIN_RANGE (else
    ValueError, one line)."""
    if text == "auto":
        return None
    try:
        gain = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither auto nor a number") from None
    return check_chroma_gain(gain)


@dataclass
class Colorization:
    """The result and what produced it: the image, and the model's intermediates at the working size."""

    image: Image.Image
    intermediates: dict
    target_l: torch.Tensor  # (1, 1, h, w) L* at the size the network ran
    reference: torch.Tensor  # (1, 3, h', w') sRGB at the size the network ran
    full_l: torch.Tensor | None = None  # (1, 1, H, W) the target's own L* at full resolution (on the CPU)


def check_settings(mode: str = "fast", working_size: int = DEFAULT_WORKING_SIZE, slic: str = "auto",
                   device: str = "auto", flip_average: bool | str | None = None,
                   chroma_gain: float | None = None) -> bool | None:
    """Check colorize()'s settings before any image is read (UsageError, one line); returns flip_average parsed.

    `sa-colorize` calls it once for a whole folder, so that a bad setting is one usage error, not one per image."""
    flip_average = parse_flip_average(flip_average)
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; choose fast or highres")
    if isinstance(working_size, bool) or not isinstance(working_size, (int, np.integer)):
        raise UsageError(f"working size must be a whole number of pixels, got {working_size!r}")
    if working_size < 32:
        raise UsageError(f"working size must be at least 32 px, got {working_size}")
    resolve_slic(slic, resolve_device(device))
    if chroma_gain is not None:
        if isinstance(chroma_gain, bool) or not isinstance(chroma_gain, (int, float, np.number)):
            raise UsageError(f"chroma_gain must be a number or None, got {chroma_gain!r}")
        try:
            check_chroma_gain(float(chroma_gain))
        except ValueError as err:
            raise UsageError(str(err)) from None
    return flip_average


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
    if isinstance(image, bytes):  # a path as bytes, as os.fsencode gives it
        image = os.fsdecode(image)
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, role=role)
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    else:
        if not isinstance(image, (np.ndarray, list, tuple)) and not hasattr(image, "__array__"):
            raise ImageInputError(f"{role} must be a path, a PIL image or an array, got {type(image).__name__}")
        array = np.asarray(image)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ImageInputError(f"{role} array must hold numbers, got dtype {array.dtype}")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise ImageInputError(f"{role} array contains NaN or infinite values")
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


def colorize_detailed(target, reference, checkpoint: str = DEFAULT_CHECKPOINT, device: str = "auto",
                      mode: str = "fast", working_size: int = DEFAULT_WORKING_SIZE,
                      slic: str = "auto", flip_average: bool | None = None,
                      chroma_gain: float | None = None, blend: bool | None = None) -> Colorization:
    """colorize(), also returning the attention maps and superpixels (for --explain and notebooks)."""
    flip_average = check_settings(mode, working_size, slic, device, flip_average, chroma_gain)
    model = load_model(str(checkpoint), device)
    try:
        check_blend(model, blend)
    except ValueError as err:
        raise UsageError(f"checkpoint {checkpoint}: {err}") from None
    dev = next(model.parameters()).device
    target_rgb = torch.from_numpy(as_rgb_array(target, "target")).permute(2, 0, 1)[None].to(dev)  # (1, 3, H, W)
    # (1, 3, H', W')
    reference_rgb = torch.from_numpy(as_rgb_array(reference, "reference")).permute(2, 0, 1)[None].to(dev)
    if dev.type == "cpu":
        check_memory(mode, tuple(target_rgb.shape[-2:]), tuple(reference_rgb.shape[-2:]), model.config.widths[0],
                     model.config.match_frozen)
    with torch.inference_mode():
        if model.config.luminance_input == AUTHORS_PREPROCESSING:  # float64 preprocessing: SLIC is discontinuous
            target_rgb, reference_rgb = exact_8bit(target_rgb), exact_8bit(reference_rgb)
        full_l = rgb_to_lab(target_rgb)[:, :1]  # (1, 1, H, W): the target's own L*, kept at full resolution
        if mode == "fast":
            net_l = _resize(full_l, working_shape(*full_l.shape[-2:], working_size))
            net_ref = _resize(reference_rgb, working_shape(*reference_rgb.shape[-2:], working_size))
        else:
            net_l, net_ref = full_l, reference_rgb
    del target_rgb, reference_rgb  # full-resolution RGB is no longer needed: its memory goes before the network's
    rgb, intermediates = predict_rgb(model, net_l, net_ref, full_l, slic, flip_average,
                                     chroma_gain, blend)  # ab onto the full L*
    rgb = rgb[0]
    pixels = (rgb.permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)  # (H, W, 3) uint8
    return Colorization(Image.fromarray(pixels), intermediates, net_l.cpu(), net_ref.cpu(), full_l.cpu())


def colorize(target, reference, checkpoint: str = DEFAULT_CHECKPOINT, device: str = "auto", mode: str = "fast",
             working_size: int = DEFAULT_WORKING_SIZE, slic: str = "auto",
             flip_average: bool | None = None, chroma_gain: float | None = None,
             blend: bool | None = None) -> Image.Image:
    """Colorize `target` (path, PIL image or array; colour targets are used through their L*) from
    `reference`. Returns an RGB PIL image of the target's size. `slic`: superpixel backend (auto, skimage,
    opencv or torch; see sa_lib.superpixels.pyramid). `flip_average`: True or False (or "on", "off") overrides the
    checkpoint's test-time flip average (None or "auto" keeps it). `chroma_gain`: a number overrides the
    checkpoint's chroma gain (1: the network's colours as they are; None keeps it). `blend`: False runs the
    checkpoint's network without its blend partner (None keeps it)."""
    return colorize_detailed(target, reference, checkpoint, device, mode, working_size, slic, flip_average,
                             chroma_gain, blend).image
