"""`sa-calibrate-chroma CHECKPOINT`: fit a checkpoint's chroma gain on its profile's training photos and write it.

    sa-calibrate-chroma checkpoints/demo-transfer.safetensors [--share 0.85] [--profile demo] [-o OUT.safetensors]
                        [--blend demo-standard]

Each training photo is colorized from its top-1 ranked reference (another photo), and the gain k that makes the
outputs' mean colourfulness `--share` times their truths' is stored as the checkpoint's ColorizerConfig.chroma_gain
(sa_lib.eval.chroma_calibration): every later use of the checkpoint multiplies its a*b* by k. The weights do not
change; without -o the checkpoint is rewritten in place (atomically). `--dry-run` prints the gain and writes nothing.

`--blend PARTNER` first makes PARTNER (another checkpoint of the same profile: a paper variant that uses the
reference) the checkpoint's blend partner (ColorizerConfig.blend_partner): its weights and config are stored in the
written checkpoint, every later use averages the two networks' a*b*, and the gain is fitted on that mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.devices import resolve_device
from ..data.pairs import PairsError
from ..eval.chroma_calibration import (DEFAULT_SHARE, calibrate, calibration_pairs, check_share, load_for_calibration,
                                       write_calibration)
from ..model.checkpoint import CheckpointError, read_sidecar, resolve
from ..profiles import PROFILES, get_profile
from .command import CommandParser, check_checkpoint_output, run_command, summary

PROG = "sa-calibrate-chroma"


def share(text: str) -> float:
    """An argparse type: a share of the truths' colourfulness (check_share)."""
    try:
        return check_share(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__))
    p.add_argument("checkpoint", help="a shipped name (demo-transfer) or a .safetensors path")
    p.add_argument("--share", type=share, default=DEFAULT_SHARE,
                   help=f"the wanted share of the truths' colourfulness (default {DEFAULT_SHARE})")
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES),
                   help="whose training photos and ranked references, at its evaluation size (default demo; smoke: "
                        "its first 4 at 96 px, in seconds)")
    p.add_argument("-o", "--out", type=Path, help="write here instead of rewriting the checkpoint")
    p.add_argument("--blend", metavar="PARTNER",
                   help="store PARTNER (a shipped name or .safetensors path) as the blend partner and fit the gain on "
                        "the two networks' mean a*b* (docs/transfer.md, run \"blend\")")
    p.add_argument("--device", default="auto")
    p.add_argument("--dry-run", action="store_true", help="print the gain, write nothing")
    return p


def run(args: argparse.Namespace) -> None:
    source = resolve(args.checkpoint)
    if args.out is not None:  # a missing folder is created; the rest is checked before the calibration's minutes
        check_checkpoint_output(args.out, "-o", folder_must_exist=False)
    model = load_for_calibration(source, args.blend, device=resolve_device(args.device))
    try:
        read_sidecar(source)  # a broken sidecar is told now, not after the calibration
    except FileNotFoundError:
        pass
    profile = get_profile(args.profile)
    pairs = calibration_pairs(profile)

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            print(f"{PROG}: {done}/{total} training photos colorized", file=sys.stderr, flush=True)

    result = calibrate(model, pairs, args.share, size=profile.eval_size, progress=progress)
    blended = "" if model.blend_partner is None else f", blended with a {model.blend_partner.config.name} network"
    print(f"{PROG}: {source.name}{blended}: chroma_gain {result.gain:.4f} (was {model.config.chroma_gain:g}): "
          f"{result.share_as_trained:.1%} of the truths' colourfulness as trained, {result.share:.0%} with the gain, "
          f"on {result.pairs} training photos of profile {args.profile}")
    if args.dry_run:
        return
    out = args.out or source
    write_calibration(source, out, model, result, args.profile)
    print(f"{PROG}: wrote {out}")


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_command(PROG, lambda: run(args), failures=(CheckpointError, PairsError, FileNotFoundError))


if __name__ == "__main__":
    main()
