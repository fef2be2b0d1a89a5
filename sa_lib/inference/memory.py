"""The memory guard of both modes: refuse, in one line, a run that would not fit (instead of an OOM kill)."""

from __future__ import annotations

# Peak memory of --mode highres on the CPU, measured with demo-super (widths from 16): 2.6 GB for a 2048x1365
# pair, 7.7 GB for a 4000x2667 pair (BENCHMARKS.md), i.e. about 0.8 GB + 330 bytes per pixel of target plus
# reference. The per-pixel term grows with the network's first width.
HIGHRES_BASE_BYTES = 0.8e9
HIGHRES_BYTES_PER_PIXEL = 330.0
# The transfer model (ColorizerConfig.match_frozen) adds its frozen matching features, resized and pooled 64
# channels at a time, and its carried a*b*: measured on the same pairs, 1024x683 and 2048x1365, 1.73 and 3.96 GB
# against demo-super's 1.42 and 2.95 GB, i.e. about 170 bytes per pixel more (BENCHMARKS.md).
MATCH_FROZEN_BYTES_PER_PIXEL = 170.0
# Peak memory of --mode fast on the CPU, where the network runs at the working size and only the decode, the
# target's L*, the upsampled a*b* and the colour conversion are at full resolution: measured with demo-transfer
# (`python benchmarks/end_to_end.py --checkpoint demo-transfer --modes fast --size ...`, 2026-12-02) at 2.56 GB
# for a 4000x3000 pair and 8.01 GB for an 8000x6000 pair, i.e. about 0.74 GB + 76 bytes per pixel of target plus
# reference (which gives 1.16 GB for the 2048x1365 pair of BENCHMARKS.md, measured at 1.18-1.31 GB).
FAST_BASE_BYTES = 0.74e9
FAST_BYTES_PER_PIXEL = 76.0


class InsufficientMemory(RuntimeError):
    """A colorization would need more memory than the machine has available: refused before it starts."""


def highres_memory_estimate(target_pixels: int, reference_pixels: int, first_width: int = 16,
                            match_frozen: bool = False) -> float:
    """Approximate peak bytes of a highres colorization on the CPU (see HIGHRES_BYTES_PER_PIXEL)."""
    per_pixel = HIGHRES_BYTES_PER_PIXEL * first_width / 16 + (MATCH_FROZEN_BYTES_PER_PIXEL if match_frozen else 0.0)
    return HIGHRES_BASE_BYTES + per_pixel * (target_pixels + reference_pixels)


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


def fast_memory_estimate(target_pixels: int, reference_pixels: int) -> float:
    """Approximate peak bytes of a fast-mode colorization on the CPU (see FAST_BYTES_PER_PIXEL)."""
    return FAST_BASE_BYTES + FAST_BYTES_PER_PIXEL * (target_pixels + reference_pixels)


def check_memory(mode: str, target_shape: tuple[int, int], reference_shape: tuple[int, int], first_width: int,
                 match_frozen: bool = False) -> None:
    """Refuse, in one line, a run of `mode` (fast or highres) that would not fit in the available memory (instead
    of an OOM kill)."""
    target_pixels, reference_pixels = target_shape[0] * target_shape[1], reference_shape[0] * reference_shape[1]
    need = (highres_memory_estimate(target_pixels, reference_pixels, first_width, match_frozen) if mode == "highres"
            else fast_memory_estimate(target_pixels, reference_pixels))
    have = available_memory()
    if have is not None and need > have:
        advice = "use --mode fast (the default) or smaller images" if mode == "highres" else "use smaller images"
        raise InsufficientMemory(
            f"--mode {mode} needs about {need / 1e9:.1f} GB for a {target_shape[1]}x{target_shape[0]} target and a "
            f"{reference_shape[1]}x{reference_shape[0]} reference, {have / 1e9:.1f} GB is available: {advice}")
