"""Reading and writing user images: every supported mode, every refusal, and the atomic write."""

from __future__ import annotations

import os
import re
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from sa_lib.data.image_io import (
    MAX_PIXELS,
    MIN_SIDE,
    ImageInputError,
    ImageOutputError,
    _to_float_rgb,
    is_grayscale,
    read_image,
    write_image_atomic,
)

SIZE = (40, 36)  # (W, H) of most test images: above MIN_SIDE, non-square so transposes show


# ---------------------------------------------------------------------------------------------- helpers


def _png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows) -> bytes:
    """A PNG built by hand (Pillow cannot write 48-bit RGB, nor a header we choose freely)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj()
    idat = b"".join(packer.compress(b"\0" + row) for row in rows) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _rgb16_rows(array: np.ndarray):
    return (array[y].astype(">u2").tobytes() for y in range(array.shape[0]))


def _tiff_rgb16(path: Path, array: np.ndarray) -> None:
    """An uncompressed little-endian 48-bit RGB TIFF built by hand."""
    height, width, _ = array.shape
    pixels = array.astype("<u2").tobytes()
    entries = [  # (tag, type, count, value); type 3 = SHORT, 4 = LONG
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
        (273, 4, 1, None), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, len(pixels)), (284, 3, 1, 1),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = 8 + ifd_size
    data_at = bits_at + 6
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_at
        elif tag == 273:
            value = data_at
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 and count == 1 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", 16, 16, 16) + pixels)


def _save(tmp_path: Path, name: str, image: Image.Image, **options) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def _assert_user_error(excinfo: pytest.ExceptionInfo, path: Path | str, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message or repr(str(path)) in message, message
    for fragment in fragments:
        assert fragment in message, message


def _no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any pixel decode fail loudly: checks that must happen from the header alone."""

    def refuse(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# ------------------------------------------------------------------------------------------------ modes


def test_16bit_gray_png_uses_the_full_16bit_range(tmp_path):
    values = np.zeros(SIZE[::-1], np.uint16)
    values[0, :3] = [0, 32768, 65535]
    values[1, 0] = 257  # 1/255 exactly, and a value only 16 bits can tell from 256
    path = _save(tmp_path, "g16.png", Image.fromarray(values))
    assert Image.open(path).mode == "I;16"

    rgb = read_image(path)

    assert rgb.shape == (SIZE[1], SIZE[0], 3) and rgb.dtype == np.float32
    assert rgb[0, 0].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(rgb[0, 1], 32768 / 65535, atol=1e-6)
    np.testing.assert_array_equal(rgb[0, 2], 1.0)
    np.testing.assert_allclose(rgb[1, 0], 1 / 255, atol=1e-7)


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16bit_gray_tiff(tmp_path, mode):
    values = np.full(SIZE[::-1], 16384, np.uint16)
    values[0, 0] = 65535
    image = Image.frombytes(mode, SIZE, values.astype("<u2" if mode == "I;16" else ">u2").tobytes())
    path = _save(tmp_path, "g16.tif", image)
    assert Image.open(path).mode == mode

    rgb = read_image(path)

    np.testing.assert_array_equal(rgb[0, 0], 1.0)
    np.testing.assert_allclose(rgb[5, 5], 16384 / 65535, atol=1e-6)


def test_mode_i_is_taken_as_16bit(tmp_path):
    values = np.full(SIZE[::-1], 65535, np.int32)
    values[0, 0] = 0
    values[0, 1] = 100_000  # out of the 16-bit range: clipped, not wrapped
    path = _save(tmp_path, "i32.tif", Image.fromarray(values))
    assert Image.open(path).mode == "I"

    rgb = read_image(path)

    assert rgb[0, 0].tolist() == [0.0, 0.0, 0.0]
    assert rgb[0, 1].tolist() == [1.0, 1.0, 1.0]
    assert rgb[3, 3].tolist() == [1.0, 1.0, 1.0]


def test_float_tiff(tmp_path):
    values = np.full(SIZE[::-1], 0.25, np.float32)
    values[0, 0], values[0, 1], values[0, 2] = 1.5, -0.5, np.nan
    path = _save(tmp_path, "f.tif", Image.fromarray(values))
    assert Image.open(path).mode == "F"

    rgb = read_image(path)

    np.testing.assert_allclose(rgb[3, 3], 0.25)
    assert rgb[0, :3, 0].tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("name, values, message", [
    ("f255.tif", np.full(SIZE[::-1], 200.0, np.float32), "floating-point values from 200 to 200"),
    ("i8.tif", np.full(SIZE[::-1], 200, np.int32), "all lie in 0-255"),
    ("i32.tif", np.full(SIZE[::-1], 4_000_000, np.int32), "32-bit integers from 4e+06"),
])
def test_32_bit_and_float_data_on_another_scale_is_refused_not_guessed(tmp_path, name, values, message):
    """8-bit values in a float or 32-bit file would read as white or black: refused in one line."""
    path = _save(tmp_path, name, Image.fromarray(values))
    with pytest.raises(ImageInputError, match=re.escape(message)) as info:
        read_image(path, role="reference")
    assert str(info.value).startswith(f"reference image {str(path)!r}") and "\n" not in str(info.value)


def _rgb16_sample() -> np.ndarray:
    array = np.zeros((SIZE[1], SIZE[0], 3), np.uint16)
    array[0, 0] = [65535, 0, 0]
    array[0, 1] = [32768, 32768, 32768]
    array[0, 2] = [2770, 0, 65535]
    return array


def _check_rgb16(rgb: np.ndarray, array: np.ndarray) -> None:
    # Pillow keeps the high byte of 48-bit RGB: right scale, 8-bit precision.
    np.testing.assert_allclose(rgb, array / 65535.0, atol=1 / 255 + 1e-6)
    assert rgb[0, 0].tolist() == [1.0, 0.0, 0.0]


def test_48bit_rgb_png(tmp_path):
    array = _rgb16_sample()
    path = tmp_path / "rgb48.png"
    path.write_bytes(_png_bytes(SIZE[0], SIZE[1], 16, 2, _rgb16_rows(array)))

    _check_rgb16(read_image(path), array)


def test_48bit_rgb_tiff(tmp_path):
    array = _rgb16_sample()
    path = tmp_path / "rgb48.tif"
    _tiff_rgb16(path, array)
    assert Image.open(path).mode == "RGB"

    _check_rgb16(read_image(path), array)


def test_rgba_composites_over_white(tmp_path):
    pixels = np.zeros((SIZE[1], SIZE[0], 4), np.uint8)
    pixels[..., :3] = (200, 0, 0)
    pixels[0, 0, 3] = 0
    pixels[0, 1, 3] = 255
    pixels[0, 2, 3] = 128
    path = _save(tmp_path, "rgba.png", Image.fromarray(pixels, "RGBA"))

    rgb = read_image(path)

    assert rgb[0, 0].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(rgb[0, 1], [200 / 255, 0, 0], atol=1e-6)
    alpha = 128 / 255
    np.testing.assert_allclose(rgb[0, 2], [200 / 255 * alpha + 1 - alpha, 1 - alpha, 1 - alpha], atol=1e-6)


def test_la_composites_over_white(tmp_path):
    pixels = np.zeros((SIZE[1], SIZE[0], 2), np.uint8)
    pixels[..., 1] = 255
    pixels[0, 0] = (0, 0)
    path = _save(tmp_path, "la.png", Image.fromarray(pixels, "LA"))

    rgb = read_image(path)

    assert rgb[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert rgb[1, 1].tolist() == [0.0, 0.0, 0.0]


def _palette_image() -> Image.Image:
    image = Image.new("P", SIZE, 1)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    image.putpixel((0, 0), 2)
    image.putpixel((1, 0), 0)
    return image


def test_palette(tmp_path):
    for name in ("p.png", "p.gif", "p.bmp"):
        path = _save(tmp_path, name, _palette_image())
        assert Image.open(path).mode == "P"

        rgb = read_image(path)

        assert rgb[0, 0].tolist() == [0.0, 0.0, 1.0], name
        assert rgb[0, 1].tolist() == [0.0, 0.0, 0.0], name
        assert rgb[5, 5].tolist() == [1.0, 0.0, 0.0], name


@pytest.mark.parametrize("name", ["pt.png", "pt.gif"])
def test_palette_transparency_composites_over_white(tmp_path, name):
    path = _save(tmp_path, name, _palette_image(), transparency=0)

    rgb = read_image(path)

    assert rgb[0, 1].tolist() == [1.0, 1.0, 1.0]  # index 0 is transparent black -> white
    assert rgb[0, 0].tolist() == [0.0, 0.0, 1.0]


def test_gray_and_1bit(tmp_path):
    gray = np.full(SIZE[::-1], 51, np.uint8)
    rgb = read_image(_save(tmp_path, "l.png", Image.fromarray(gray)))
    np.testing.assert_allclose(rgb, 0.2, atol=1e-6)

    bits = Image.new("1", SIZE, 0)
    bits.putpixel((3, 0), 1)
    rgb = read_image(_save(tmp_path, "b.png", bits))
    assert rgb[0, 3].tolist() == [1.0, 1.0, 1.0] and rgb[0, 0].tolist() == [0.0, 0.0, 0.0]


def test_cmyk_jpeg_is_roughly_the_right_colour(tmp_path):
    path = _save(tmp_path, "cmyk.jpg", Image.new("CMYK", SIZE, (0, 255, 255, 0)), quality=95)
    assert Image.open(path).mode == "CMYK"

    rgb = read_image(path)

    np.testing.assert_allclose(rgb.mean(axis=(0, 1)), [1.0, 0.0, 0.0], atol=0.05)  # pure red


def test_ycbcr_tiff(tmp_path):
    ycc = Image.new("RGB", SIZE, (200, 50, 20)).convert("YCbCr")
    # Compressed through libtiff: Pillow 12.3.0 cannot read back its own uncompressed YCbCr TIFF ("truncated"),
    # and opens this one as RGB (libtiff converts), older versions as YCbCr. The file must read as its colour
    # either way, and the YCbCr mode itself must convert.
    path = _save(tmp_path, "ycc.tif", ycc, compression="tiff_lzw")
    assert Image.open(path).mode in ("YCbCr", "RGB")
    np.testing.assert_allclose(read_image(path)[4, 4], np.array([200, 50, 20]) / 255, atol=3 / 255)
    np.testing.assert_allclose(_to_float_rgb(ycc)[4, 4], np.array([200, 50, 20]) / 255, atol=3 / 255)


def test_icc_profile_is_honoured_and_a_broken_one_ignored(tmp_path, monkeypatch):
    calls = []
    convert = ImageCms.profileToProfile
    monkeypatch.setattr(ImageCms, "profileToProfile", lambda *a, **k: calls.append(1) or convert(*a, **k))
    colour = (180, 90, 30)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = _save(tmp_path, "srgb.png", Image.new("RGB", SIZE, colour), icc_profile=srgb)
    broken = _save(tmp_path, "broken.png", Image.new("RGB", SIZE, colour), icc_profile=b"not a profile")

    for path in (tagged, broken):
        np.testing.assert_allclose(read_image(path)[0, 0], np.array(colour) / 255, atol=1.5 / 255)
    assert len(calls) == 1  # the tagged image went through the colour-managed conversion


def _marked(width: int, height: int) -> Image.Image:
    """Black image with a red top-left pixel block, to follow where the corner goes."""
    image = Image.new("RGB", (width, height), (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, 8, 8))
    return image


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("name", ["rot.jpg", "rot.png"])
def test_exif_orientation_6_is_applied(tmp_path, name):
    path = _save(tmp_path, name, _marked(64, 40), exif=_exif(6))

    rgb = read_image(path)

    assert rgb.shape == (64, 40, 3)  # width and height swapped
    # Orientation 6 displays the stored image rotated 90 degrees clockwise: top-left -> top-right.
    assert rgb[2, -3, 0] > 0.9 and rgb[2, 2, 0] < 0.1


def test_output_keeps_the_displayed_orientation(tmp_path):
    target = _save(tmp_path, "rot.png", _marked(64, 40), exif=_exif(6))
    out = tmp_path / "out.png"

    write_image_atomic(out, read_image(target))

    written = Image.open(out)
    assert written.size == (40, 64)
    assert written.getexif().get(0x0112) in (None, 1)
    assert written.getpixel((37, 2)) == (255, 0, 0)


def test_is_grayscale():
    gray = np.repeat(np.linspace(0, 1, 40 * 36, dtype=np.float32).reshape(36, 40, 1), 3, axis=2)
    assert is_grayscale(gray)
    noisy = gray.copy()
    noisy[..., 0] += 1 / 255  # JPEG-like chroma noise
    assert is_grayscale(noisy)
    coloured = gray.copy()
    coloured[10, 10] = (0.8, 0.2, 0.2)
    assert not is_grayscale(coloured)


# ----------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path, role="reference")
    _assert_user_error(excinfo, path, "reference", "does not exist")


def test_control_characters_in_the_name_stay_on_one_line(tmp_path):
    path = tmp_path / "bad\nname.png"
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "does not exist")


def test_directory(tmp_path):
    with pytest.raises(ImageInputError) as excinfo:
        read_image(tmp_path)
    _assert_user_error(excinfo, tmp_path, "directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "empty")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\nat all\n")
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "not a readable image")


