"""Measured cost of super-attention vs standard (dense) attention against resolution.

Why it matters (paper, section 3): standard attention compares every target pixel of a level with every
reference pixel, so its map has (HW)^2 entries and its time and memory grow quadratically with the pixel
count. Super-attention compares superpixels instead; with N ~ sqrt(HW) superpixels per image (SLIC, see
sa_lib.superpixels.pyramid) its map has N_T x N_R ~ HW entries: linear in the pixel count.

Two parts, each for both methods, on the CPU (or CUDA when available):

- block: `SuperAttention` vs `StandardAttention` alone on the SAME level-0 feature map, H x W with C = 16
  channels (the demo config's level-0 width), key/value channels 16, colour values with 16 channels
  (EfficientNet-Lite0's level 0). Feature values are seeded random numbers (the cost does not depend on them);
  the superpixels are real SLIC labels (`SuperpixelPyramid.from_gray`, level 0, round(sqrt(HW)) segments)
  of two validation demo photos resized to H x W, computed before timing. Only the block's forward is timed.
- model: `build_model("super")` vs `build_model("standard")` (demo config, pretrained EfficientNet-Lite0,
  eval, torch.inference_mode), the whole forward of one target and one reference, SLIC included. Standard
  attention sits at the bottleneck (stride 8): its map has (HW/64)^2 entries.

Each (part, method, size) point runs in a FRESH subprocess (`python -m sa_lib.cli.complexity_point PART METHOD SIZE`):
time = median of `repeats` runs after one warm-up; memory = the child's peak RSS (VmHWM, or getrusage
ru_maxrss where /proc is missing) minus its RSS just before the measured calls (the kernel's peak counter is
reset there, so set-up such as SLIC or model loading does not count), and on CUDA
torch.cuda.max_memory_allocated minus the memory allocated before.

Before running a point the parent PREDICTS its memory: 3 x 4 bytes per attention-map entry (the map plus
its softmax copies) plus a per-pixel activation term. A method whose prediction exceeds `max_gb` is not run
("skipped: would need N GB"), and neither are its larger sizes; a method that fails (error, killed, timeout)
is not run at larger sizes either.

The child reads VmHWM rather than ru_maxrss because Linux carries the parent's peak RSS into a child's
ru_maxrss across fork and exec: from a Jupyter kernel that has imported torch (notebook 06) ru_maxrss read
about 45 MB too high on the smallest points. The parent side of this module never imports torch either.
`benchmarks/complexity.py` is the command line over it; notebook 06 re-plots its results.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from ..core.files import REPO_ROOT, atomic_write  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results"
RESULTS_JSON = RESULTS / "complexity.json"
FIGURE = REPO_ROOT / "figures" / "complexity.png"

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
    """SLIC segments asked at an h x w level (same rule as sa_lib.superpixels.pyramid.n_segments_for)."""
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


# ------------------------------------------------------------------------------- parent: one point, output


def cpu_model() -> str:
    """The CPU's model name, for the header of the results."""
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        return match.group(1).strip() if match else platform.processor() or platform.machine()
    except OSError:
        return platform.processor() or platform.machine()


def memory_total() -> str:
    """Total RAM, for the header of the results."""
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
        return f"{kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        return "RAM unknown"


