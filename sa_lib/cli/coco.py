"""`python -m sa_lib.cli.coco download [--splits val train] [--root DIR]` (or: make data-coco): download, verify
and extract COCO 2017 (sa_lib.data.coco)."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from ..core import hub
from ..data.coco import SPLITS, download_coco
from .command import CommandParser, run_command

PROG = "python -m sa_lib.cli.coco"


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description="COCO 2017 for superattn.")
    commands = p.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download, verify and extract COCO 2017")
    download.add_argument("--splits", nargs="+", choices=SPLITS, default=["val"],
                          help="image sets to fetch (annotations always come along); default: val")
    download.add_argument("--root", type=Path, default=None,
                          help="data root (default: $SUPERATTN_DATA or ~/.cache/superattn); COCO goes to ROOT/coco")
    download.add_argument("--remove-archives", action="store_true", help="delete each zip once extracted")
    download.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    base = run_command(PROG, lambda: download_coco(args.splits, args.root, keep_archives=not args.remove_archives,
                                                   progress=not args.no_progress),
                       failures=(hub.AssetUnavailable, OSError, ValueError, zipfile.BadZipFile),
                       on_interrupt="interrupted: run the same command again to resume")
    for split in dict.fromkeys(args.splits):
        count = sum(1 for _ in (base / f"{split}2017").iterdir())
        print(f"COCO {split}2017: {count} images in {base / f'{split}2017'}, annotations in {base / 'annotations'}")
    return 0


if __name__ == "__main__":
    main()