def test_heic_gets_a_hint(tmp_path):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "HEIC")


def test_eps_is_not_opened(tmp_path):
    path = tmp_path / "doc.eps"  # would make Pillow run Ghostscript
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n")
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "not a readable image")


def _noise(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg", "cut.webp", "cut.tif"])
def test_truncated_image(tmp_path, name):
    path = _save(tmp_path, name, _noise())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "truncated or corrupt")


def test_corrupt_png_data(tmp_path):
    path = _save(tmp_path, "bad.png", _noise())
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 40
    data[start : start + 64] = bytes(64)  # breaks the zlib stream and the chunk CRC
    path.write_bytes(bytes(data))
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "corrupt")


def test_too_small(tmp_path, monkeypatch):
    path = _save(tmp_path, "thin.png", Image.new("RGB", (20, 500)))
    _no_decode(monkeypatch)
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, f"is 20x500 px; the smallest side must be at least {MIN_SIDE} px")


def test_too_small_is_reported_as_displayed(tmp_path):
    path = _save(tmp_path, "thin.jpg", Image.new("RGB", (500, 20)), exif=_exif(6))
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "is 20x500 px")


def test_smallest_accepted_size(tmp_path):
    assert read_image(_save(tmp_path, "ok.png", Image.new("RGB", (MIN_SIDE, MIN_SIDE)))).shape == (32, 32, 3)


