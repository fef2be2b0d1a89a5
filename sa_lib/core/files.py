"""Where the project's files live, and the one way they are written: atomically.

Every writer of the package (checkpoints, training state, tables, figures, references, pairs, caches, user
images) goes through `atomic_write`: the content goes to a temporary file in the destination's folder, is
flushed to disk (fsync), gets the permissions of the file it replaces (a new file: 0o666 & ~umask, like any
newly created file) and then replaces the destination with os.replace. Readers see the old file or the whole
new one, never a half-written one, and a failure (or Ctrl-C) leaves no temporary file behind.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout: sa_lib/, checkpoints/, data/, figures/ ...
# The named checkpoints ("demo-super", "paper-super", ...): checkpoints/ of the checkout, or $SUPERATTN_CHECKPOINTS
# (read at import; tests/test_paper_smoke.py points it at a temporary folder so nothing is written into the checkout).
CHECKPOINT_DIR = Path(os.environ.get("SUPERATTN_CHECKPOINTS") or REPO_ROOT / "checkpoints")
FIGURES_DIR = REPO_ROOT / "figures"
BUILD_DIR = REPO_ROOT / "build"


def output_dir(folder: str | Path) -> Path:
    """The folder a notebook or command writes its figures and tables to: relative paths are taken from the
    repository root (not the working directory, which differs between nbval, papermill and JupyterLab);
    created."""
    path = Path(folder)
    path = path if path.is_absolute() else REPO_ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def current_umask() -> int:
    """The process umask: from /proc on Linux, else by setting and restoring it (no portable getter)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: Path) -> int:
    """The permissions `path` should get: those of the file it replaces, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def fsync_folder(folder: Path | str) -> None:
    """Make a rename in `folder` durable; best effort (not possible on every OS / file system)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path | str, write: Callable[[Path], object]) -> None:
    """Call write(tmp) with a temporary path beside `path`, then fsync, chmod and rename it onto `path`.

    The destination's folder is created if missing. Whatever write() or the rename raises (also
    KeyboardInterrupt) propagates, and the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)  # mkstemp makes 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    fsync_folder(path.parent)
