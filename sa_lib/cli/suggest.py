"""`sa-suggest TARGET FOLDER [-k 4] [--contact-sheet OUT.png]`: which of your photos to use as the reference.

Prints the k photos of FOLDER nearest to TARGET, one per line, as `distance<TAB>path`, nearest first (the
paper's section 4 ranking, the same code as `sa-references`; see sa_lib.suggest). A summary and the files
that could not be read go to stderr. The folder's features are cached, so later queries on it are fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .devices import DeviceError
from .hub import AssetUnavailable
from .image_io import ImageInputError, read_image
from .references import DEFAULT_K, PROFILE_ENCODERS
from .suggest import ReferenceSuggester, SuggestError, contact_sheet, file_hash, list_photos

SHEET_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
EPILOG = """examples:
  sa-suggest old_photo.jpg ~/Pictures/holidays                 # the 4 nearest photos, with distances
  sa-suggest old_photo.jpg ~/Pictures/holidays -k 8 --contact-sheet sheet.png
  sa-colorize old_photo.jpg --reference-from ~/Pictures/holidays -o result.png   # colorize with the top-1
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sa-suggest", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="the photo to colorize (gray or colour)")
    p.add_argument("folder", help="a folder of colour photos (its own files only, not subfolders)")
    p.add_argument("-k", type=_positive, default=DEFAULT_K, help="how many photos to list (default 4)")
    p.add_argument("--contact-sheet", metavar="OUT.png",
                   help="also write the target and the k photos side by side (.png, .jpg, .pdf or .svg)")
    p.add_argument("--profile", choices=sorted(PROFILE_ENCODERS), default="demo",
                   help="ranking of a profile: demo (effnet_lite0, unit-norm features, offline) or paper "
                        "(vgg19, raw L2)")
    p.add_argument("--encoder", help="override the profile's encoder (effnet_lite0, vgg19, vgg19_bn)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--cache-dir", type=Path,
                   help="where folder features are cached (default: $SUPERATTN_DATA/features)")
    p.add_argument("--no-cache", action="store_true", help="compute every feature, read and write no cache")
    return p


def main(argv: list[str] | None = None) -> None:
    """One line on stderr per problem: exit 2 for usage errors, 1 when the target or the encoder fails."""
    p = parser()
    args = p.parse_args(argv)
    sheet = Path(args.contact_sheet) if args.contact_sheet else None
    if sheet is not None:
        if sheet.suffix.lower() not in SHEET_SUFFIXES:
            p.exit(2, f"sa-suggest: error: --contact-sheet {sheet}: use a {', '.join(SHEET_SUFFIXES)} file name\n")
        if sheet.is_dir() or not sheet.parent.is_dir():
            p.exit(2, f"sa-suggest: error: --contact-sheet {sheet}: "
                      f"{'is a folder' if sheet.is_dir() else 'its folder does not exist'}\n")
    try:
        list_photos(args.folder)  # a wrong folder is told before the encoder is built
        target = read_image(args.target, role="target")
        suggester = ReferenceSuggester(args.profile, args.encoder, args.device, args.cache_dir,
                                       cache=not args.no_cache)
        scan = suggester.scan(args.folder, progress=sys.stderr.isatty())
        suggestions = suggester.rank(target, scan, args.k, target_hash=file_hash(args.target))
    except (SuggestError, DeviceError) as err:
        p.exit(2, f"sa-suggest: error: {err}\n")
    except (ImageInputError, AssetUnavailable, OSError, RuntimeError) as err:
        p.exit(1, f"sa-suggest: error: {' '.join(str(err).split())[:300]}\n")
    except ValueError as err:  # an unknown encoder name
        p.exit(2, f"sa-suggest: error: {' '.join(str(err).split())}\n")
    except KeyboardInterrupt:
        p.exit(130, "sa-suggest: interrupted; the cache keeps what was written before\n")
    for line in scan.skipped:
        print(f"sa-suggest: skipped: {line}", file=sys.stderr)
    for s in suggestions:
        print(f"{s.distance:.4f}\t{s.path}")
    print(f"sa-suggest: {len(scan.paths)} photos, {scan.computed} features computed, "
          f"{len(scan.paths) - scan.computed} from the cache, in {scan.seconds:.2f} s", file=sys.stderr)
    if sheet is not None:
        try:
            contact_sheet(target, suggestions, sheet)
        except (ImageInputError, OSError) as err:
            p.exit(1, f"sa-suggest: error: contact sheet {sheet}: {' '.join(str(err).split())}\n")
        print(f"sa-suggest: wrote {sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