def test_too_many_pixels_refused_from_the_header(tmp_path, monkeypatch):
    """A real, valid 12000x9000 1-bit PNG (108 MP, a few KB): refused without decoding a pixel."""
    width, height = 12000, 9000
    assert width * height > MAX_PIXELS
    path = tmp_path / "big.png"
    path.write_bytes(_png_bytes(width, height, 1, 0, (bytes(width // 8) for _ in range(height))))
    assert path.stat().st_size < 100_000
    _no_decode(monkeypatch)
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "12000x9000 px", "100 megapixels")


def test_decompression_bomb_refused_from_the_header(tmp_path, monkeypatch):
    """A header claiming 20000x20000 and no pixel data: Pillow's own bomb check, in our words."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(20000, 20000, 8, 2, []))
    _no_decode(monkeypatch)
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    _assert_user_error(excinfo, path, "100 megapixels")


# ---------------------------------------------------------------------------------------------- writing


def _gradient() -> np.ndarray:
    y, x = np.mgrid[0:36, 0:40].astype(np.float32)
    return np.stack([x / 39, y / 35, np.full_like(x, 0.5)], axis=2)


@pytest.mark.parametrize(
    ("name", "atol"),
    [("o.png", 0), ("o.PNG", 0), ("o.bmp", 0), ("o.tif", 0), ("o.tiff", 0)]
    + [("o.jpg", 4), ("o.jpeg", 4), ("o.webp", 6)],
)
def test_write_each_format(tmp_path, name, atol):
    rgb = _gradient()
    out = tmp_path / name

    write_image_atomic(out, rgb)

    written = Image.open(out)
    expected_format = {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF", "tiff": "TIFF"}
    suffix = name.rsplit(".", 1)[1].lower()
    assert written.format == expected_format.get(suffix, suffix.upper())
    assert written.mode == "RGB"
    pixels = np.asarray(written).astype(int)
    np.testing.assert_allclose(pixels, np.round(rgb * 255), atol=atol)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_write_clips_and_roundtrips(tmp_path):
    rgb = _gradient()
    rgb[0, 0] = (1.7, -0.3, 0.5)
    out = tmp_path / "o.png"
    write_image_atomic(out, rgb)
    back = read_image(out)
    np.testing.assert_allclose(back[0, 0], [1.0, 0.0, 128 / 255])
    np.testing.assert_allclose(back, np.round(np.clip(rgb, 0, 1) * 255) / 255, atol=1e-6)


def test_write_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        write_image_atomic(tmp_path / "new.png", _gradient())
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.png").stat().st_mode) == 0o640

    existing = tmp_path / "existing.png"
    existing.write_bytes(b"old")
    existing.chmod(0o604)
    write_image_atomic(existing, _gradient())
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604


def test_write_into_missing_folder(tmp_path):
    out = tmp_path / "missing" / "o.png"
    with pytest.raises(ImageOutputError) as excinfo:
        write_image_atomic(out, _gradient())
    _assert_user_error(excinfo, out, "does not exist")


def test_write_onto_a_directory(tmp_path):
    out = tmp_path / "folder.png"
    out.mkdir()
    with pytest.raises(ImageOutputError) as excinfo:
        write_image_atomic(out, _gradient())
    _assert_user_error(excinfo, out, "is a directory")


@pytest.mark.parametrize("name", ["o.gif", "o.PSD", "output"])
def test_write_unknown_extension(tmp_path, name):
    out = tmp_path / name
    with pytest.raises(ImageOutputError) as excinfo:
        write_image_atomic(out, _gradient())
    _assert_user_error(excinfo, out, ".png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "error", [OSError(28, "No space left on device"), RuntimeError("boom"), KeyboardInterrupt()]
)
def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, error):
    new = tmp_path / "new.png"
    existing = tmp_path / "existing.jpg"
    existing.write_bytes(b"previous result")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial data")
        raise error

    monkeypatch.setattr(Image.Image, "save", broken_save)
    for out in (new, existing):
        with pytest.raises((ImageOutputError, type(error))) as excinfo:
            write_image_atomic(out, _gradient())
        if isinstance(error, OSError):
            assert excinfo.type is ImageOutputError
            _assert_user_error(excinfo, out, "No space left")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.jpg"]
    assert existing.read_bytes() == b"previous result"


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError):
        write_image_atomic(tmp_path / "o.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        write_image_atomic(tmp_path / "o.png", np.full((4, 4, 3), np.nan, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_load_square_photo_applies_the_exif_orientation(tmp_path):
    """The figures' and the complexity benchmark's photo loader turns a photo upright, as read_image does."""
    from sa_lib.data.image_io import load_square_photo

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red, right half black: stored sideways, EXIF says "rotate 90 CW"
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "sideways.jpg", exif=exif, quality=95)
    square = load_square_photo(tmp_path / "sideways.jpg", 32)
    assert square.shape == (32, 32, 3) and square.dtype == np.uint8
    assert square[:8, :, 0].mean() > 200 and square[-8:, :, 0].mean() < 50  # red on top once upright