def run_child(part: str, method: str, size: int, repeats: int = 3, timeout: float = 1800,
              device: str = "auto") -> dict:
    """Run one point in a fresh interpreter; returns its result, or {'status': 'failed: ...'}."""
    cmd = [sys.executable, "-m", "sa_lib.cli.complexity_point", part, method, str(size), "--repeats", str(repeats),
           "--device", device]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
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
    """Bytes as a short human string (kB, MB or GB)."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def fmt_time(seconds: float) -> str:
    """Seconds as ms below 1 s."""
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def markdown(results: list[dict], header: dict) -> str:
    """The results table with its header (command, date, machine, method): benchmarks/results/complexity.md."""
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


def plot(results: list[dict], out: Path = FIGURE) -> Path:
    """Log-log time and memory against pixels (skipped points' predicted memory dashed), saved to `out`."""
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
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return out


# ------------------------------------------------------------------------------- parent: runs and results


def measure(sizes: Mapping[str, Iterable[int]], repeats: int = 3, max_gb: float = 8.0, timeout: float = 1800,
            device: str = "auto", log: Callable[[str], None] | None = print) -> list[dict]:
    """Every point of `sizes` (part -> square sizes), both methods, each in a fresh process.

    A point predicted above `max_gb` is skipped with its predicted need, and so are the method's larger
    sizes once one failed. Returns one row per point (the rows of complexity.json).
    """
    limit = max_gb * 1e9
    say = log or (lambda _: None)
    results = []
    for part, part_sizes in sizes.items():
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; choose {' or '.join(PARTS)}")
        for method in METHODS:
            stop = ""
            for size in sorted(part_sizes):
                if size < 8:
                    raise ValueError(f"sizes must be at least 8 pixels (the model needs 8 x 8), got {size}")
                row = {"part": part, "method": method, "size": size, "pixels": size * size,
                       "predicted_entries": predicted_entries(part, method, size),
                       "predicted_bytes": predicted_bytes(part, method, size)}
                if row["predicted_bytes"] > limit:
                    row["status"] = f"skipped: would need {gb(row['predicted_bytes'])}"
                elif stop:
                    row["status"] = stop
                else:
                    row.update(run_child(part, method, size, repeats, timeout, device))
                    if row["status"] == "ok":
                        say(f"[complexity] {part} {method} {size}x{size}: {fmt_time(row['time_s'])}, "
                            f"{gb(measured_bytes(row))} (predicted {gb(row['predicted_bytes'])})")
                    else:
                        say(f"[complexity] {part} {method} {size}x{size}: {row['status']}")
                        stop = f"not run: failed at {size}x{size}"
                results.append(row)
    return results


def make_header(results: list[dict], command: str, started: datetime, load_average: float, repeats: int,
                max_gb: float) -> dict:
    """The provenance of a run (command, date, machine, device, load): the `header` of complexity.json."""
    measured = [r for r in results if r["status"] == "ok"]
    return {
        "command": command,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {memory_total()}, {platform.system()} "
                   f"{platform.release()}",
        "device": measured[0]["device"] if measured else "?",
        "torch_threads": measured[0]["threads"] if measured else "?",
        "cuda": bool(measured and measured[0]["device"] != "cpu"),
        "load_average": f"{load_average:.2f}",
        "busy": load_average > 0.5 * (os.cpu_count() or 1),
        "repeats": repeats, "max_gb": max_gb,
        "elapsed_s": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
    }


def load_average() -> float:
    """The 1-minute load average (0 where unknown): a busy machine makes the times unreliable."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def run(sizes: Mapping[str, Iterable[int]], repeats: int = 3, max_gb: float = 8.0, timeout: float = 1800,
        device: str = "auto", command: str = "", log: Callable[[str], None] | None = print
        ) -> tuple[dict, list[dict]]:
    """`measure` with its provenance: (header, results), ready for `markdown`, `write_results` and `plot`."""
    started, load = datetime.now(timezone.utc), load_average()
    results = measure(sizes, repeats, max_gb, timeout, device, log)
    return make_header(results, command, started, load, repeats, max_gb), results


def write_results(header: dict, results: list[dict], folder: Path = RESULTS) -> tuple[Path, Path]:
    """Write complexity.md and complexity.json into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "complexity.md", folder / "complexity.json"
    atomic_write(md, lambda tmp: tmp.write_text(markdown(results, header)))
    atomic_write(js, lambda tmp: tmp.write_text(json.dumps({"header": header, "results": results}, indent=1) + "\n"))
    return md, js


def load_results(path: Path | str = RESULTS_JSON) -> tuple[dict, list[dict]]:
    """(header, results) of a complexity.json written by `write_results` (the committed one by default)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"complexity results not found: {path} (make them with "
                                f"`python benchmarks/complexity.py`)")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "header" not in data or "results" not in data:
        raise ValueError(f"{path} is not a complexity results file (no header/results)")
    return data["header"], data["results"]


def scaling_exponents(results: list[dict], key: str = "time") -> dict[tuple[str, str], float]:
    """Least-squares slope of log(time or memory) against log(pixels), per (part, method) with >= 2 points.

    About 1 means linear in the pixel count, about 2 quadratic. `key` is "time" or "memory".
    """
    if key not in ("time", "memory"):
        raise ValueError(f"key must be time or memory, got {key!r}")
    slopes = {}
    for part in PARTS:
        for method in METHODS:
            ok = [r for r in results if r["part"] == part and r["method"] == method and r["status"] == "ok"]
            if len({r["pixels"] for r in ok}) < 2:
                continue
            xs = [math.log(r["pixels"]) for r in ok]
            ys = [math.log(r["time_s"] if key == "time" else measured_bytes(r)) for r in ok]
            mx, my = statistics.fmean(xs), statistics.fmean(ys)
            slopes[(part, method)] = (sum((x - mx) * (y - my) for x, y in zip(xs, ys))
                                      / sum((x - mx) ** 2 for x in xs))
    return slopes


SMOKE_SIZES = {"block": (32, 64)}  # notebook 06's smoke run: the block alone at two tiny sizes, seconds


def profile_results(profile, device: str = "auto", log: Callable[[str], None] | None = print
                    ) -> tuple[dict, list[dict], str]:
    """(header, results, where they come from) for notebook 06, for `profile` (a sa_lib.profiles.Profile, passed
    in because this parent side imports neither torch nor the registry, which imports the network).

    As the profile says (sa_lib.profiles): `complexity_live` (smoke, paper-smoke): a tiny live measurement
    (SMOKE_SIZES); `gpu_sized` (paper) on a GPU: the full benchmark, measured now; otherwise (demo, or paper
    without a GPU): the committed benchmarks/results/complexity.json, measured once on the machine its header
    names (the full run takes minutes and needs an idle machine for reliable times).
    """
    name = profile.name
    if profile.complexity_live:
        header, results = run(SMOKE_SIZES, repeats=3, device=device, command=f"notebooks/06_complexity ({name})",
                              log=log)
        return header, results, f"measured now ({name}: the block alone at two tiny sizes)"
    if profile.gpu_sized and device != "cpu":
        import torch  # deferred: the parent never imports torch (only the children are measured)

        if torch.cuda.is_available():
            header, results = run({"block": BLOCK_SIZES, "model": MODEL_SIZES}, device="cuda",
                                  command=f"notebooks/06_complexity ({name})", log=log)
            return header, results, f"measured now on the GPU ({name} profile)"
    header, results = load_results()
    why = f" ({name} profile without a GPU: not re-measured)" if profile.gpu_sized else ""
    return header, results, f"read from the committed {RESULTS_JSON.relative_to(REPO_ROOT)}{why}"
