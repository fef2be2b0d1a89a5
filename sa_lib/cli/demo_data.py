"""`python -m sa_lib.cli.demo_data [--write]`: print the demo photos' train/val split built from
data/demo/ATTRIBUTION.tsv, or write it to data/demo/split.json (sa_lib.data.demo_data)."""

from __future__ import annotations

import json

from ..core.files import atomic_write
from ..data import demo_data
from .command import CommandParser, run_command, summary

PROG = "python -m sa_lib.cli.demo_data"


def split(write: bool) -> None:
    result = demo_data.make_split(demo_data.DEMO_DIR / "ATTRIBUTION.tsv")
    text = json.dumps(result, indent=2) + "\n"
    if write:
        path = demo_data.DEMO_DIR / "split.json"
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"wrote {path}: {len(result['train'])} train, {len(result['val'])} val")
    else:
        print(text, end="")


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser(prog=PROG, description=summary(__doc__))
    parser.add_argument("--write", action="store_true", help=f"write {demo_data.DEMO_DIR / 'split.json'}")
    args = parser.parse_args(argv)
    run_command(PROG, lambda: split(args.write))


if __name__ == "__main__":
    main()
