"""The one wrapper around every command's main(): one-line errors and the same exit codes everywhere.

    prog: error: message          (on stderr, one line)

Exit status 2 for a usage error (UsageError, DeviceError, the command's own usage errors, and argparse's),
1 for a failure (the command's known failures print their message; anything else of OSError, RuntimeError,
ValueError or KeyError prints its type too, cut to 300 characters), 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn, TypeVar

from ..core.devices import DeviceError
from ..core.errors import UsageError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
UNEXPECTED = (OSError, RuntimeError, ValueError, KeyError)

T = TypeVar("T")


class CommandParser(argparse.ArgumentParser):
    """argparse's parser with one-line errors: `prog: error: message (see prog --help)` and exit 2, without the
    usage block that argparse prints first (`--help` still shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def summary(doc: str | None) -> str:
    """A command module's docstring's first paragraph as one line: its --help description."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (argparse reports anything else as a usage error)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0 (e.g. a number of worker processes)."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0 (a learning rate, a memory budget)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def check_output_file(path: Path, flag: str, folder_must_exist: bool = False) -> Path:
    """An output file's path on a command line: refused (UsageError) if it is a folder, lies under a file, or
    (`folder_must_exist`) lies in a folder that does not exist."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: {path.parent} is a file, not a folder")
    if folder_must_exist and not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: its folder does not exist ({path.parent})")
    return path


def check_checkpoint_output(path: Path, flag: str, folder_must_exist: bool = True) -> Path:
    """A checkpoint to write: a .safetensors file name (its sidecar is the same name with .json), and
    check_output_file's rules; checked before the command's work, not after it."""
    if path.suffix != ".safetensors":
        raise UsageError(f"{flag} {path} must end in .safetensors")
    return check_output_file(path, flag, folder_must_exist)


def check_output_folder(path: Path | None, flag: str) -> None:
    """An output folder on a command line (created later if missing): refused (UsageError) if it is a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file; give a folder")


def check_not_overwritten(outputs: Iterable[tuple[str, Path]], files: Iterable[Path], what: str = "the input") -> None:
    """Refuse (UsageError) an output, given as (flag, path), that is one of `files` (the command's inputs, or its
    other output): writing it would overwrite that file. Paths are compared after resolving links and `..`."""
    by_real_path = {os.path.realpath(p): p for p in files}
    for flag, output in outputs:
        same = by_real_path.get(os.path.realpath(output))
        if same is not None:
            raise UsageError(f"{flag} {output} is {what} {same}: it would be overwritten; write elsewhere")


def one_line(text: object) -> str:
    """Collapse whitespace so a message (e.g. from a library or a decoder) stays on one line."""
    return " ".join(str(text).split())


def report(prog: str, message: object) -> None:
    """Print `prog: error: message` on stderr, one line, without exiting (a command that goes on)."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)


def fail(prog: str, message: object, code: int = EXIT_FAILURE) -> NoReturn:
    """Print `prog: error: message` on stderr and exit with `code`."""
    report(prog, message)
    sys.exit(code)


def interrupted(prog: str, message: str = "interrupted") -> NoReturn:
    """Print `prog: message` on stderr and exit 130."""
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


def run_command(prog: str, body: Callable[[], T], *, usage: tuple[type[BaseException], ...] = (),
                failures: tuple[type[BaseException], ...] = (),
                on_interrupt: str = "interrupted") -> T:
    """body()'s result; its errors become one line on stderr and the exit status of the module docstring.

    `usage`: more exception types that are usage errors (exit 2). `failures`: exception types whose message is
    the whole story (exit 1, printed as is). `on_interrupt`: what Ctrl-C prints after `prog: `.
    """
    try:
        return body()
    except (UsageError, DeviceError, *usage) as err:
        fail(prog, err, EXIT_USAGE)
    except failures as err:
        fail(prog, err, EXIT_FAILURE)
    except UNEXPECTED as err:
        fail(prog, f"{type(err).__name__}: {one_line(err)[:300]}", EXIT_FAILURE)
    except KeyboardInterrupt:
        interrupted(prog, on_interrupt)
