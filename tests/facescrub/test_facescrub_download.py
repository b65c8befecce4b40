"""The downloader against a loopback replay of what the FaceScrub URLs really answered.

The replay proxy (facescrub_replay.py) serves ../shared/data/facescrub/replay.tsv: status
codes, TIMEOUT (accept, never answer), RESET (drop the connection), 301 (redirect to a URL
that answers the body). The downloader is pointed at it as its HTTP proxy, so its own
session, timeouts, retries, hash checks and store run unchanged. https URLs cannot be
answered by a plain proxy (the client would CONNECT and then expect the origin's TLS
certificate), so the session forwards them to the proxy in absolute form instead; see the
docstring of facescrub_replay for why that keeps the code under test the real code.
To keep the module quick, the replay is downloaded once per module, and that one run is
the hard case: `python -m facescrub download` is started in a subprocess, killed with
SIGKILL midway, and the download is run again to completion in this process. The tests
then check that the resumed run ends exactly where a correct uninterrupted run must end
(what replay.tsv dictates, line by line), with short timeouts so that it stays bounded.
"""
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import facescrub.__main__ as cli
from conftest import require_data
from coursedata.paths import PROJECT_ROOT
from facescrub.download import (
    DownloadSettings,
    download,
    failed_for_good,
    known_failures,
    read_manifest,
    row_counts,
    summary,
    write_manifest,
)
from facescrub.lists import Face, read_lists
from facescrub.network import EVERYWHERE, USER_AGENT
from facescrub.store import Store, sha256_of
from facescrub_replay import ESCAPING_FILENAME, ReplayServer, Route, read_replay, replay_routes, replay_session

SETTINGS = DownloadSettings(workers=16, connect_timeout=2.0, read_timeout=1.0, deadline=4.0, retries=2, backoff=0.01,
                            allowed_networks=EVERYWHERE)  # the replay proxy is on 127.0.0.1
FAILURE_STATUS = {"404": "http_404", "500": "http_500", "TIMEOUT": "timeout", "RESET": "connection_error"}
EDGE = "http://edge.replay.invalid/"
EDGE_ROUTES = {
    f"{EDGE}to-passwd": Route("301", location="file:///etc/passwd"),
    f"{EDGE}loop": Route("302", location=f"{EDGE}loop"),
    f"{EDGE}big": Route("200", b"\xff\xd8\xff" + bytes(5000)),
    f"{EDGE}endless": Route("DRIP"),
}


@pytest.fixture(scope="module")
def replay_lines():
    return read_replay(require_data("facescrub"))


@pytest.fixture(scope="module")
def replay(replay_lines):
    with ReplayServer({**replay_routes(replay_lines), **EDGE_ROUTES}) as server:
        yield server


@dataclass
class Run:
    """A store after a killed and resumed download, its manifest rows, and what the resumed run did."""

    store: Path
    rows: list
    hits: Counter
    stored_before: set


