"""`sa-train`: train (or resume) a colorizer of a profile (sa_lib.train), optionally export its weights.

    sa-train --profile demo --variant super            # offline, CPU, the shipped demo weights
    sa-train --profile paper --variant super           # COCO + VGG19, the paper's section 3.4 settings
    torchrun --nproc-per-node 4 -m sa_lib.cli.train ...    # several GPUs / nodes (DDP)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..model.checkpoint import CheckpointError
from ..model.paper_readings import PAPER_READINGS
from ..profiles import PROFILES
from ..superpixels.pyramid import SLIC_BACKENDS
from ..train.config import PRECISIONS, RESUME_STATE, ConfigError, holds_a_run, profile_config, resume_config
from ..train.loop import TrainingDiverged, train
from ..train.state import export_run
from .command import (CommandParser, check_checkpoint_output, check_output_folder, interrupted, non_negative_int,
                      positive_float, positive_int, run_command, summary)

PROG = "sa-train"


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__))
    p.add_argument("--profile", default="demo", choices=list(PROFILES))
    p.add_argument("--variant", default="super", help="super | standard | none | transfer (docs/transfer.md)")
    p.add_argument("--paper-reading", action="append", default=[], choices=tuple(PAPER_READINGS),
                   dest="paper_readings", metavar="NAME",
                   help="undo one of this project's departures from the paper, for its ablation row (repeatable; "
                        f"{', '.join(PAPER_READINGS)}; docs/faithfulness.md); the run folder gets -paper-NAME")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.state.pt (the weights, the optimiser and the step) with the run's "
                        "own settings (OUT/config.json); options given beside it change them, each change printed")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out folder that already holds one (its log, state and checkpoint "
                        "are replaced); without it such a folder is refused")
    p.add_argument("--out", help="run folder (default runs/PROFILE-VARIANT)")
    p.add_argument("--steps", type=positive_int, dest="max_steps", help="stop after this many steps")
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--workers", type=non_negative_int, dest="num_workers")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=tuple(PRECISIONS),
                   help="fp32 (default, the paper's), or bf16 / fp16 autocast (fp16: CUDA only); the attention's "
                        "correlation and softmax run in fp32 in every case")
    p.add_argument("--slic", choices=SLIC_BACKENDS, dest="slic_backend",
                   help="SLIC backend of this run, recorded in the checkpoint's config and used by its validation "
                        "and sa-evaluate (default skimage, the authors'; torch: batched on the training device)")
    p.add_argument("--export", help="also write the final weights (fp16) to this .safetensors path")
    p.add_argument("--no-progress", action="store_false", dest="progress", default=None)
    return p


# the option that sets each TrainConfig field (how --resume names a change)
FLAGS = {"max_steps": "--steps", "batch_size": "--batch-size", "image_size": "--image-size", "lr": "--lr",
         "num_workers": "--workers", "seed": "--seed", "precision": "--precision"}


def run(args: argparse.Namespace) -> dict:
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("profile", "variant", "resume", "export", "slic_backend",
                                                "paper_readings", "overwrite", "progress")}
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    check_output_folder(Path(args.out) if args.out else None, "--out")
    if args.export:  # checked before hours of training, not after
        check_checkpoint_output(Path(args.export), "--export")
    config = profile_config(args.profile, args.variant, args.paper_readings, **overrides)
    if args.slic_backend is not None:
        config.model = replace(config.model, slic_backend=args.slic_backend)
    # Under torchrun only rank 0 reports and refuses (torchrun then stops the others): rank 0 may already have
    # written the run's files when another rank looks at the folder.
    first_rank = int(os.environ.get("RANK", "0")) == 0
    if args.resume:
        changes = {**overrides, **({"slic_backend": args.slic_backend} if args.slic_backend else {})}
        config, said = resume_config(config, changes, args.paper_readings)
    else:
        said = []
    if args.progress is not None:  # how it reports, not what it trains: never a change of the run's settings
        config.progress = args.progress
    if not args.resume and first_rank and holds_a_run(config.out) and not args.overwrite:
        raise ConfigError(f"{config.out} already holds a training run (last.state.pt); continue it with --resume, "
                          "start it again with --overwrite, or give another --out")

    def report_changes() -> None:  # once the run's checks have passed
        for field, before, after in said if first_rank else ():
            print(f"{PROG}: --resume: {FLAGS.get(field, field)} {after} instead of the run's {before}",
                  file=sys.stderr)

    metrics = train(config, resume=args.resume, on_start=report_changes)
    if args.export and first_rank:
        export_run(config, metrics, args.export)
    return metrics


def interrupt_hint(args: argparse.Namespace, started: float) -> str:
    """What Ctrl-C prints: continue with --resume when this run (or the run it resumed) has a saved state, else
    that nothing was saved (a run saves its state every checkpoint_every steps)."""
    out = Path(args.out) if args.out else Path(profile_config(args.profile, args.variant, args.paper_readings).out)
    state = out / RESUME_STATE
    if state.is_file() and (args.resume or state.stat().st_mtime >= started):
        return f"interrupted; continue from the last saved state with --resume --out {out}"
    return f"interrupted before this run saved a state: nothing of it to resume in {out}; run it again"


def main(argv: list[str] | None = None) -> None:
    """`sa-train`: one-line errors, exit 2 for a bad configuration, 1 for a failure, 130 interrupted."""
    args = parser().parse_args(argv)
    started = time.time()

    def body() -> dict:
        try:
            return run(args)
        except KeyboardInterrupt:
            interrupted(PROG, interrupt_hint(args, started))

    metrics = run_command(PROG, body, usage=(CheckpointError,), failures=(TrainingDiverged,))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
