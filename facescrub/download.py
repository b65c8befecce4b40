"""Downloading the originals: bounded threads, timeouts, retries, a size cap, SHA-256 checks.

Every list line gets one manifest row with its status:
  ok            stored (downloaded now, found in the store, or copied from the mirror)
  hash_mismatch the server answered, but not with the listed image (error pages, placeholders)
  http_<code>   the server answered with an HTTP error (404 is not retried; 5xx is)
  timeout       no complete answer within the connect/read timeouts or the per-URL deadline
  connection_error, too_large, too_many_redirects
"""
import csv
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from .store import Store, sha256_of

USER_AGENT = "tinynet-facescrub/0.1 (course dataset downloader; +https://github.com/)"


@dataclass
class DownloadSettings:
    """Limits for one URL. Times in seconds, sizes in bytes."""

    workers: int = 8
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 30.0
    retries: int = 2
    backoff: float = 0.5
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5


@dataclass
class Outcome:
    """What one URL gave: a status, the bytes (when any) and the time it took."""

    status: str
    data: bytes = b""
    seconds: float = 0.0
    attempts: int = 0


def make_session(proxy=None, settings=DownloadSettings()):
    """A requests Session with our User-Agent, redirect limit and optional HTTP proxy."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = settings.max_redirects
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    session.trust_env = proxy is None
    return session


def fetch_once(session, url, settings, started):
    """One GET of url: Outcome with status 'fetched' and the bytes, or a failure status."""
    remaining = settings.deadline - (time.monotonic() - started)
    try:
        with session.get(url, stream=True, timeout=(settings.connect_timeout, min(settings.read_timeout, remaining))) \
                as response:
            if response.status_code != 200:
                return Outcome(f"http_{response.status_code}")
            if int(response.headers.get("Content-Length") or 0) > settings.max_bytes:
                return Outcome("too_large")
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > settings.max_bytes:
                    return Outcome("too_large")
                if time.monotonic() - started > settings.deadline:
                    return Outcome("timeout")
                chunks.append(chunk)
            return Outcome("fetched", b"".join(chunks))
    except requests.TooManyRedirects:
        return Outcome("too_many_redirects")
    except requests.Timeout:
        return Outcome("timeout")
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return Outcome("connection_error")


def fetch(session, url, settings):
    """GET url with retries (with exponential backoff) on 5xx and connection errors, within the deadline."""
    started = time.monotonic()
    for attempt in range(1, settings.retries + 2):
        outcome = fetch_once(session, url, settings, started)
        outcome.attempts = attempt
        retryable = outcome.status == "connection_error" or outcome.status.startswith("http_5")
        wait = settings.backoff * 2 ** (attempt - 1)
        if not retryable or attempt > settings.retries or time.monotonic() - started + wait > settings.deadline:
            break
        time.sleep(wait)
    outcome.seconds = time.monotonic() - started
    return outcome


@dataclass
class ManifestRow:
    """One list line's result."""

    actor: str
    image_id: str
    face_id: str
    url: str
    sha256: str
    status: str
    bytes: int
    seconds: float
    attempts: int


def obtain(face_group, store, mirror, session, settings):
    """Outcome for the faces sharing one URL: from the store, the mirror, or the network."""
    wanted = {face.sha256 for face in face_group}
    if all(store.find(sha) for sha in wanted):
        return {sha: Outcome("ok", seconds=0.0) for sha in wanted}
    if mirror is not None:
        found = {sha: mirror.find(sha) for sha in wanted}
        if all(found.values()):
            return {sha: _store_checked(store, path.read_bytes(), sha, Outcome("ok")) for sha, path in found.items()}
    outcome = fetch(session, face_group[0].url, settings)
    if outcome.status != "fetched":
        return {sha: outcome for sha in wanted}
    return {sha: _store_checked(store, outcome.data, sha, outcome) for sha in wanted}


def _store_checked(store, data, sha, outcome):
    """Store data if its SHA-256 is sha; the outcome says ok or hash_mismatch."""
    matches = sha256_of(data) == sha
    if matches:
        store.add(data)
    return Outcome("ok" if matches else "hash_mismatch", b"", outcome.seconds, outcome.attempts)


def download(faces, store_folder, mirror_folder=None, session=None, settings=DownloadSettings(), progress=True,
             on_row=None):
    """Fetch every face's original into store_folder; return one ManifestRow per face (list order).

    Faces sharing a URL are fetched once. on_row(row) is called as rows complete (a test uses
    it to interrupt a run). Interrupting is safe: files appear only complete, by rename.
    """
    store, mirror = Store(store_folder), Store(mirror_folder) if mirror_folder else None
    session = session or make_session(settings=settings)
    groups = {}
    for face in faces:
        groups.setdefault(face.url, []).append(face)
    rows = {}
    executor = ThreadPoolExecutor(max_workers=settings.workers)
    try:
        futures = {executor.submit(obtain, group, store, mirror, session, settings): group for group in groups.values()}
        for future in tqdm(as_completed(futures), total=len(futures), desc="downloading", unit="url",
                           disable=not progress, mininterval=1.0):
            outcomes = future.result()
            for face in futures[future]:
                outcome = outcomes[face.sha256]
                path = store.find(face.sha256) if outcome.status == "ok" else None
                row = ManifestRow(face.actor, face.image_id, face.face_id, face.url, face.sha256, outcome.status,
                                  path.stat().st_size if path else 0, round(outcome.seconds, 3), outcome.attempts)
                rows[face] = row
                if on_row:
                    on_row(row)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return [rows[face] for face in faces]


def write_manifest(rows, path):
    """Write the manifest as CSV (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(ManifestRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    os.replace(temporary, path)


def summary(rows, skipped, seconds):
    """A one-screen text summary: counts per actor and status."""
    statuses = sorted({row.status for row in rows})
    per_actor = {}
    for row in rows:
        per_actor.setdefault(row.actor, Counter())[row.status] += 1
    width = max(len(a) for a in per_actor) if per_actor else 5
    lines = [f"{'actor':<{width}}  {'lines':>5}  " + "  ".join(f"{s:>14}" for s in statuses)]
    for actor, counts in per_actor.items():
        lines.append(f"{actor:<{width}}  {sum(counts.values()):>5}  " + "  ".join(f"{counts[s]:>14}" for s in statuses))
    lines.append(f"skipped list lines: {dict(skipped) or 'none'}; {len(rows)} lines in {seconds:.1f} s")
    return "\n".join(lines)

