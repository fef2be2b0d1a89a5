"""Speed of the SLIC backends (sa_lib.superpixels.pyramid): time per image, batch throughput, and the 2048x1365 pair.

    python benchmarks/slic_backends.py [--sizes 224,1024,2048] [--batch 64] [--repeats 3] [--torch-threads 1]

- per image: one gray image of S x S (a demo photo resized), round(sqrt(S^2)) superpixels, one level;
- batch: `--batch` images of 224 x 224 (different demo photos) labelled at one level: the torch backend in
  one batched call (on CUDA when there is one), the others image by image;
- pair: a 2048x1365 target and a 2048x1365 reference (two demo photos upscaled), all three attention
  levels of both, as `sa-colorize --mode highres` needs them; speedup against scikit-image.

Time is the minimum over `--repeats` runs after one warm-up (the torch backend on the CPU is slow at large
sizes, so it runs once there). On CUDA every timing is synchronised. Writes
benchmarks/results/slic_backends.md and .json and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_timing import synchronized_times
from sa_lib.data.demo_data import load_split
from sa_lib.superpixels.pyramid import (SLIC_BACKENDS, SuperpixelPyramid, opencv_available, resolve_backend,
                                slic_labels)

RESULTS = Path(__file__).resolve().parent / "results"
PAIR_SIZE = (1365, 2048)  # (H, W)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def gray_photo(index: int, height: int, width: int) -> np.ndarray:
    """Demo val photo number `index`, gray in [0, 1], resized (bicubic) to height x width."""
    path = load_split("val")[index % len(load_split("val"))]
    image = Image.open(path).convert("L").resize((width, height), Image.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def timed(function, repeats: int, device: torch.device, warm_up: bool = True) -> float:
    """Minimum wall time of `repeats` calls after one warm-up call (synchronised on CUDA)."""
    if warm_up:
        synchronized_times(function, 1, device)
    return min(synchronized_times(function, repeats, device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="224,1024,2048")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch CPU threads (1: on a busy 2-core machine more threads make it far slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backends = [b for b in SLIC_BACKENDS if b != "opencv" or opencv_available()]
    load_before = os.getloadavg()[0]
    rows: list[dict] = []

    def slow_on_cpu(backend: str, pixels: int) -> bool:
        return backend == "torch" and device.type == "cpu" and pixels > 300_000

    for size in (int(s) for s in args.sizes.split(",")):
        gray = gray_photo(0, size, size)
        for backend in backends:
            repeats = 1 if slow_on_cpu(backend, size * size) else args.repeats
            if backend == "torch":
                tensor = torch.from_numpy(gray).to(device)[None, None]  # (1, 1, S, S)
                seconds = timed(lambda: SuperpixelPyramid.from_gray(tensor, 1, backend="torch"), repeats, device,
                                warm_up=repeats > 1)
            else:
                seconds = timed(lambda: slic_labels(gray, backend=backend), repeats, device)
            rows.append({"kind": "per image", "backend": backend, "size": f"{size}x{size}", "images": 1,
                         "seconds": seconds, "device": str(device) if backend == "torch" else "cpu"})
            print(rows[-1], flush=True)

    batch = np.stack([gray_photo(i, 224, 224) for i in range(args.batch)])  # (B, 224, 224)
    for backend in backends:
        if backend == "torch":
            tensor = torch.from_numpy(batch).to(device)[:, None]  # (B, 1, 224, 224)
            seconds = timed(lambda: SuperpixelPyramid.from_gray(tensor, 1, backend="torch"), args.repeats, device)
        else:
            seconds = timed(lambda: [slic_labels(g, backend=backend) for g in batch], 1, device, warm_up=False)
        rows.append({"kind": "batch", "backend": backend, "size": "224x224", "images": args.batch,
                     "seconds": seconds, "device": str(device) if backend == "torch" else "cpu"})
        print(rows[-1], flush=True)

    target, reference = gray_photo(0, *PAIR_SIZE), gray_photo(1, *PAIR_SIZE)
    for backend in backends:
        repeats = 1 if slow_on_cpu(backend, PAIR_SIZE[0] * PAIR_SIZE[1]) else args.repeats

        def pair():
            for image in (target, reference):
                tensor = torch.from_numpy(image).to(device)[None, None]  # (1, 1, H, W)
                SuperpixelPyramid.from_gray(tensor, 3, backend=backend)

        seconds = timed(pair, repeats, device, warm_up=repeats > 1)
        rows.append({"kind": "pair, 3 levels", "backend": backend, "size": f"{PAIR_SIZE[1]}x{PAIR_SIZE[0]}",
                     "images": 2, "seconds": seconds, "device": str(device) if backend == "torch" else "cpu"})
        print(rows[-1], flush=True)

    skimage_time = {(r["kind"], r["size"]): r["seconds"] for r in rows if r["backend"] == "skimage"}
    for r in rows:
        r["speedup_vs_skimage"] = skimage_time[(r["kind"], r["size"])] / r["seconds"]
        r["images_per_second"] = r["images"] / r["seconds"]
    meta = {
        "command": "python benchmarks/slic_backends.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs (nproc), {platform.system()} {platform.release()}",
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "threads": {"torch": torch.get_num_threads(), "opencv": __import__("cv2").getNumThreads()
                    if opencv_available() else None},
        "load_average_1min": {"start": load_before, "end": os.getloadavg()[0]},
        "auto_on_this_device": resolve_backend("auto", device),
        "versions": {"torch": torch.__version__, "skimage": __import__("skimage").__version__,
                     "opencv": __import__("cv2").__version__ if opencv_available() else None},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "slic_backends.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["# SLIC backends: speed", "", f"- command: `{meta['command']}`", f"- date: {meta['date']}",
             f"- machine: {meta['machine']}", f"- device for the torch backend: {meta['device']}; threads: "
             f"torch {meta['threads']['torch']}, opencv {meta['threads']['opencv']}; scikit-image runs on one core",
             f"- 1-minute load average: {load_before:.2f} at start, {meta['load_average_1min']['end']:.2f} at end "
             f"(this machine is shared: times are minima of repeated runs)",
             f"- time: minimum of {args.repeats} runs after a warm-up; a single run without warm-up for torch on "
             "the CPU above 0.3 Mpx and for the image-by-image batches", "",
             "| what | backend | size | images | time | images/s | vs scikit-image |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['backend']} ({r['device']}) | {r['size']} | {r['images']} | "
                     f"{r['seconds'] * 1e3:.1f} ms | {r['images_per_second']:.1f} | "
                     f"{r['speedup_vs_skimage']:.2f}x |")
    (RESULTS / "slic_backends.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
