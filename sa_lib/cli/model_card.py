"""`python -m sa_lib.cli.model_card` (make model-card): re-measure the shipped demo checkpoints and rewrite
checkpoints/MODEL_CARD.md (sa_lib.figures.model_card)."""

from __future__ import annotations

from pathlib import Path

from ..core.files import CHECKPOINT_DIR
from ..figures.model_card import write_model_card
from ..model.checkpoint import CheckpointError
from .command import CommandParser, run_command, summary

PROG = "python -m sa_lib.cli.model_card"


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser(prog=PROG, description=summary(__doc__))
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR / "MODEL_CARD.md")
    args = parser.parse_args(argv)
    out = run_command(PROG, lambda: write_model_card(args.out), failures=(CheckpointError, FileNotFoundError))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
