"""sa_lib.core.files: the one atomic write (fsync, the replaced file's mode kept, nothing left behind on failure),
the repository root and the output folder."""

import os
import stat

import pytest

from sa_lib.core.files import REPO_ROOT, atomic_write, output_dir


def test_atomic_write_replaces_and_keeps_the_mode(tmp_path):
    path = tmp_path / "sub" / "table.md"
    atomic_write(path, lambda tmp: tmp.write_text("first"))  # the folder is created
    assert path.read_text() == "first"
    path.chmod(0o604)
    atomic_write(path, lambda tmp: tmp.write_text("second"))
    assert path.read_text() == "second" and stat.S_IMODE(path.stat().st_mode) == 0o604


def test_atomic_write_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.txt", lambda tmp: tmp.write_text("x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "keep.txt"
    path.write_text("previous")

    def broken(tmp):
        tmp.write_text("half")
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, broken)
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_repository_root_and_output_folder(tmp_path):
    assert (REPO_ROOT / "sa_lib" / "core" / "files.py").is_file()
    assert output_dir(tmp_path / "x").is_dir()
    assert output_dir("build/test-output-dir") == REPO_ROOT / "build" / "test-output-dir"
