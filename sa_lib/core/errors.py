"""The one usage error of the package: a mistake in how a command or function was called.

Library code raises it (an unknown mode, profile or backend; a file the caller named that is not there);
the command-line wrapper (sa_lib.cli.command) prints it as one line and exits with status 2.
"""


class UsageError(ValueError):
    """A mistake in how the command was called (exit code 2)."""
