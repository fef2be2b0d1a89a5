"""One point of the complexity benchmark, measured in the child process (sa_lib.cli.complexity_point): time and
peak memory of one (part, method, size). The parent side (sa_lib.eval.complexity) never imports torch, so the
child measures only itself; see that module's docstring for the method.
"""

from __future__ import annotations

import math
import re
import resource
import statistics
import time
from pathlib import Path

import torch

from ..core.color import rgb_to_lab
from ..core.devices import resolve_device
from ..data.demo_data import load_split
from ..data.image_io import load_square_photo
from ..model.attention import StandardAttention, SuperAttention
from ..model.colorizer import build_model
from ..superpixels.pyramid import SuperpixelPyramid
from .complexity import BLOCK_CHANNELS



def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def _peak_rss_kb() -> int:
    """Peak RSS of this process's address space since the last reset (VmHWM); ru_maxrss where /proc is missing.

    ru_maxrss also holds the peak that the parent had when it forked us, which can exceed ours.
    """
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _load_photo(path: Path, size: int) -> torch.Tensor:
    """(1, 3, size, size) sRGB in [0, 1], upright, bicubic resize (as sa_lib.figures.paper.load_photo)."""
    return torch.from_numpy(load_square_photo(path, size)).permute(2, 0, 1).float()[None] / 255.0


def measure_one(part: str, method: str, size: int, repeats: int, device: str = "auto") -> dict:
    """Set up one point, then time its forward and measure its peak memory. Runs in the child.

    `device`: "auto" (CUDA when available), "cpu" or "cuda".
    """
    device = resolve_device(device)
    photos = load_split("val")
    target_rgb, reference_rgb = _load_photo(photos[0], size), _load_photo(photos[1], size)
    info: dict = {"part": part, "method": method, "size": size, "pixels": size * size,
                  "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                  "threads": torch.get_num_threads(), "photos": [photos[0].name, photos[1].name]}

    if part == "block":
        c = BLOCK_CHANNELS
        gen = torch.Generator().manual_seed(0)
        t_feat, r_feat, r_col = (torch.randn(1, c, size, size, generator=gen).to(device) for _ in range(3))
        if method == "super":
            block = SuperAttention(c, c, c, c)
            start = time.perf_counter()
            t_sp = SuperpixelPyramid.from_gray(rgb_to_lab(target_rgb)[:, :1] / 100, levels=1)
            r_sp = SuperpixelPyramid.from_gray(rgb_to_lab(reference_rgb)[:, :1] / 100, levels=1)
            info["slic_setup_s"] = time.perf_counter() - start  # precomputed, not in the timed forward
            args = (t_feat, r_feat, r_col, t_sp.labels[0].to(device), r_sp.labels[0].to(device),
                    t_sp.counts[0].to(device), r_sp.counts[0].to(device))
            info["superpixels"] = [int(t_sp.counts[0][0]), int(r_sp.counts[0][0])]
        else:
            block = StandardAttention(c, c, c, c)
            args = (t_feat, r_feat, r_col)
        module = block.to(device).eval()

        def call():
            _, attention = module(*args)
            return {0: tuple(attention.shape[1:])}
    else:
        module = build_model(method).to(device).eval()  # demo config, pretrained EfficientNet-Lite0
        target_l, reference = rgb_to_lab(target_rgb)[:, :1].to(device), reference_rgb.to(device)

        def call():
            _, intermediates = module(target_l, reference)  # SLIC (super) computed inside ("auto": CPU backends, or torch on CUDA)
            return {lvl: tuple(a.shape[1:]) for lvl, a in intermediates["attention"].items()}

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    with torch.inference_mode():
        synchronize()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            cuda_before = torch.cuda.memory_allocated()
        info["peak_counter_reset"] = _reset_peak_rss()
        rss_before = _rss_kb()
        for i in range(repeats + 1):  # the first run warms up
            start = time.perf_counter()
            shapes = call()
            synchronize()
            if i:
                times.append(time.perf_counter() - start)
        peak_kb = _peak_rss_kb()
    info.update(
        times_s=times, time_s=statistics.median(times),
        rss_before_kb=rss_before, peak_rss_kb=peak_kb, peak_delta_bytes=max(0, peak_kb - rss_before) * 1024,
        attention_shapes={str(k): list(v) for k, v in shapes.items()},
        attention_entries=sum(math.prod(v) for v in shapes.values()))
    if device.type == "cuda":
        info["cuda_peak_delta_bytes"] = torch.cuda.max_memory_allocated() - cuda_before
    return info
