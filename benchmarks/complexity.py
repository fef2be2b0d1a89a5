"""Measured time and memory of super-attention vs standard (dense) attention against resolution.

    python benchmarks/complexity.py                 # full run: block 56 .. 3584 px, whole model 224 .. 1792 px
    python benchmarks/complexity.py --quick         # sizes 56, 112, 224 only (checks that everything works)
    python benchmarks/complexity.py --one block standard 112   # one point, in this process (what the parent runs)

Two parts, each for both methods, on the CPU (or CUDA when available):

- block: `SuperAttention` vs `StandardAttention` alone on the SAME level-0 feature map, H x W with C = 16
  channels (the demo config's level-0 width), key/value channels 16, colour values with 16 channels
  (EfficientNet-Lite0's level 0). Feature values are seeded random numbers (the cost does not depend on them);
  the superpixels are real SLIC labels (`SuperpixelPyramid.from_gray`, level 0, round(sqrt(HW)) segments)
  of two validation demo photos resized to H x W, computed before timing. Only the block's forward is timed.
- model: `build_model("super")` vs `build_model("standard")` (demo config, pretrained EfficientNet-Lite0,
  eval, torch.inference_mode), the whole forward of one target and one reference, SLIC included. Standard
  attention sits at the bottleneck (stride 8): its map has (HW/64)^2 entries.

Each (part, method, size) point runs in a FRESH subprocess (`--one PART METHOD SIZE`): time = median of
--repeats runs after one warm-up; memory = the child's peak RSS (getrusage ru_maxrss) minus its RSS just
before the measured calls (the kernel's peak counter is reset there, so set-up such as SLIC or model loading
does not count), and on CUDA torch.cuda.max_memory_allocated minus the memory allocated before.

Before running a point the parent PREDICTS its memory: 3 x 4 bytes per attention-map entry (the map plus
its softmax copies) plus a per-pixel activation term. A method whose prediction exceeds --max-gb is not run
("skipped: would need N GB"), and neither are its larger sizes; a method that fails (error, killed, timeout)
is not run at larger sizes either. Dense attention on a full-resolution 224 x 224 map needs ~10 GB for
the map alone (~30 GB predicted), so with the default 8 GB it is measured only at 56 and 112.

Outputs: a markdown table (printed and written to benchmarks/results/complexity.md, with the command, date
and machine), the raw results in benchmarks/results/complexity.json, and figures/complexity.png (log-log
time and memory against pixels; skipped points' predicted memory dashed).

The parent process never imports torch, so that its own memory cannot leak into a child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "figures" / "complexity.png"

PARTS = ("block", "model")
METHODS = ("super", "standard")
BLOCK_SIZES = (56, 112, 224, 448, 896, 1792, 3584)
MODEL_SIZES = (224, 448, 896, 1792)
QUICK_SIZES = (56, 112, 224)

BLOCK_CHANNELS = 16  # demo config: U-Net width at level 0, and EfficientNet-Lite0's level-0 channels
SOFTMAX_COPIES = 3  # the map, its scaled copy and the softmax output can be alive at once
BYTES_PER_ENTRY = 4  # float32
# Activation memory per input pixel, besides the attention map: rough estimates (the table shows them next
# to the measured peak). block: the hints (16 ch float32) plus the index/projection tensors; model: the
# siamese U-Net and colour-encoder feature maps kept for the skips, the decoder's concatenations, SLIC.
ACTIVATION_BYTES_PER_PIXEL = {("block", "super"): 256, ("block", "standard"): 256,
                              ("model", "super"): 2048, ("model", "standard"): 1536}
FIXED_BYTES = {"block": 4 * 2**20, "model": 16 * 2**20}  # allocator and library overhead of a first call
RESULT_TAG = "COMPLEXITY_RESULT "


# ------------------------------------------------------------------------------------------- predictions


def n_segments(h: int, w: int) -> int:
    """SLIC segments asked at an h x w level (same rule as sa_lib.superpixels.n_segments_for)."""
    return max(1, round(math.sqrt(h * w)))


def predicted_entries(part: str, method: str, size: int) -> int:
    """Attention-map entries per image (target x reference) of one point."""
    if method == "standard":
        side = size if part == "block" else size // 8  # the model's dense block is at the bottleneck
        return (side * side) ** 2
    levels = [size] if part == "block" else [size, size // 2, size // 4]  # super-attention levels 0, 1, 2
    return sum(n_segments(s, s) ** 2 for s in levels)


def predicted_bytes(part: str, method: str, size: int) -> int:
    """Predicted peak memory of the measured call: 3 x 4 B per map entry + activations per pixel + a constant."""
    return (SOFTMAX_COPIES * BYTES_PER_ENTRY * predicted_entries(part, method, size)
            + ACTIVATION_BYTES_PER_PIXEL[(part, method)] * size * size + FIXED_BYTES[part])


# ------------------------------------------------------------------------------------- child: one point


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _load_photo(path: Path, size: int):
    """(1, 3, size, size) sRGB in [0, 1], bicubic resize (as sa_lib.paper.load_photo)."""
    import numpy as np
    import torch
    from PIL import Image

    image = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255.0


def measure_one(part: str, method: str, size: int, repeats: int) -> dict:
    """Set up one point, then time its forward and measure its peak memory. Runs in the child."""
    import torch

    from sa_lib.color import rgb_to_lab
    from sa_lib.demo_data import load_split

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    photos = load_split("val")
    target_rgb, reference_rgb = _load_photo(photos[0], size), _load_photo(photos[1], size)
    info: dict = {"part": part, "method": method, "size": size, "pixels": size * size,
                  "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                  "threads": torch.get_num_threads(), "photos": [photos[0].name, photos[1].name]}

    if part == "block":
        from sa_lib.attention import StandardAttention, SuperAttention
        from sa_lib.superpixels import SuperpixelPyramid

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
        from sa_lib.model import build_model

        module = build_model(method).to(device).eval()  # demo config, pretrained EfficientNet-Lite0
        target_l, reference = rgb_to_lab(target_rgb)[:, :1].to(device), reference_rgb.to(device)

        def call():
            _, intermediates = module(target_l, reference)  # SLIC (super) computed inside, on the CPU
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
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info.update(
        times_s=times, time_s=statistics.median(times),
        rss_before_kb=rss_before, peak_rss_kb=peak_kb, peak_delta_bytes=max(0, peak_kb - rss_before) * 1024,
        attention_shapes={str(k): list(v) for k, v in shapes.items()},
        attention_entries=sum(math.prod(v) for v in shapes.values()))
    if device.type == "cuda":
        info["cuda_peak_delta_bytes"] = torch.cuda.max_memory_allocated() - cuda_before
    return info


# ------------------------------------------------------------------------------------ parent: all points


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        return match.group(1).strip() if match else platform.processor() or platform.machine()
    except OSError:
        return platform.processor() or platform.machine()


def memory_total() -> str:
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
        return f"{kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        return "RAM unknown"


def run_child(part: str, method: str, size: int, repeats: int, timeout: float) -> dict:
    """Run one point in a fresh interpreter; returns its result, or {'status': 'failed: ...'}."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", part, method, str(size),
           "--repeats", str(repeats)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"status": f"failed: timeout after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return {**json.loads(line[len(RESULT_TAG):]), "child_wall_s": time.perf_counter() - start,
                    "status": "ok"}
    if proc.returncode < 0:
        why = f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
    else:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = lines[-1][:200] if lines else f"exit status {proc.returncode}"
    return {"status": f"failed: {why}"}


