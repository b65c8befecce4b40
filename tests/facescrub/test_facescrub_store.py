"""The content-addressed store: names from the bytes only, files appear whole or not at all."""
import os

import pytest

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
