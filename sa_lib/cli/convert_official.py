"""`sa-convert-official`: the authors' released checkpoint -> a self-contained project checkpoint.

    sa-convert-official CHECKPOINT.pt -o OUT.safetensors [--vgg19-bn VGG.pth]
    sa-convert-official --download -o checkpoints/official.safetensors      # what `make official` runs

CHECKPOINT.pt is the authors' file (a dict whose 'state_dict' is their gen_color_stride_vgg16(dim=2)), read
with torch.load(weights_only=True) only. --vgg19-bn takes torchvision's vgg19_bn state_dict; without it the
file comes through the download registry (sa_lib.hub, hash checked, cached). --download fetches CHECKPOINT.pt
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

from .official import ConversionError, convert, download_authors_checkpoint, sha256_of


def _up_to_date(output: Path, source_sha256: str) -> bool:
    """True when `output` is already the conversion of the file with this SHA-256."""
    try:
        with safe_open(str(output), framework="pt") as f:
            config = json.loads((f.metadata() or {}).get("config", "{}"))
    except Exception:  # unreadable or not ours: convert again
        return False
    return config.get("extra", {}).get("source_sha256") == source_sha256


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sa-convert-official", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", help="the authors' checkpoint.pt")
    parser.add_argument("-o", "--output", required=True, help="the project checkpoint to write (.safetensors)")
    parser.add_argument("--vgg19-bn", help="torchvision's vgg19_bn state_dict (default: the download registry)")
    parser.add_argument("--download", action="store_true",
                        help="fetch the authors' checkpoint.pt from Google Drive (gdown) into the download cache")
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (not args.download):
        parser.exit(2, "sa-convert-official: error: give CHECKPOINT.pt or --download (one of them)\n")
    output = Path(args.output)
    if output.suffix != ".safetensors":
        parser.exit(2, f"sa-convert-official: error: output {output} must end in .safetensors\n")
    if not output.parent.is_dir():
        parser.exit(2, f"sa-convert-official: error: output folder does not exist: {output.parent}\n")
    if args.vgg19_bn is not None and not Path(args.vgg19_bn).is_file():
        parser.exit(2, f"sa-convert-official: error: --vgg19-bn file not found: {args.vgg19_bn}\n")
    try:
        if args.download:
            checkpoint = download_authors_checkpoint()
            digest = sha256_of(checkpoint)
            print(f"[official] authors' checkpoint: {checkpoint} (SHA-256 {digest})")
            if _up_to_date(output, digest):
                print(f"[official] {output} is already its conversion")
                return
        else:
            checkpoint = Path(args.checkpoint)
            if not checkpoint.is_file():
                parser.exit(2, f"sa-convert-official: error: checkpoint not found: {checkpoint}\n")
        model = convert(checkpoint, output, args.vgg19_bn)
    except ConversionError as err:
        parser.exit(1, f"sa-convert-official: error: {' '.join(str(err).split())}\n")
    except (OSError, RuntimeError, ValueError) as err:
        parser.exit(1, f"sa-convert-official: error: {type(err).__name__}: {' '.join(str(err).split())[:300]}\n")
    extra = model.config.extra
    print(f"[official] wrote {output} (the authors' network, preset ColorizerConfig.official(); source SHA-256 "
          f"{extra['source_sha256'][:16]}..., vgg19_bn SHA-256 {extra['vgg19_bn_sha256'][:16]}...)")
    print(f"[official] run it: sa-colorize TARGET REFERENCE -o OUT.png --checkpoint {output}", file=sys.stdout)


if __name__ == "__main__":
    main()
