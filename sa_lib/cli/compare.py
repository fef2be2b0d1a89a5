"""`python -m sa_lib.cli.compare A.csv B.csv`: the mean per-pair difference A - B of two methods scored by
sa-evaluate on the same pairs, with its paired bootstrap interval (sa_lib.eval.paired_difference)."""

from __future__ import annotations

from pathlib import Path

from ..eval.paired_difference import paired_differences
from .command import CommandParser, positive_int, run_command, summary

PROG = "python -m sa_lib.cli.compare"


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser(prog=PROG, description=summary(__doc__))
    parser.add_argument("a", type=Path, help="per-pair CSV of method A (sa-evaluate's per_pair/NAME.csv)")
    parser.add_argument("b", type=Path, help="per-pair CSV of method B, on the same pairs")
    parser.add_argument("--draws", type=positive_int, default=5000, help="bootstrap draws (default 5000)")
    parser.add_argument("--level", type=float, default=0.95, help="the interval's level (default 0.95)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = run_command(PROG, lambda: paired_differences(args.a, args.b, draws=args.draws, level=args.level,
                                                           seed=args.seed))
    print(f"{args.a.stem} - {args.b.stem}, {results[0].pairs if results else 0} pairs, "
          f"{args.level:.0%} paired bootstrap interval ({args.draws} draws)")
    for r in results:
        print(f"{r.metric:14s} {r.mean:+.3f}  [{r.low:+.3f}, {r.high:+.3f}]")


if __name__ == "__main__":
    main()
