"""atomic_write and write_atomically: all of the new file or none of it, and no leftovers; locked: one holder."""
import fcntl
import os
import stat

import numpy as np
import pytest

from coursedata.files import atomic_write, locked, write_atomically


def test_the_file_appears_whole_in_a_new_folder(tmp_path):
    path = tmp_path / "new" / "weights.npz"
    with atomic_write(path) as file:
        np.savez(file, w=np.arange(3))
    with np.load(path) as archive:
        np.testing.assert_array_equal(archive["w"], np.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["weights.npz"]


def test_the_file_gets_the_permissions_open_would_give(tmp_path):
    (tmp_path / "plain").write_bytes(b"x")
    with atomic_write(tmp_path / "atomic") as file:
        file.write(b"x")
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_the_permissions_follow_the_umask_of_the_moment(tmp_path):
    previous = os.umask(0o077)
    try:
        with atomic_write(tmp_path / "private") as file:
            file.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_a_failing_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path, "w") as file:
            file.write("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]


def test_text_mode_keeps_newlines_as_written(tmp_path):
    path = tmp_path / "rows.csv"
    with atomic_write(path, "w") as file:
        file.write("a,b\r\n1,2\r\n")
    assert path.read_bytes() == b"a,b\r\n1,2\r\n"
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(path, "a"):
            pass


def test_write_atomically_writes_utf8_text_whole(tmp_path):
    path = tmp_path / "new" / "summary.md"
    write_atomically(path, "σ = 0.5\r\n")
    assert path.read_bytes() == "σ = 0.5\r\n".encode()
    assert [p.name for p in path.parent.iterdir()] == ["summary.md"]


def lock_is_free(path) -> bool:
    """Whether an exclusive lock on path can be taken now, from another open file (flock locks of two open files
    exclude each other, in one process or in two)."""
    with open(path, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(file, fcntl.LOCK_UN)
        return True


def test_locked_holds_the_lock_for_the_block_and_releases_it(tmp_path):
    path = tmp_path / "new folder" / "cache.lock"
    with locked(path):
        assert not lock_is_free(path)
    assert lock_is_free(path)
    with pytest.raises(RuntimeError), locked(path):
        raise RuntimeError("the block failed")
    assert lock_is_free(path)
