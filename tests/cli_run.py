"""Running a command's main(argv) in-process, for the CLI tests (imported by test modules: tests/ is on sys.path)."""

from __future__ import annotations

from collections.abc import Callable


def run_main(main: Callable[[list[str]], None], argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `main([str(a) for a in argv])`; the exit code is 0 when it returns."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
