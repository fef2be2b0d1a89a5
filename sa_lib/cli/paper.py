"""`make paper`: regenerate every figure and table of the paper for a profile by running the notebooks
(sa_lib.figures.paper).

    python -m sa_lib.cli.paper --profile demo              # offline, CPU, shipped demo checkpoints (minutes)
    python -m sa_lib.cli.paper --profile demo --retrain    # ... and retrain the demo checkpoints first
    python -m sa_lib.cli.paper --profile paper             # the authors' protocol: COCO + VGG19 on a GPU
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core.devices import resolve_device
from ..core.errors import UsageError
from ..core.files import FIGURES_DIR
from ..core.hub import AssetUnavailable
from ..figures.paper import (BUILD_NOTEBOOKS, NOTEBOOKS, NotebookFailed, run_notebooks, save_snapshots, write_extras,
                             write_timings)
from ..profiles import PROFILES
from .command import CommandParser, run_command, summary

PROG = "python -m sa_lib.cli.paper"


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__))
    p.add_argument("--profile", choices=sorted(name for name, profile in PROFILES.items() if profile.notebooks),
                   default="demo")
    p.add_argument("--out", type=Path, default=FIGURES_DIR, help="folder for figures and tables (default figures/)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (passed to the notebooks)")
    p.add_argument("--retrain", action="store_true", help="retrain the checkpoints in 02_training")
    p.add_argument("--only", nargs="+", metavar="PREFIX", help="run only these notebooks (e.g. 03 05)")
    p.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help=argparse.SUPPRESS)
    p.add_argument("--executed", type=Path, default=BUILD_NOTEBOOKS, help=argparse.SUPPRESS)
    p.add_argument("--skip-extras", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--snapshots", type=Path, metavar="DIR",
                   help="only copy the figures of --out, downscaled, into DIR (docs/figures for the README)")
    return p


def snapshots(args: argparse.Namespace) -> None:
    written = save_snapshots(args.out, args.snapshots)
    print(f"[paper] wrote {len(written)} snapshots to {args.snapshots}")


def make_paper(args: argparse.Namespace) -> None:
    if args.retrain and args.only and not any("02_training".startswith(prefix) for prefix in args.only):
        raise UsageError("--retrain happens in notebook 02: add 02 to --only")
    resolve_device(args.device)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    timings = run_notebooks(args.profile, out, args.device, args.retrain, args.notebooks, args.executed, args.only)
    if args.only:  # a partial run leaves the other outputs as they are
        print(f"[paper] done in {(time.perf_counter() - start) / 60:.1f} min (only {' '.join(args.only)})")
        return
    if not args.skip_extras:
        write_extras(args.profile, out, args.device)
    total = time.perf_counter() - start
    write_timings(args.profile, timings, total, args.executed)
    print(f"[paper] done in {total / 60:.1f} min: figures and tables in {out}, executed notebooks in "
          f"{args.executed}")


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_command(PROG, lambda: snapshots(args) if args.snapshots else make_paper(args),
                failures=(NotebookFailed, FileNotFoundError, AssetUnavailable))


if __name__ == "__main__":
    main()
