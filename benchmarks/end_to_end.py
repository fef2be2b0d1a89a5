"""End to end: `sa-colorize` on a large pair (decode to written file), both modes: wall time and peak memory.

    python benchmarks/end_to_end.py [--size 2048x1365] [--checkpoint demo-super] [--modes fast,highres]
                                    [--flip-average auto|on|off]

The pair is made from two demo photos upscaled to the size (the demo photos are at most 640 px), so the
numbers measure cost, not quality. Each run is a fresh process; peak memory is its maximum RSS.
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from PIL import Image

from sa_lib.data.demo_data import load_split
from sa_lib.inference.colorize import FLIP_AVERAGE_CHOICES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2048x1365")
    parser.add_argument("--checkpoint", default="demo-super")
    parser.add_argument("--modes", default="fast,highres")
    parser.add_argument("--flip-average", default="auto", choices=tuple(FLIP_AVERAGE_CHOICES),
                        help="sa-colorize's --flip-average (auto: the checkpoint's)")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    folder = Path(tempfile.mkdtemp())
    val = load_split("val")
    Image.open(val[0]).convert("L").resize((width, height), Image.BICUBIC).save(folder / "target.jpg", quality=95)
    Image.open(val[1]).convert("RGB").resize((width, height), Image.BICUBIC).save(folder / "reference.jpg",
                                                                                  quality=95)
    rows = []
    for mode in args.modes.split(","):
        command = [sys.executable, "-m", "sa_lib", str(folder / "target.jpg"), str(folder / "reference.jpg"),
                   "-o", str(folder / f"out-{mode}.png"), "--mode", mode, "--checkpoint", args.checkpoint,
                   "--flip-average", args.flip_average]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        status = "ok" if result.returncode == 0 else f"failed: {result.stderr.strip()[-200:]}"
        peak = f"{peak_kb / 1e6:.2f} GB" if peak_kb > before else "<= previous run"
        rows.append(f"| {mode} | {width}x{height} | {wall:.1f} s | {peak} | {status} |")
    print(f"{date.today()}, {platform.machine()}, `python benchmarks/end_to_end.py --size {args.size}`, "
          f"checkpoint {args.checkpoint}, --flip-average {args.flip_average}; wall time includes Python start, "
          "model load, decode and write.\n")
    print("| mode | size | wall time | peak RSS | status |\n|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
