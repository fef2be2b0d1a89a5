"""`sa-suggest TARGET FOLDER [-k 4] [--contact-sheet OUT.png]`: which of your photos to use as the reference.

Prints the k photos of FOLDER nearest to TARGET, one per line, as `distance<TAB>path`, nearest first (the
paper's section 4 ranking, the same code as `sa-references`; see sa_lib.app.suggest). A summary and the files
that could not be read go to stderr. The folder's features are cached, so later queries on it are fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..app.suggest import ReferenceSuggester, contact_sheet, file_hash, list_photos
from ..core.errors import UsageError
from ..core.hub import AssetUnavailable
from ..data.image_io import IMAGE_SUFFIXES, ImageInputError, read_image
from ..data.references import DEFAULT_K
from ..profiles import ranking_profiles
from .command import (CommandParser, check_not_overwritten, check_output_file, check_output_folder,
                      positive_int, run_command, summary)

PROG = "sa-suggest"
SHEET_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
EPILOG = """examples:
  sa-suggest old_photo.jpg ~/Pictures/holidays                 # the 4 nearest photos, with distances
  sa-suggest old_photo.jpg ~/Pictures/holidays -k 8 --contact-sheet sheet.png
  sa-colorize old_photo.jpg --reference-from ~/Pictures/holidays -o result.png   # colorize with the top-1
"""


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__), epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="the photo to colorize (gray or colour)")
    p.add_argument("folder", help="a folder of colour photos (its own files only, not subfolders)")
    p.add_argument("-k", type=positive_int, default=DEFAULT_K, help="how many photos to list (default 4)")
    p.add_argument("--contact-sheet", metavar="OUT.png",
                   help="also write the target and the k photos side by side (.png, .jpg, .pdf or .svg)")
    p.add_argument("--profile", choices=ranking_profiles(), default="demo",
                   help="ranking of a profile: demo (effnet_lite0, unit-norm features, offline) or paper "
                        "(vgg19, raw L2)")
    p.add_argument("--encoder", help="override the profile's encoder (effnet_lite0, vgg19, vgg19_bn)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--cache-dir", type=Path,
                   help="where folder features are cached (default: $SUPERATTN_DATA/features)")
    p.add_argument("--no-cache", action="store_true", help="compute every feature, read and write no cache")
    return p


def check_sheet(sheet: Path | None, target: Path, folder: Path) -> None:
    """--contact-sheet: a picture file name in an existing folder, not one of the photos it shows (UsageError
    otherwise: writing it would overwrite the user's photo)."""
    if sheet is None:
        return
    if sheet.suffix.lower() not in SHEET_SUFFIXES:
        raise UsageError(f"--contact-sheet {sheet}: use a {', '.join(SHEET_SUFFIXES)} file name")
    check_output_file(sheet, "--contact-sheet", folder_must_exist=True)
    photos = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES] if folder.is_dir() else []
    check_not_overwritten([("--contact-sheet", sheet)], [target, *photos])


def suggest(args: argparse.Namespace):
    """(target, folder scan, suggestions) of the command line."""
    list_photos(args.folder)  # a wrong folder is told before the encoder is built
    target = read_image(args.target, role="target")
    try:
        suggester = ReferenceSuggester(args.profile, args.encoder, args.device, args.cache_dir,
                                       cache=not args.no_cache)
    except ValueError as err:  # an unknown profile, encoder or device name
        raise UsageError(str(err)) from None
    scan = suggester.scan(args.folder, progress=sys.stderr.isatty())
    return target, scan, suggester.rank(target, scan, args.k, target_hash=file_hash(args.target))


def main(argv: list[str] | None = None) -> None:
    """One line on stderr per problem: exit 2 for usage errors, 1 when the target or the encoder fails."""
    args = parser().parse_args(argv)
    sheet = Path(args.contact_sheet) if args.contact_sheet else None
    run_command(PROG, lambda: (check_sheet(sheet, Path(args.target), Path(args.folder)),
                               check_output_folder(args.cache_dir, "--cache-dir")))
    target, scan, suggestions = run_command(PROG, lambda: suggest(args),
                                            failures=(ImageInputError, AssetUnavailable, OSError, RuntimeError),
                                            on_interrupt="interrupted; the cache keeps what was written before")
    for line in scan.skipped:
        print(f"{PROG}: skipped: {line}", file=sys.stderr)
    if scan.cache_error:
        print(f"{PROG}: warning: {scan.cache_error}; the next query on this folder computes its features again",
              file=sys.stderr)
    for s in suggestions:
        print(f"{s.distance:.4f}\t{s.path}")
    print(f"{PROG}: {len(scan.paths)} photos, {scan.computed} features computed, "
          f"{len(scan.paths) - scan.computed} from the cache, in {scan.seconds:.2f} s", file=sys.stderr)
    if sheet is not None:
        run_command(PROG, lambda: contact_sheet(target, suggestions, sheet), failures=(ImageInputError, OSError))
        print(f"{PROG}: wrote {sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
