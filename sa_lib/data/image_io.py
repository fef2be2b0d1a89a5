"""Reading and writing the user's own images safely, for the colorization CLI.

Reading turns any supported photo into (H, W, 3) float32 sRGB in [0, 1] as it is DISPLAYED: EXIF
orientation applied, transparency composited over white, 16-bit data scaled by its real range, CMYK and
embedded ICC profiles converted to sRGB. Anything unusable raises ImageInputError with one line that
names the file, so the CLI can print it instead of a traceback. Size limits are checked from the header,
before any pixel is decoded, so a huge (or decompression-bomb) file never allocates its pixels.

Writing is atomic (sa_lib.core.files.atomic_write): the image goes to a temporary file in the destination
folder, which then replaces the destination with os.replace, so an interrupted or failed write never leaves a
partial output behind.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, features

from ..core.files import atomic_write

MIN_SIDE = 32  # px: smaller images carry too little structure to colorize
MAX_PIXELS = 100_000_000  # refuse larger images: ~1.2 GB as float32 RGB, and a decompression-bomb guard
# What a folder of photos is read for (sa-colorize's folder mode, sa-suggest, the outputs sa-evaluate scores):
# the photo formats by extension.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")

# Formats we let Pillow open: common photo formats only. Some other plugins run external programs
# (EPS -> Ghostscript) or are rarely-exercised parsers; a user's "photo" has no reason to be one of them.
READ_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF", "AVIF", "JPEG2000", "PPM", "TGA")

# Output extension -> (Pillow format, save options). JPEG keeps full-resolution chroma (4:4:4):
# the chroma IS the colorization, so the default 4:2:0 subsampling would throw half of it away.
WRITE_FORMATS: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".tif": ("TIFF", {"compression": "tiff_lzw"}),
    ".tiff": ("TIFF", {"compression": "tiff_lzw"}),
    ".webp": ("WEBP", {"quality": 95}),
    ".bmp": ("BMP", {}),
}

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_KEYED_TRANSPARENCY_MODES = {"1", "L", "P", "RGB"}  # transparency given by a key colour / tRNS / GIF index
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1")


class ImageIOError(ValueError):
    """Base of the user-facing image errors: the message is one line and names the file."""


class ImageInputError(ImageIOError):
    """An input image cannot be used (missing, unreadable, corrupt, too small or too large)."""


class ImageOutputError(ImageIOError):
    """The output image cannot be written where the user asked."""


def _one_line(text: object) -> str:
    """Collapse whitespace so a message (e.g. from a decoder) stays on one line."""
    return " ".join(str(text).split())


def _shown(path: str | os.PathLike) -> str:
    """The path as the user typed it, quoted; repr() if it holds control characters (keeps one line)."""
    text = os.fsdecode(os.fspath(path))
    return f"'{text}'" if text.isprintable() else repr(text)


# ----------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, role: str = "target") -> np.ndarray:
    """Read a user image as displayed: (H, W, 3) float32 sRGB in [0, 1].

    role ("target", "reference", ...) only words the error messages. Raises ImageInputError.
    48-bit RGB files come through Pillow at 8-bit precision (Pillow keeps the high byte); 16-bit
    grayscale keeps its full precision. Float (mode F) data is read as [0, 1] and 32-bit integer (mode I) data as
    16-bit, a few values beyond clipped; data on another scale (floats beyond [-1, 2], integers beyond twice
    65535, or 32-bit integers that all lie in 0-255: 8-bit data that would read as a black 16-bit image) is
    refused rather than guessed.
    """
    who = f"{role} image {_shown(path)}"
    _check_regular_file(path, who)
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; our own limit decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=_readable_formats())
    except Image.DecompressionBombError as exc:
        raise ImageInputError(_too_large_message(who, None)) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageInputError(_not_an_image_message(path, who)) from exc
    except OSError as exc:
        if exc.errno is not None:  # permission denied, I/O error, ...
            raise ImageInputError(f"{who} cannot be read: {_one_line(exc.strerror or exc)}") from exc
        raise ImageInputError(f"{who} is truncated or corrupt: {_one_line(exc)}") from exc  # from a plugin
    except MemoryError:
        raise
    except Exception as exc:  # a broken header can raise nearly anything inside a plugin
        raise ImageInputError(f"{who} is not a valid image: {_one_line(exc)}") from exc

    with image:
        _check_size(image, who)  # header only: no pixel has been decoded yet
        try:
            image.load()  # full decode here, so truncated and corrupt data fail now, not later
        except Image.DecompressionBombError as exc:
            raise ImageInputError(_too_large_message(who, None)) from exc
        except MemoryError:
            raise
        except Exception as exc:
            raise ImageInputError(f"{who} is truncated or corrupt: {_one_line(exc)}") from exc
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # malformed EXIF: keep the stored orientation rather than refuse the photo
            pass
        try:
            return _to_float_rgb(image)
        except PixelRangeError as exc:
            raise ImageInputError(f"{who} {exc}") from exc
        except ValueError as exc:
            raise ImageInputError(f"{who} has an unsupported colour mode {image.mode}") from exc


def load_photo_rgb(path: str | os.PathLike) -> np.ndarray:
    """A dataset photo (trusted: the project's own or COCO's) as (H, W, 3) uint8 sRGB, EXIF orientation applied.
    User photos go through read_image, which checks and reports."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def load_square_photo(path: str | os.PathLike, size: int) -> np.ndarray:
    """(size, size, 3) uint8: a photo upright (its EXIF orientation applied), in RGB, resized bicubically to the
    paper's square size. For the figures and measurements that read known photos (not user input: read_image)."""
    with Image.open(path) as image:
        return np.array(ImageOps.exif_transpose(image).convert("RGB").resize((size, size), Image.BICUBIC))


