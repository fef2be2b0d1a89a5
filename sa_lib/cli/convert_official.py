"""`sa-convert-official`: the authors' released checkpoint -> a self-contained project checkpoint.

    sa-convert-official CHECKPOINT.pt -o OUT.safetensors [--vgg19-bn VGG.pth]
    sa-convert-official --download -o checkpoints/official.safetensors      # what `make official` runs

CHECKPOINT.pt is the authors' file (a dict whose 'state_dict' is their gen_color_stride_vgg16(dim=2)), read
with torch.load(weights_only=True) only. --vgg19-bn takes torchvision's vgg19_bn state_dict; without it the
file comes through the download registry (sa_lib.core.hub, hash checked, cached). --download fetches CHECKPOINT.pt
from the authors' Google Drive link with gdown into the download cache and prints its SHA-256. The result
runs with `sa-colorize T R --checkpoint OUT.safetensors` (or `--checkpoint official` for the default path).
One line on stderr per problem: exit 2 for usage errors, 1 when an input cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safetensors import safe_open

from ..core.errors import UsageError
from ..model.official import ConversionError, convert, download_authors_checkpoint, sha256_of
from .command import CommandParser, check_checkpoint_output, run_command, summary

PROG = "sa-convert-official"


def _up_to_date(output: Path, source_sha256: str) -> bool:
    """True when `output` is already the conversion of the file with this SHA-256."""
    try:
        with safe_open(str(output), framework="pt") as f:
            config = json.loads((f.metadata() or {}).get("config", "{}"))
    except Exception:  # unreadable or not ours: convert again
        return False
    return config.get("extra", {}).get("source_sha256") == source_sha256


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__))
    p.add_argument("checkpoint", nargs="?", help="the authors' checkpoint.pt")
    p.add_argument("-o", "--output", required=True, help="the project checkpoint to write (.safetensors)")
    p.add_argument("--vgg19-bn", help="torchvision's vgg19_bn state_dict (default: the download registry)")
    p.add_argument("--download", action="store_true",
                   help="fetch the authors' checkpoint.pt from Google Drive (gdown) into the download cache")
    return p


def check(args: argparse.Namespace) -> None:
    """The command line's files, before anything is read (UsageError)."""
    if (args.checkpoint is None) == (not args.download):
        raise UsageError("give CHECKPOINT.pt or --download (one of them)")
    check_checkpoint_output(Path(args.output), "output")
    if args.vgg19_bn is not None and not Path(args.vgg19_bn).is_file():
        raise UsageError(f"--vgg19-bn file not found: {args.vgg19_bn}")
    if not args.download and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint not found: {args.checkpoint}")


def run(args: argparse.Namespace):
    """Convert (downloading first with --download); None when the output is already the download's conversion."""
    check(args)
    output = Path(args.output)
    if args.download:
        checkpoint = download_authors_checkpoint()
        digest = sha256_of(checkpoint)
        print(f"[official] authors' checkpoint: {checkpoint} (SHA-256 {digest})")
        if _up_to_date(output, digest):
            print(f"[official] {output} is already its conversion")
            return None
    else:
        checkpoint = Path(args.checkpoint)
    return convert(checkpoint, output, args.vgg19_bn)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    model = run_command(PROG, lambda: run(args), failures=(ConversionError,))
    if model is None:
        return
    extra = model.config.extra
    print(f"[official] wrote {args.output} (the authors' network, preset ColorizerConfig.official(); source SHA-256 "
          f"{extra['source_sha256'][:16]}..., vgg19_bn SHA-256 {extra['vgg19_bn_sha256'][:16]}...)")
    print(f"[official] run it: sa-colorize TARGET REFERENCE -o OUT.png --checkpoint {args.output}", file=sys.stdout)


if __name__ == "__main__":
    main()
