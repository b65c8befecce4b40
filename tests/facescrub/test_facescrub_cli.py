"""`python -m facescrub` given hostile or careless input: one line naming the problem and the fix,
a non-zero exit, no traceback, and nothing in the store or manifest lost or half-written."""
import errno
import os
import re
import socket

import pytest

import facescrub.__main__ as cli
from conftest import require_data
from coursedata.cli import run_main
from facescrub import dataset as dataset_module
from facescrub import store as store_module
from facescrub.download import make_session, read_manifest
from facescrub.store import Store, sha256_of
from hostile_servers import TableServer
from tiny_tmpfs import tmpfs

PERI = ["--actors", "Peri Gilpin"]
MANIFEST = ("actor,image_id,face_id,url,sha256,status,source,bytes,seconds,attempts\r\n"
            "Peri Gilpin,1,2,http://example.com/a.jpg," + "ab" * 32 + ",http_404,network,0,0.1,1\r\n")


@pytest.fixture
def store(tmp_path):
    """A store with one file and a manifest from an earlier run, and a snapshot of their bytes."""
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "manifest.csv").write_text(MANIFEST, newline="")
    (folder / f"{'cd' * 32}.jpg").write_bytes(b"\xff\xd8\xff an earlier download")
    return folder


def snapshot(folder):
    """{name: bytes} of every file in folder."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def one_line_error(capsys, argv):
    """Run the CLI as `python -m facescrub argv` does; return the one line it ends with (asserting exit 1)."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(cli.main, [str(arg) for arg in argv])
    message = str(exit_info.value.code)
    assert exit_info.value.code not in (0, None) and "\n" not in message and "Traceback" not in capsys.readouterr().err
    return message


def closed_port():
    """A loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("proxy, message", [
    ("127.0.0.1:8080", "is not a proxy URL; expected http://host:port"),
    ("http://", "is not a proxy URL"), ("socks5://127.0.0.1:1080", "is not a proxy URL"),
    ("http://127.0.0.1:99999", "is not a URL"), ("http://127.0.0.1:8080/some/path", "is not a proxy URL"),
    ("http://127.0.0.1:{closed}", "does not accept connections"),
    ("http://10.0.0.1:3128", "a private address .*allow-private-addresses")])
def test_a_bad_proxy_is_a_run_error_before_any_request(store, capsys, proxy, message):
    require_data("facescrub/subset_actors.txt")
    before = snapshot(store)
    allow = [] if "10.0.0.1" in proxy else ["--allow-private-addresses"]
    line = one_line_error(capsys, ["download", *PERI, "--store", str(store), "--skip-failed",
                                   "--proxy", proxy.format(closed=closed_port()), *allow])
    assert re.search(message, line) and snapshot(store) == before


def test_a_proxy_that_dies_mid_run_ends_it_without_touching_the_manifest(store, capsys, monkeypatch):
    require_data("facescrub/subset_actors.txt")
    before = snapshot(store)
    with TableServer() as proxy:
        def session_then_stop(url, settings):
            session = make_session(url, settings)
            proxy.shutdown()
            proxy.server_close()
            return session
        monkeypatch.setattr(cli, "make_session", session_then_stop)
        line = one_line_error(capsys, ["download", *PERI, "--store", str(store), "--proxy", proxy.url,
                                       "--allow-private-addresses", "--retries", "0", "--workers", "2"])
    assert line.startswith("error: cannot connect to the proxy 127.0.0.1") and "run again" in line
    assert snapshot(store) == before and read_manifest(store / "manifest.csv")[0].status == "http_404"


@pytest.mark.parametrize("argv, flag", [
    (["download", "--retries", "-1"], "--retries"), (["download", "--workers", "0"], "--workers"),
    (["download", "--timeout", "-1"], "--timeout"), (["download", "--timeout", "nan"], "--timeout"),
    (["download", "--deadline", "0"], "--deadline"), (["download", "--connect-timeout", "x"], "--connect-timeout"),
    (["prepare", "--size", "0"], "--size"), (["prepare", "--size", "5000"], "--size"),
    (["download", "--allow-private-addresses", "10.0.0.0/33"], "--allow-private-addresses")])
def test_numeric_flags_out_of_range_are_usage_errors(capsys, argv, flag):
    with pytest.raises(SystemExit) as exit_info:
        run_main(cli.main, argv)
    assert exit_info.value.code == 2 and f"argument {flag}" in capsys.readouterr().err


def test_allow_private_addresses_takes_networks_or_nothing():
    assert cli.parse_args(["download", "--allow-private-addresses"]).allow_private_addresses == []
    assert [str(n) for n in cli.parse_args(["download", "--allow-private-addresses", "127.0.0.2",
                                            "192.168.1.0/24"]).allow_private_addresses] == ["127.0.0.2/32",
                                                                                           "192.168.1.0/24"]


def served_list(folder, server, count, size):
    """A list file of `count` lines for Peri Gilpin; the server answers each URL with its own body of `size` bytes."""
    lines = []
    for i in range(count):
        body = b"\xff\xd8\xff" + i.to_bytes(4, "big") * (size // 4)
        server.table[f"/{i}.jpg"] = ("body", body)
        lines.append(f"Peri Gilpin\t{i}\t{i}\t{server.url}/{i}.jpg\t0,0,8,8\t{sha256_of(body)}\n")
    (folder / "list.txt").write_text("".join(lines))
    return folder / "list.txt"


def download_argv(lists, store, *more):
    return ["download", *PERI, "--lists", str(lists), "--store", str(store), "--allow-private-addresses",
            "--workers", "1", *more]


def assert_whole(store, before):
    """Nothing lost (every earlier file as it was), nothing half-written (no temporary file, every image verifies)."""
    now = snapshot(store)
    assert all(now[name] == data for name, data in before.items()) and not Store(store).temporary_files()
    assert all(sha256_of(data) == name.split(".")[0] for name, data in now.items() if name not in before)


def test_a_full_disk_during_download_is_one_line_and_nothing_is_half_written(tmp_path, store, capsys):
    with TableServer() as server, tmpfs(tmp_path / "small") as _:
        lists = served_list(tmp_path, server, count=8, size=20_000)
        small = tmp_path / "small" / "store"
        small.mkdir()
        (small / "manifest.csv").write_text(MANIFEST, newline="")
        before = snapshot(small)
        line = one_line_error(capsys, download_argv(lists, small))
        assert line.startswith(f"error: no space left on the device writing {small}/") and "half-written" in line
        assert_whole(small, before)
        assert 1 <= len(Store(small).hashes()) < 8


def test_a_full_disk_monkeypatched_gives_the_same_line(tmp_path, store, capsys, monkeypatch):
    """The same path where no tmpfs can be mounted: the first write of an image fails with ENOSPC."""
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(store_module, "atomic_write", full)
    before = snapshot(store)
    with TableServer() as server:
        line = one_line_error(capsys, download_argv(served_list(tmp_path, server, 2, 100), store))
    assert line.startswith(f"error: no space left on the device writing {store}/")
    assert_whole(store, before)


def test_a_read_only_store_is_one_line_before_any_request(tmp_path, capsys):
    with TableServer() as server, tmpfs(tmp_path / "ro") as make_read_only:
        lists = served_list(tmp_path, server, 2, 100)
        (tmp_path / "ro" / "manifest.csv").write_text(MANIFEST, newline="")
        make_read_only()
        line = one_line_error(capsys, download_argv(lists, tmp_path / "ro"))
        assert line == (f"error: cannot write {tmp_path / 'ro'} (Read-only file system): choose a writable folder "
                        "(--out, --store or TINYNET_CACHE) (--debug shows the traceback)")
        assert server.connections == 0 and snapshot(tmp_path / "ro") == {"manifest.csv": MANIFEST.encode()}


def test_a_read_only_store_monkeypatched_is_one_line_before_any_request(tmp_path, store, capsys, monkeypatch):
    """Root ignores file permissions, so where no read-only tmpfs can be mounted the probe write is made to fail."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "probe")
    monkeypatch.setattr(store_module.tempfile, "TemporaryFile", read_only)
    before = snapshot(store)
    with TableServer() as server:
        line = one_line_error(capsys, download_argv(served_list(tmp_path, server, 2, 100), store))
        assert line.startswith(f"error: cannot write {store} (Read-only file system)") and server.connections == 0
    assert snapshot(store) == before


