"""Quality of `fast` against `highres` on the demo evaluation pairs at the photos' own resolution.

    python benchmarks/mode_quality.py [--checkpoint demo-super] [--working-size 256]

Each val photo (up to 640 px) is colorized from its gray version with its ranked reference and with its
own ground truth as reference, in both modes; the result is scored against the true colours with the
project's metrics (sa_lib.eval.metrics). Prints a markdown table of the means and the time per image.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np
from PIL import Image

from sa_lib.inference.colorize import colorize
from sa_lib.data.demo_data import DEMO_DIR
from sa_lib.data.pairs import load_full_pair, read_pairs
from sa_lib.eval.metrics import ciede2000, psnr_ab, ssim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="demo-super")
    parser.add_argument("--working-size", type=int, default=256)
    args = parser.parse_args()
    pairs = read_pairs(DEMO_DIR / "eval_pairs.csv", DEMO_DIR / "images", DEMO_DIR / "images")
    scores: dict[tuple[str, str], dict[str, list[float]]] = {}
    for pair in pairs:
        truth, reference = load_full_pair(pair)  # (H, W, 3) float32 in [0, 1]; the reference cut to its box
        truth_image = Image.fromarray((truth * 255 + 0.5).astype(np.uint8))
        for ref_name, ref in (("ranked", reference), ("ground truth", truth_image)):
            for mode in ("fast", "highres"):
                start = time.perf_counter()
                out = colorize(truth_image.convert("L"), ref, checkpoint=args.checkpoint, mode=mode,
                               working_size=args.working_size)
                elapsed = time.perf_counter() - start
                pred = np.asarray(out, dtype=np.float64) / 255.0
                s = scores.setdefault((ref_name, mode), {})
                for name, value in (("psnr_ab", psnr_ab(pred, truth)), ("ciede2000", ciede2000(pred, truth)),
                                    ("ssim", ssim(pred, truth)), ("seconds", elapsed)):
                    s.setdefault(name, []).append(value)
    print(f"{date.today()}: `python benchmarks/mode_quality.py --checkpoint {args.checkpoint} --working-size "
          f"{args.working_size}`, {len(pairs)} demo val photos at their own size (longest side up to 640 px)\n")
    print("| reference | mode | PSNR(ab) ↑ | CIEDE2000 ↓ | SSIM ↑ | time per image |\n|---|---|---|---|---|---|")
    for (ref_name, mode), s in scores.items():
        print(f"| {ref_name} | {mode} | {np.mean(s['psnr_ab']):.2f} | {np.mean(s['ciede2000']):.2f} | "
              f"{np.mean(s['ssim']):.4f} | {np.mean(s['seconds']):.2f} s |")


if __name__ == "__main__":
    main()
