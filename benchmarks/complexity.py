"""Measured time and memory of super-attention vs standard (dense) attention against resolution.

    python benchmarks/complexity.py                 # full run: block 56 .. 3584 px, whole model 224 .. 1792 px
    python benchmarks/complexity.py --quick         # sizes 56, 112, 224 only (checks that everything works)
    python benchmarks/complexity.py --one block standard 112   # one point, in this process

The measurement itself (what is timed, how memory is read, the predictions that skip points too large for
--max-gb) is `sa_lib.eval.complexity`, whose docstring describes it; notebook 06 uses the same functions. Each
point runs in a fresh process. Dense attention on a full-resolution 224 x 224 map needs ~10 GB for the map
alone (~30 GB predicted), so with the default 8 GB it is measured only at 56 and 112.

Outputs: a markdown table (printed and written to benchmarks/results/complexity.md, with the command, date
and machine), the raw results in benchmarks/results/complexity.json, and figures/complexity.png (log-log
time and memory against pixels; skipped points' predicted memory dashed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from sa_lib.eval.complexity import (BLOCK_SIZES, FIGURE, METHODS, MODEL_SIZES, PARTS, QUICK_SIZES, RESULT_TAG,
                                    RESULTS, markdown, plot, run, write_results)
from sa_lib.eval.complexity_point import measure_one


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
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the points run (default: CUDA when available)")
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
        print(RESULT_TAG + json.dumps(measure_one(part, method, int(size), args.repeats, args.device)), flush=True)
        return
    if args.sizes:
        sizes = {"block": args.sizes, "model": args.sizes}
    elif args.quick:
        sizes = {"block": QUICK_SIZES, "model": QUICK_SIZES}
    else:
        sizes = {"block": BLOCK_SIZES, "model": MODEL_SIZES}
    header, results = run({part: sizes[part] for part in args.parts}, args.repeats, args.max_gb, args.timeout,
                          args.device, command=shlex.join(["python", "benchmarks/complexity.py", *sys.argv[1:]]))
    print()
    print(markdown(results, header))
    md, js = write_results(header, results, RESULTS)
    plot(results, FIGURE)
    print(f"[complexity] wrote {md}, {js} and {FIGURE} in {header['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
