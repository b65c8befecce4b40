"""The content-addressed store: names from the bytes only, files appear whole or not at all, a file whose
bytes no longer match its name is quarantined and never used, a full disk leaves nothing half-written."""
import errno
import os
from contextlib import contextmanager

import pytest

from facescrub import store as store_module
from facescrub.store import Store, sha256_of, sniff_extension

JPEG = b"\xff\xd8\xff\xe0" + b"jpeg body"
PNG = b"\x89PNG\r\n\x1a\n" + b"png body"


@pytest.mark.parametrize("data, ext", [(JPEG, "jpg"), (PNG, "png"), (b"GIF89a...", "gif"), (b"<html>", "bin"),
                                       (b"", "bin")])
def test_extension_is_sniffed_from_the_bytes(data, ext):
    assert sniff_extension(data) == ext


def test_add_names_the_file_by_its_hash_inside_the_folder(tmp_path):
    store = Store(tmp_path / "store")
    path = store.add(JPEG)
    assert path == tmp_path / "store" / f"{sha256_of(JPEG)}.jpg" and path.read_bytes() == JPEG
    assert store.add(JPEG) == path and store.find(sha256_of(JPEG)) == path and store.find("0" * 64) is None
    assert store.hashes() == {sha256_of(JPEG)} and sorted(tmp_path.rglob("*")) == [tmp_path / "store", path]


def test_find_refuses_anything_but_a_hash(tmp_path):
    with pytest.raises(ValueError, match="not a SHA-256"):
        Store(tmp_path).find("../../etc/passwd")


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def crash(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.add(PNG)
    assert list(tmp_path.iterdir()) == []


def test_remove_temporary_clears_what_a_killed_run_left(tmp_path):
    store = Store(tmp_path)
    kept = store.add(PNG)
    (tmp_path / ".abc.tmp").write_bytes(b"half")
    assert store.remove_temporary() == 1 and list(tmp_path.iterdir()) == [kept] and store.temporary_files() == []


def test_a_file_whose_bytes_changed_is_quarantined_not_used(tmp_path):
    store = Store(tmp_path)
    good, bad = store.add(JPEG), store.add(PNG)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"flipped bits")
    assert store.verified(sha256_of(JPEG)) == (good, None) and store.verified("0" * 64) == (None, None)
    path, why = store.verified(sha256_of(PNG))
    moved = tmp_path / "quarantine" / bad.name
    assert path is None and why == (f"{bad}: its bytes do not match the SHA-256 in its name; moved to {moved}; "
                                    "`python -m facescrub download` fetches it again")
    assert moved.read_bytes() == b"\x89PNG\r\n\x1a\n" + b"flipped bits" and not bad.exists()
    assert store.hashes() == {sha256_of(JPEG)} and store.find(sha256_of(PNG)) is None


def test_quarantine_keeps_every_copy_and_verify_all_reports_each(tmp_path):
    store = Store(tmp_path)
    for _ in range(2):
        store.add(PNG).write_bytes(b"corrupted")
        assert len(store.verify_all()) == 1
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [f"{sha256_of(PNG)}.png",
                                                                            f"{sha256_of(PNG)}.png.1"]
    assert store.verify_all() == []


def test_a_read_only_store_leaves_a_corrupted_file_in_place_and_unused(tmp_path):
    path = Store(tmp_path).add(PNG)
    path.write_bytes(b"corrupted")
    assert Store(tmp_path, read_only=True).verified(sha256_of(PNG)) == (None, f"{path}: its bytes do not match "
                                                                               "the SHA-256 in its name; not used")
    assert path.read_bytes() == b"corrupted" and not (tmp_path / "quarantine").exists()


def test_a_corrupted_file_that_cannot_be_moved_is_still_not_used(tmp_path, monkeypatch):
    """As in a read-only store folder (root ignores permissions, so the move is made to fail)."""
    path = Store(tmp_path).add(PNG)
    path.write_bytes(b"corrupted")

    def read_only(source, destination):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(source))
    monkeypatch.setattr(os, "replace", read_only)
    located, why = Store(tmp_path).verified(sha256_of(PNG))
    assert located is None and why.endswith("not used, and it could not be moved aside (Read-only file system)")
    assert path.read_bytes() == b"corrupted"


def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    store = Store(tmp_path)
    kept = store.add(JPEG)

    class FullDisk:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            self.file.write(data[:3])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = store_module.atomic_write

    @contextmanager
    def atomic_write_on_full_disk(path, mode="wb"):
        with real(path, mode) as file:
            yield FullDisk(file)
    monkeypatch.setattr(store_module, "atomic_write", atomic_write_on_full_disk)
    with pytest.raises(OSError, match=f"No space left on device: '{tmp_path / sha256_of(PNG)}.png'"):
        store.add(PNG)
    assert list(tmp_path.iterdir()) == [kept] and kept.read_bytes() == JPEG
