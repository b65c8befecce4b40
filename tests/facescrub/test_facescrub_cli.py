"""`python -m facescrub` given hostile or careless input: one line naming the problem and the fix,
a non-zero exit, no traceback, and nothing in the store or manifest lost or half-written."""
import re
import socket

import pytest

import facescrub.__main__ as cli
from conftest import require_data
from experiments.common.cli import run_main
from facescrub.download import make_session, read_manifest
from hostile_servers import TableServer

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
        run_main(cli.main, argv)
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