@pytest.mark.parametrize("command", ["download", "prepare", "stats"])
def test_a_missing_data_folder_names_the_list_file_and_the_fix(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setenv("TINYNET_DATA", str(tmp_path / "no-data"))
    line = one_line_error(capsys, [command, "--store", str(tmp_path / "store")])
    assert line.startswith(f"error: missing {tmp_path / 'no-data' / 'facescrub' / 'subset_actors.txt'}: the course "
                           f"data folder is {tmp_path / 'no-data'} (it does not exist); set TINYNET_DATA")
    assert not (tmp_path / "store").exists()


def test_prepare_with_nothing_downloaded_says_how_to_get_the_originals(tmp_path, capsys, monkeypatch):
    require_data("facescrub/subset_actors.txt")
    monkeypatch.setenv("TINYNET_CACHE", str(tmp_path / "cache"))
    line = one_line_error(capsys, ["prepare", "--store", str(tmp_path / "store")])
    assert "no FaceScrub originals found: run `python -m facescrub download`" in line


def test_prepare_refuses_a_size_that_does_not_fit_in_memory_before_cropping(tmp_path, capsys, monkeypatch):
    require_data("facescrub/images")
    monkeypatch.setenv("TINYNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dataset_module, "available_memory", lambda: 2**30)
    monkeypatch.setattr(dataset_module, "crop_all", lambda *args: pytest.fail("cropping started"))
    line = one_line_error(capsys, ["prepare", "--store", str(tmp_path / "store"), "--mirror",
                                   str(require_data("facescrub/images")), "--size", "512", "--color"])
    assert re.match(r"error: 669 crops of 512x512-rgb need about 2\.2 GB of memory and 1\.0 GB is available: "
                    r"choose a smaller --size", line)