def measured_bytes(r: dict) -> int:
    """Peak memory of a measured point: CUDA allocations on a GPU, RSS growth on the CPU (at least 1 B)."""
    return max(r.get("cuda_peak_delta_bytes", r["peak_delta_bytes"]), 1)


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def fmt_time(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def markdown(results: list[dict], header: dict) -> str:
    lines = [
        "# Super-attention vs standard attention: measured cost against resolution", "",
        f"- command: `{header['command']}`",
        f"- date: {header['date']}",
        f"- machine: {header['machine']}",
        f"- device: {header['device']}, torch {header['torch_threads']} threads "
        f"(1-minute load average {header['load_average']} at start)",
        f"- time: median of {header['repeats']} runs after one warm-up; memory: peak RSS of a fresh process "
        f"minus its RSS just before the measured calls{' (CUDA: max_memory_allocated)' if header['cuda'] else ''}; "
        f"predicted: 3 x 4 B per attention entry + activations; points predicted above "
        f"{header['max_gb']:g} GB are skipped.",
        "- block: the attention block alone on an H x W level-0 map (16 channels), SLIC labels precomputed; "
        "model: the whole demo-config forward (one target, one reference), SLIC included for super.",
        *(["- WARNING: other work was running on this machine at the start (load average above half the CPUs): "
           "the times are not reliable; the memory is."] if header["busy"] else []), "",
        "| part | method | size | pixels | attention entries | time | peak memory | predicted | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ok = r["status"] == "ok"
        memory = measured_bytes(r) if ok else None
        entries = r.get("attention_entries", r["predicted_entries"])
        lines.append(
            f"| {r['part']} | {r['method']} | {r['size']}x{r['size']} | {r['size'] ** 2:,} | "
            f"{entries:,}{'' if ok else ' (predicted)'} | {fmt_time(r['time_s']) if ok else '-'} | "
            f"{gb(memory) if ok else '-'} | {gb(r['predicted_bytes'])} | {r['status']} |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {"super": "tab:blue", "standard": "tab:red"}
    markers = {"block": "o", "model": "s"}
    for part in PARTS:
        for method in METHODS:
            rows = [r for r in results if r["part"] == part and r["method"] == method]
            ok = [r for r in rows if r["status"] == "ok"]
            skipped = [r for r in rows if r["status"].startswith("skipped")]
            label = f"{method} ({part})"
            style = dict(color=colors[method], marker=markers[part],
                         linestyle="-" if part == "block" else ":")
            if ok:
                ax_t.plot([r["pixels"] for r in ok], [r["time_s"] for r in ok], label=label, **style)
                ax_m.plot([r["pixels"] for r in ok], [measured_bytes(r) / 1e6 for r in ok], label=label, **style)
            if skipped:  # predicted memory of the points not run, dashed, joined to the last measured one
                xs = [r["pixels"] for r in ok[-1:] + skipped]
                ys = [measured_bytes(r) / 1e6 for r in ok[-1:]] + [r["predicted_bytes"] / 1e6 for r in skipped]
                ax_m.plot(xs, ys, color=colors[method], marker=markers[part], linestyle="--",
                          markerfacecolor="none", label=f"{method} ({part}): predicted, skipped")
    ax_t.set_title("forward time")
    ax_t.set_ylabel("seconds (median)")
    ax_m.set_title("peak memory of the call (dashed: predicted, not run)")
    ax_m.set_ylabel("MB")
    sides = sorted({r["size"] for r in results})
    for ax in (ax_t, ax_m):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([s * s for s in sides], [f"{s}²" for s in sides])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("pixels (H x W, log scale)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Super-attention vs standard attention against resolution (log-log)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def run_all(args: argparse.Namespace) -> None:
    if args.sizes:
        sizes = {"block": args.sizes, "model": args.sizes}
    elif args.quick:
        sizes = {"block": QUICK_SIZES, "model": QUICK_SIZES}
    else:
        sizes = {"block": BLOCK_SIZES, "model": MODEL_SIZES}
    limit = args.max_gb * 1e9
    started = datetime.now(timezone.utc)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    results = []
    for part in args.parts:
        for method in METHODS:
            stop = ""
            for size in sorted(sizes[part]):
                row = {"part": part, "method": method, "size": size, "pixels": size * size,
                       "predicted_entries": predicted_entries(part, method, size),
                       "predicted_bytes": predicted_bytes(part, method, size)}
                if row["predicted_bytes"] > limit:
                    row["status"] = f"skipped: would need {gb(row['predicted_bytes'])}"
                elif stop:
                    row["status"] = stop
                else:
                    print(f"[complexity] {part} {method} {size}x{size} ...", end=" ", flush=True)
                    row.update(run_child(part, method, size, args.repeats, args.timeout))
                    if row["status"] == "ok":
                        print(f"{fmt_time(row['time_s'])}, {gb(measured_bytes(row))} "
                              f"(predicted {gb(row['predicted_bytes'])})",
                              flush=True)
                    else:
                        print(row["status"], flush=True)
                        stop = f"not run: failed at {size}x{size}"
                results.append(row)

    measured = [r for r in results if r["status"] == "ok"]
    header = {
        "command": shlex.join(["python", "benchmarks/complexity.py", *sys.argv[1:]]),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {memory_total()}, {platform.system()} "
                   f"{platform.release()}",
        "device": measured[0]["device"] if measured else "?",
        "torch_threads": measured[0]["threads"] if measured else "?",
        "cuda": bool(measured and measured[0]["device"] != "cpu"),
        "load_average": f"{load:.2f}",
        "busy": load > 0.5 * (os.cpu_count() or 1),
        "repeats": args.repeats, "max_gb": args.max_gb,
        "elapsed_s": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
    }
    table = markdown(results, header)
    print()
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "complexity.md").write_text(table)
    (RESULTS / "complexity.json").write_text(json.dumps({"header": header, "results": results}, indent=1) + "\n")
    plot(results, FIGURE)
    print(f"[complexity] wrote {RESULTS / 'complexity.md'}, {RESULTS / 'complexity.json'} and {FIGURE} "
          f"in {header['elapsed_s']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="square sizes in pixels, for both parts "
                        f"(default: block {' '.join(map(str, BLOCK_SIZES))}; model {' '.join(map(str, MODEL_SIZES))})")
    parser.add_argument("--quick", action="store_true", help=f"sizes {', '.join(map(str, QUICK_SIZES))} only")
    parser.add_argument("--max-gb", type=float, default=8.0,
                        help="skip a point whose predicted memory exceeds this (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up (default 3)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per point (default 1800)")
    parser.add_argument("--one", nargs=3, metavar=("PART", "METHOD", "SIZE"),
                        help="measure one point in this process and print its result as JSON")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.sizes and min(args.sizes) < 8:
        parser.error("--sizes must be at least 8 pixels (the model needs 8 x 8)")
    if args.one:
        part, method, size = args.one
        if part not in PARTS or method not in METHODS or not size.isdigit() or int(size) < 8:
            parser.error(f"--one takes PART ({'|'.join(PARTS)}) METHOD ({'|'.join(METHODS)}) SIZE (>= 8)")
        print(RESULT_TAG + json.dumps(measure_one(part, method, int(size), args.repeats)), flush=True)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