def start_and_kill(proxy_url, store, images_before_kill=50):
    """Run `python -m facescrub download` into store through the proxy; SIGKILL it once it stored some images."""
    command = [sys.executable, "-m", "facescrub", "download", "--store", str(store), "--proxy", proxy_url,
               "--workers", "8", "--connect-timeout", "2", "--timeout", "1", "--deadline", "4",
               "--allow-private-addresses"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None and len(Store(store).hashes()) < images_before_kill:
            time.sleep(0.01)
        assert process.poll() is None, f"the download ended (exit code {process.returncode}) before it was killed"
    finally:
        process.kill()  # SIGKILL on POSIX: the run gets no chance to clean up
        process.wait()


def settled_hits(replay, quiet_seconds=0.5):
    """A copy of replay.hits once no request has been counted for quiet_seconds.

    The killed run's last requests can still wait in the server's accept queue; a hit the server
    counts after the snapshot would be charged to the resumed run (a CI run failed the retry count
    of one URL that way, once, on a busy machine).
    """
    hits, quiet_since = replay.hits.copy(), time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds:
        time.sleep(0.05)
        if replay.hits != hits:
            hits, quiet_since = replay.hits.copy(), time.monotonic()
    return hits


@pytest.fixture(scope="module")
def resumed_run(replay, tmp_path_factory):
    """Download the six actors through the replay, killed midway with a half-written file left, then resumed."""
    store = tmp_path_factory.mktemp("run") / "store"
    start_and_kill(replay.url, store)
    (store / ".0123abcd.tmp").write_bytes(b"half an image: what SIGKILL leaves in the middle of a write")
    stored_before, hits_before = Store(store).hashes(), settled_hits(replay)
    rows = list(download(read_lists().faces, store, session=replay_session(replay.url, SETTINGS), settings=SETTINGS,
                         progress=False))
    write_manifest(rows, store / "manifest.csv")
    return Run(store, rows, replay.hits - hits_before, stored_before)


def expected_status(line, sha256):
    """The manifest status a correct downloader gives a list line with this hash whose URL replays `line`."""
    if line.status in ("200", "301"):
        return "ok" if line.body_sha256 == sha256 else "hash_mismatch"
    return FAILURE_STATUS[line.status]


def test_every_genuine_image_is_kept_with_its_hash(resumed_run):
    genuine = {sha256_of(path.read_bytes()) for path in require_data("facescrub/images").iterdir()}
    stored = sorted(path for path in resumed_run.store.iterdir() if path.name != "manifest.csv")
    assert len(genuine) == 664
    assert {path.stem for path in stored} == genuine
    assert all(sha256_of(path.read_bytes()) == path.stem for path in stored)
    assert {row.sha256 for row in resumed_run.rows if row.status == "ok"} == genuine


def test_every_junk_body_is_rejected(resumed_run, replay_lines):
    junk = {line.url: line for line in replay_lines if line.body_path.startswith("junk/")}
    assert len({line.body_path for line in junk.values()}) == 198 and len(junk) == 226
    junk_rows = [row for row in resumed_run.rows if row.url in junk]
    assert all(row.status == "hash_mismatch" and row.bytes == len(junk[row.url].body) for row in junk_rows)
    assert not {line.body_sha256 for line in junk.values()} & Store(resumed_run.store).hashes()


def test_manifest_matches_replay(resumed_run, replay_lines):
    by_url = {line.url: line for line in replay_lines}
    faces = read_lists().faces
    expected = [expected_status(by_url[face.url], face.sha256) for face in faces]
    assert read_manifest(resumed_run.store / "manifest.csv") == resumed_run.rows
    assert [(row.url, row.sha256) for row in resumed_run.rows] == [(face.url, face.sha256) for face in faces]
    assert [row.status for row in resumed_run.rows] == expected
    assert Counter(expected) == {"ok": 669, "http_404": 358, "hash_mismatch": 227, "http_500": 59, "timeout": 40,
                                 "connection_error": 28}


def test_a_killed_run_resumes_without_refetching_or_temporary_files(resumed_run):
    assert 50 <= len(resumed_run.stored_before) < 664
    assert Store(resumed_run.store).temporary_files() == []
    from_store = [row for row in resumed_run.rows if row.sha256 in resumed_run.stored_before]
    assert from_store and all(row.source == "store" and row.attempts == 0 for row in from_store)
    assert not any(resumed_run.hits[row.url] for row in from_store)


def test_retries_5xx_and_resets_but_not_404_or_timeouts(resumed_run, replay_lines, replay):
    retried = SETTINGS.retries + 1
    attempts = {"200": 1, "301": 1, "404": 1, "TIMEOUT": 1, "500": retried, "RESET": retried}
    status = {line.url: line.status for line in replay_lines}
    fetched = [row for row in resumed_run.rows if row.source == "network"]
    assert len(fetched) > 600
    wrong = [(row.url, status[row.url], row.status, row.attempts, resumed_run.hits[row.url]) for row in fetched
             if not row.attempts == resumed_run.hits[row.url] == attempts[status[row.url]]]
    assert not wrong, f"(url, replayed, manifest status, attempts, server hits) off the expected counts: {wrong}"
    assert replay.unknown == [] and replay.user_agents == {USER_AGENT}


def test_summary_fits_one_screen(resumed_run):
    lines = summary(row_counts(resumed_run.rows), {"truncated": 1}, 12.3).splitlines()
    assert len(lines) == 1 + 6 + 1 + 1 and lines[0].split()[:2] == ["actor", "lines"]
    assert lines[0].split()[2:] == ["connection_error", "hash_mismatch", "http_404", "http_500", "ok", "timeout"]
    assert lines[-2].split() == ["total", "1381", "28", "227", "358", "59", "669", "40"]
    assert lines[-1] == "list lines: 1382 read = 1381 faces + 1 skipped (truncated 1); 1381 faces in 12.3 s"


def test_server_supplied_filename_is_never_used(resumed_run):
    assert not list(resumed_run.store.parent.parent.rglob(Path(ESCAPING_FILENAME).name))
    assert all(path.parent == resumed_run.store for path in resumed_run.store.rglob("*"))


def test_unsafe_redirects_loops_oversized_and_endless_bodies_are_refused(replay, tmp_path):
    """An endless body that keeps each read under the read timeout is cut by the per-URL deadline."""
    faces = [Face("Edge", str(i), str(i), url, (0, 0, 1, 1), "0" * 64) for i, url in enumerate(EDGE_ROUTES)]
    settings = replace(SETTINGS, workers=4, read_timeout=2.0, deadline=1.0, retries=0, max_bytes=4096)
    rows = list(download(faces, tmp_path / "store", session=replay_session(replay.url, settings), settings=settings,
                         progress=False))
    assert [row.status for row in rows] == ["bad_url", "too_many_redirects", "too_large", "timeout"]
    assert not list((tmp_path / "store").iterdir())


def test_mirror_is_used_first_and_a_corrupt_mirror_copy_is_refetched(resumed_run, replay, tmp_path):
    store = Store(resumed_run.store)
    faces = {face.sha256: face for face in read_lists().faces}
    genuine = list(dict.fromkeys(row.sha256 for row in resumed_run.rows if row.status == "ok"))[:4]
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for sha in genuine[:3]:
        (mirror / store.find(sha).name).write_bytes(store.find(sha).read_bytes())
    (mirror / store.find(genuine[0]).name).write_bytes(b"not the image")
    hits_before = replay.hits.copy()
    rows = list(download([faces[sha] for sha in genuine], tmp_path / "store", mirror,
                         replay_session(replay.url, SETTINGS), SETTINGS, progress=False))
    assert [(row.status, row.source) for row in rows] == [("ok", "network"), ("ok", "mirror"), ("ok", "mirror"),
                                                          ("ok", "network")]
    assert sorted(replay.hits - hits_before) == sorted(faces[sha].url for sha in (genuine[0], genuine[3]))


def test_failed_for_good_means_asking_again_cannot_help():
    assert all(map(failed_for_good, ["http_404", "http_403", "http_410", "hash_mismatch", "bad_url", "too_large",
                                     "too_many_redirects"]))
    assert not any(map(failed_for_good, ["ok", "http_408", "http_429", "http_500", "http_503", "timeout",
                                         "connection_error", "refused_address"]))


def test_known_failures_are_not_asked_again_and_the_rest_is(resumed_run, replay):
    faces = read_lists(actors=["Peri Gilpin"]).faces
    previous = {(row.url, row.sha256): row.status for row in resumed_run.rows}
    hits_before = replay.hits.copy()
    rows = list(download(faces, resumed_run.store, session=replay_session(replay.url, SETTINGS), settings=SETTINGS,
                         progress=False, known_failures=known_failures(resumed_run.rows)))
    hits = replay.hits - hits_before
    assert [row.status for row in rows] == [previous[face.url, face.sha256] for face in faces]
    by_source = Counter(row.source for row in rows)
    assert by_source["manifest"] > 50 and by_source["network"] > 5
    for row in rows:
        asked = row.source == "network"
        assert asked == (row.status != "ok" and not failed_for_good(row.status)) == (hits[row.url] > 0), row


def test_cli_download_with_a_mirror_writes_the_manifest_and_a_summary(replay, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "make_session", replay_session)  # https forwarded, as everywhere in this module
    store, mirror = tmp_path / "store", require_data("facescrub/images")
    hits_before = replay.hits.copy()
    cli.main(["download", "--actors", "Peri Gilpin", "--store", str(store), "--mirror", str(mirror), "--proxy",
              replay.url, "--connect-timeout", "2", "--timeout", "1", "--deadline", "4", "--retries", "1",
              "--allow-private-addresses"])
    rows, out = read_manifest(store / "manifest.csv"), capsys.readouterr().out
    genuine = [row for row in rows if row.status == "ok"]
    assert len(rows) == 195 and len(genuine) == 88 and all(row.source == "mirror" for row in genuine)
    assert not any((replay.hits - hits_before)[row.url] for row in genuine)
    assert out.splitlines()[1].split()[:3] == ["Peri", "Gilpin", "195"]
    assert out.endswith(f"manifest: {store / 'manifest.csv'}\n")

    hits_before = replay.hits.copy()
    cli.main(["download", "--actors", "Peri Gilpin", "--store", str(store), "--proxy", replay.url, "--skip-failed",
              "--connect-timeout", "2", "--timeout", "1", "--deadline", "4", "--retries", "0",
              "--allow-private-addresses"])
    again, out = read_manifest(store / "manifest.csv"), capsys.readouterr().out
    skipped = [row for row in again if row.source == "manifest"]
    assert [row.status for row in again] == [row.status for row in rows]
    assert skipped and not any((replay.hits - hits_before)[row.url] for row in skipped)
    assert f"not asked again (failed for good in the last manifest): {len(skipped)} lines" in out

    (store / "manifest.csv").write_text("not,a\nmanifest,at all\n")
    with pytest.raises(SystemExit, match="is not a manifest"):
        cli.main(["download", "--actors", "Peri Gilpin", "--store", str(store), "--skip-failed"])


def test_verify_quarantines_a_corrupted_stored_file_and_download_fetches_it_again(resumed_run, replay, tmp_path):
    faces = {face.sha256: face for face in read_lists().faces}
    genuine = list(dict.fromkeys(row.sha256 for row in resumed_run.rows if row.status == "ok"))[:2]
    store = Store(tmp_path / "store")
    for sha in genuine:
        store.add(Store(resumed_run.store).find(sha).read_bytes())
    corrupted = store.find(genuine[0])
    corrupted.write_bytes(b"\xff\xd8\xff a different picture")
    problems = store.verify_all()
    assert len(problems) == 1 and f"moved to {store.folder / 'quarantine' / corrupted.name}" in problems[0]
    rows = list(download([faces[sha] for sha in genuine], store.folder, session=replay_session(replay.url, SETTINGS),
                         settings=SETTINGS, progress=False))
    assert [(row.status, row.source) for row in rows] == [("ok", "network"), ("ok", "store")]
    assert sha256_of(store.find(genuine[0]).read_bytes()) == genuine[0]