def _readable_formats() -> list[str]:
    """READ_FORMATS that this Pillow build can actually open."""
    Image.init()
    return [name for name in READ_FORMATS if name in Image.OPEN]


def _check_regular_file(path: str | os.PathLike, who: str) -> None:
    """Refuse missing paths, directories, special files and empty files with a clear message."""
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise ImageInputError(f"{who} does not exist") from exc
    except OSError as exc:
        raise ImageInputError(f"{who} cannot be accessed: {_one_line(exc.strerror or exc)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageInputError(f"{who} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageInputError(f"{who} is not a regular file")
    if info.st_size == 0:
        raise ImageInputError(f"{who} is empty (0 bytes)")


def _not_an_image_message(path: str | os.PathLike, who: str) -> str:
    """Explain an unidentified file; name HEIC/HEIF specifically since phones produce it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        head = b""
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return f"{who} is HEIC/HEIF, which is not supported; convert it to JPEG or PNG first"
    names = ", ".join(_readable_formats())
    return f"{who} is not a readable image (supported formats: {names})"


def _too_large_message(who: str, size: tuple[int, int] | None) -> str:
    limit = f"the limit is {MAX_PIXELS // 1_000_000} megapixels"
    if size is not None:
        return f"{who} is {size[0]}x{size[1]} px ({size[0] * size[1] / 1e6:.2f} megapixels); {limit}"
    # Raised by Pillow itself at 2 * Image.MAX_IMAGE_PIXELS, before we could see the size.
    bomb = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return f"{who} is larger than {bomb / 1e6:.0f} megapixels; {limit}"


def _check_size(image: Image.Image, who: str) -> None:
    """MIN_SIDE / MAX_PIXELS from the header size; report width x height as displayed (EXIF)."""
    width, height = image.size
    if _header_orientation(image) in (5, 6, 7, 8):  # orientations that swap the axes
        width, height = height, width
    if width * height > MAX_PIXELS:
        raise ImageInputError(_too_large_message(who, (width, height)))
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(
            f"{who} is {width}x{height} px; the smallest side must be at least {MIN_SIDE} px"
        )


def _header_orientation(image: Image.Image) -> int | None:
    """EXIF orientation from data already parsed with the header (Image.getexif() on a PNG decodes)."""
    try:
        raw = image.info.get("exif")
        if raw:
            exif = Image.Exif()
            exif.load(raw)
            return exif.get(0x0112)
        tags = getattr(image, "tag_v2", None)  # TIFF keeps orientation among its own tags
        return tags.get(0x0112) if tags is not None else None
    except Exception:
        return None


class PixelRangeError(ValueError):
    """A 32-bit integer or float image whose values do not say how to read them (read_image's docstring)."""


def _check_pixel_range(data: np.ndarray, mode: str) -> None:
    finite = data[np.isfinite(data)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if mode == "F" and (low < -1.0 or high > 2.0):
        raise PixelRangeError(f"holds floating-point values from {low:g} to {high:g}; floats are read as [0, 1]: "
                              "scale it to [0, 1] or save it as an 8- or 16-bit image")
    if mode == "I" and (low < -65535 or high > 2 * 65535):
        raise PixelRangeError(f"holds 32-bit integers from {low:g} to {high:g}; they are read as 16-bit data "
                              "(0-65535): save it as an 8- or 16-bit image")
    if mode == "I" and 0 < high <= 255:
        raise PixelRangeError("holds 32-bit integers that all lie in 0-255: 8-bit data in a 32-bit file, which "
                              "would read as a black 16-bit image; save it as an 8-bit image")


def _to_float_rgb(image: Image.Image) -> np.ndarray:
    """Any decoded Pillow image -> (H, W, 3) float32 sRGB in [0, 1]. ValueError if the mode is unknown,
    PixelRangeError if a mode I or F image's values cannot be read unambiguously."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        data = np.asarray(image).astype(np.float32)
        if mode in ("I", "F"):
            _check_pixel_range(data, mode)
        if mode != "F":  # I;16*: 16-bit. I: 32-bit container holding 16-bit data (old Pillow's 16-bit PNG)
            data = data / 65535.0
        gray = np.clip(np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2), dtype=np.float32)
    if mode in _ALPHA_MODES or (mode in _KEYED_TRANSPARENCY_MODES and image.has_transparency_data):
        rgba = _to_srgb(image.convert("RGBA"))
        data = np.asarray(rgba, dtype=np.float32) / 255.0
        alpha = data[..., 3:4]
        return np.ascontiguousarray(data[..., :3] * alpha + (1.0 - alpha), dtype=np.float32)
    if mode in ("1", "L"):
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode != "CMYK" and mode != "RGB":  # P, YCbCr, RGBX, HSV, ... (CMYK goes through its ICC profile)
        image = image.convert("RGB")
    return np.asarray(_to_srgb(image), dtype=np.float32) / 255.0


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (Display P3, Adobe RGB, CMYK press profiles) -> sRGB.

    Without a profile, or if it cannot be used, fall back to Pillow's plain conversion: the image is
    then taken as sRGB (what every viewer does with untagged files).
    """
    icc = image.info.get("icc_profile")
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    if icc and features.check("littlecms2"):
        try:
            from PIL import ImageCms  # deferred: ImageCms needs LittleCMS; only photos with an ICC profile use it

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=out_mode)
        except Exception:
            pass
    return image if image.mode == out_mode else image.convert(out_mode)


def is_grayscale(rgb: np.ndarray, tol: float = 2.0 / 255.0) -> bool:
    """True if every pixel has R, G, B within tol of each other (gray photo stored as RGB).

    tol absorbs rounding and JPEG chroma noise; a faint sepia tone counts as colour.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    return bool((rgb.max(axis=2) - rgb.min(axis=2)).max(initial=0.0) <= tol)


# ----------------------------------------------------------------------------------------------- writing


def write_image_atomic(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write (H, W, 3) sRGB in [0, 1] (float, or uint8) as an 8-bit file in the extension's format.

    The pixels go to a temporary file in the destination folder, which then atomically replaces the
    destination: readers see the old file or the complete new one, never a partial one, and a failure
    leaves no temporary file behind. The new file gets the permissions of the file it replaces, else
    0o666 & ~umask like any newly created file. No EXIF is written, so viewers show the pixels as they
    are, i.e. in the orientation read_image returned. Raises ImageOutputError.
    """
    pixels = _to_uint8(rgb)
    where = _shown(path)
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        known = ", ".join(WRITE_FORMATS)
        got = f"extension '{suffix}'" if suffix else "no extension"
        raise ImageOutputError(f"output {where} has {got}; use one of {known}")
    fmt, options = WRITE_FORMATS[suffix]
    folder = os.path.dirname(os.fspath(path)) or "."
    if not os.path.isdir(folder):
        raise ImageOutputError(f"output {where}: folder {_shown(folder)} does not exist")
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise ImageOutputError(f"output {where} cannot be accessed: {_one_line(exc.strerror or exc)}") from exc
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise ImageOutputError(f"output {where} is a directory")
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        raise ImageOutputError(f"output {where} exists and is not a regular file")

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            Image.fromarray(pixels, mode="RGB").save(handle, format=fmt, **options)

    try:
        atomic_write(Path(path), save)
    except OSError as exc:
        raise ImageOutputError(f"output {where} could not be written: {_one_line(exc.strerror or exc)}") from exc


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] (clipped) or uint8 -> contiguous uint8. ValueError on a bad array."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"expected a non-empty (H, W, 3) array, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"expected float values in [0, 1] or uint8, got dtype {rgb.dtype}")
    if not np.isfinite(rgb).all():
        raise ValueError("image to write contains NaN or infinite values")
    return np.ascontiguousarray(np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8))
