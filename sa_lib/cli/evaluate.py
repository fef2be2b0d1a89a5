"""`sa-evaluate`: section 5's metrics over an evaluation pair file, Tables 1 and 2 (sa_lib.eval.evaluate).

    sa-evaluate --profile demo                 # shipped demo checkpoints, committed demo pairs (CPU, minutes)
    sa-evaluate --profile smoke                # 4 pairs at 96 px (tests, notebooks)
    sa-evaluate --profile paper                # COCO val pairs + checkpoints/paper-{none,standard,super}
    sa-evaluate --profile demo --method deep_exemplar=outputs/de/ --method mine=outputs/mine/
    sa-evaluate --profile paper --checkpoint official=checkpoints/official.safetensors   # another model, too
    sa-evaluate --profile paper --slic torch --workers 8   # every model with the torch SLIC; 8 decoding processes
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from ..core.errors import UsageError
from ..core.hub import AssetUnavailable
from ..data.pairs import PairsError
from ..eval.evaluate import RESERVED_NAMES, EvaluationError, run
from ..model.checkpoint import CheckpointError
from ..profiles import PROFILES
from ..superpixels.pyramid import SLIC_BACKENDS
from .command import CommandParser, check_output_folder, non_negative_int, run_command, summary

PROG = "sa-evaluate"
INTERRUPTED = ("interrupted; tables are written only once both are computed, each file atomically, so any table "
               "file is complete (from this run or an earlier one)")


def named_path(text: str, option: str = "--method", what: str = "FOLDER") -> tuple[str, Path]:
    """NAME=PATH of --method and --checkpoint; UsageError unless NAME is letters, digits, _ . -."""
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UsageError(f"{option} {text!r}: give NAME={what} (NAME of letters, digits, _ . -)")
    return name, Path(folder)


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__))
    p.add_argument("--profile", default="demo", choices=tuple(PROFILES))
    p.add_argument("--out", type=Path, default=None,
                   help="folder of the tables (default: figures/, or figures/<pairs stem>/ with --pairs)")
    p.add_argument("--pairs", type=Path, default=None, help="evaluation pairs CSV (default: the profile's)")
    p.add_argument("--method", action="append", default=[], metavar="NAME=FOLDER",
                   help="another method's outputs, one per pair named <target stem>.png (repeatable, "
                        "each NAME once); NAME xcnet, deep_exemplar or just_attention fills that row of "
                        f"Table 2; {', '.join(RESERVED_NAMES)} are reserved")
    p.add_argument("--per-pair", type=Path, default=None, metavar="DIR",
                   help="folder of the per-pair CSVs (default: build/eval/<profile>, or <out>/per_pair "
                        "with --pairs)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=FILE",
                   help="another colorizer checkpoint (.safetensors, e.g. the authors' model converted by "
                        "sa-convert-official) scored in both tables (repeatable); with it the profile's own "
                        "checkpoints may be missing")
    p.add_argument("--slic", choices=("auto", *SLIC_BACKENDS), default=None,
                   help="SLIC backend of every model (default: each model's own, the one it was trained with)")
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="processes that decode the pairs (default: the profile's; 0: in this process)")
    return p


def evaluate(args: argparse.Namespace) -> list[Path]:
    methods = [named_path(m) for m in args.method]
    models = [named_path(c, "--checkpoint", "FILE") for c in args.checkpoint]
    names = [name for name, _ in methods + models]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise UsageError(f"{repeated!r} is given more than once (--method, --checkpoint); give each NAME once")
    check_output_folder(args.out, "--out")
    check_output_folder(args.per_pair, "--per-pair")
    return run(args.profile, args.out, args.pairs, dict(methods), args.device, per_pair_dir=args.per_pair,
               checkpoints=dict(models), slic=args.slic, workers=args.workers)


def main(argv: list[str] | None = None) -> None:
    """`sa-evaluate`: one line on stderr per problem; exit 2 for usage errors, 1 for failures."""
    args = parser().parse_args(argv)
    started = time.perf_counter()
    written = run_command(PROG, lambda: evaluate(args), on_interrupt=INTERRUPTED,
                          failures=(EvaluationError, PairsError, CheckpointError, AssetUnavailable, FileNotFoundError))
    print(f"[evaluate] wrote {', '.join(str(p) for p in written)} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
