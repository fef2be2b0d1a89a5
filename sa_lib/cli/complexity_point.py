"""`python -m sa_lib.cli.complexity_point PART METHOD SIZE`: measure one point of the complexity benchmark here
and print it as one JSON line (the child process of sa_lib.eval.complexity.run_child)."""

from __future__ import annotations

import json

from ..eval.complexity import METHODS, PARTS, RESULT_TAG
from ..eval.complexity_point import measure_one
from .command import CommandParser, run_command

PROG = "python -m sa_lib.cli.complexity_point"


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser(prog=PROG, description="Measure one point of the complexity benchmark (the child).")
    parser.add_argument("part", choices=PARTS)
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("size", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    if args.size < 8 or args.repeats < 1:
        parser.error("SIZE must be at least 8 and --repeats at least 1")
    result = run_command(PROG, lambda: measure_one(args.part, args.method, args.size, args.repeats, args.device))
    print(RESULT_TAG + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
