"""Downloading the originals: bounded threads, timeouts, retries, a size cap, SHA-256 checks.

Every list line gets one manifest row with its status:
  ok                  stored: found in the store, copied from the mirror, or downloaded now
  hash_mismatch       the server answered 200, but not with the listed image (error pages,
                      placeholders, a redirect to a "not found" picture)
  http_<code>         the server answered with an HTTP error (404 is not retried; 5xx is)
  timeout             no answer within the connect/read timeouts, or the per-URL deadline passed
  connection_error    refused, reset, or cut off mid-body (retried)
  too_large           more than max_bytes
  too_many_redirects  more than max_redirects
  bad_url             a URL or a redirect target that is not http(s)
  refused_address     a URL or a redirect to a loopback, private, link-local, multicast or
                      reserved address (see network.py; DownloadSettings.allowed_networks opts in)
A row's source says where its answer came from: the store, the mirror, the network, or the
manifest (a failure for good that a previous run recorded and this run did not ask again; see
failed_for_good and download's known_failures).
The deadline bounds a URL's total time (retries and backoff included) up to one more read
timeout: the body is read with read1, which returns after at most one socket read, so a
server that drips bytes cannot hold a worker for long. DNS lookups count against the connect
timeout, which is never more than what is left of the deadline.
A proxy that cannot be reached is not a URL's status: it raises ProxyFailure and the run ends.
"""
import csv
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, fields, replace
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.utils import requote_uri
from tqdm import tqdm

from coursedata.files import atomic_write

from .lists import BadLine, check_url, shas_per_url
from .network import AddressPolicy, RefusedAddress, checked_session
from .store import Store, sha256_of

CHUNK_BYTES = 64 * 1024
IN_FLIGHT_PER_WORKER = 4  # URLs queued per worker: no future per list line, however long the list
WAITING_PER_WORKER = 256  # list lines per worker held until the lines before them are done (a slow URL at the head)


@dataclass(frozen=True)
class DownloadSettings:
    """Limits for the run (workers) and for one URL. Times in seconds, sizes in bytes.

    allowed_networks: ip_network objects that may be connected to although not public (a local
    mirror or test proxy; network.EVERYWHERE allows all). ValueError names a setting out of range.
    """

    workers: int = 8
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 30.0
    retries: int = 2
    backoff: float = 0.5
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    allowed_networks: tuple = ()

    def __post_init__(self):
        minimum = {"workers": 1, "retries": 0, "backoff": 0, "max_bytes": 1, "max_redirects": 0}
        for name, value in asdict(self).items():
            if name in minimum and not value >= minimum[name]:
                raise ValueError(f"{name} must be at least {minimum[name]}, got {value}")
            if name in ("connect_timeout", "read_timeout", "deadline") and not value > 0:
                raise ValueError(f"{name} must be more than 0 seconds, got {value}")

    @property
    def policy(self):
        """The AddressPolicy these settings ask for."""
        return AddressPolicy(tuple(self.allowed_networks))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one URL gave: a status, where the bytes came from, how many, the time and the attempts."""

    status: str
    source: str = "network"
    size: int = 0
    seconds: float = 0.0
    attempts: int = 0


def make_session(proxy=None, settings=None):
    """A requests Session that connects only where settings.policy allows (see network.py), with
    our User-Agent; every request through `proxy` if given, which is checked first (ProxyFailure)."""
    settings = settings or DownloadSettings()
    return checked_session(proxy, settings.policy, settings.connect_timeout)


def read_body(response, settings, started):
    """('fetched', body) of a 200 response, or ('too_large' | 'timeout', b'') when a limit is hit."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > settings.max_bytes:
        return "too_large", b""
    chunks, size = [], 0
    while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
        size += len(chunk)
        if size > settings.max_bytes:
            return "too_large", b""
        if time.monotonic() - started > settings.deadline:
            return "timeout", b""
        chunks.append(chunk)
    return "fetched", b"".join(chunks)


def fetch_once(session, url, settings, started):
    """One GET of url, redirects followed here so that each hop's URL and address are checked:
    ('fetched', body) or (a failure status, b''). ProxyFailure if the proxy cannot be reached."""
    for _ in range(settings.max_redirects + 1):
        remaining = settings.deadline - (time.monotonic() - started)
        if remaining <= 0:
            return "timeout", b""
        timeout = (min(settings.connect_timeout, remaining), min(settings.read_timeout, remaining))
        try:
            settings.policy.check_url_host(urlsplit(check_url(url)).hostname)
            with session.get(url, stream=True, timeout=timeout, allow_redirects=False) as response:
                target = session.get_redirect_target(response)
                if target is None and response.status_code != 200:
                    return f"http_{response.status_code}", b""
                if target is None:
                    return read_body(response, settings, started)
                url = requote_uri(urljoin(response.url, target))
        except BadLine:
            return "bad_url", b""
        except RefusedAddress:
            return "refused_address", b""
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            return "timeout", b""
        except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema):
            return "bad_url", b""
        except (requests.RequestException, urllib3.exceptions.HTTPError):
            return "connection_error", b""
    return "too_many_redirects", b""


def fetch(session, url, settings):
    """(Outcome, body): GET url, retrying 5xx and connection errors with exponential backoff within the deadline."""
    started = time.monotonic()
    for attempt in range(1, settings.retries + 2):
        status, body = fetch_once(session, url, settings, started)
        retryable = status == "connection_error" or status.startswith("http_5")
        wait = settings.backoff * 2 ** (attempt - 1)
        if not retryable or attempt > settings.retries or time.monotonic() - started + wait >= settings.deadline:
            break
        time.sleep(wait)
    return Outcome(status, "network", len(body), time.monotonic() - started, attempt), body


def failed_for_good(status):
    """True for a status that asking the same URL again will not change: an HTTP 4xx other than
    408 (request timeout) and 429 (too many requests), hash_mismatch, bad_url, too_large or
    too_many_redirects. Timeouts, connection errors and 5xx may answer another time, and a
    refused_address is asked again because the next run may allow it (--allow-private-addresses)."""
    if status.startswith("http_4"):
        return status not in ("http_408", "http_429")
    return status in ("hash_mismatch", "bad_url", "too_large", "too_many_redirects")


def known_failures(rows):
    """{(url, sha256): status} of the manifest rows whose status failed_for_good."""
    return {(row.url, row.sha256): row.status for row in rows if failed_for_good(row.status)}


def keep_if_genuine(store, data, sha256):
    """Store data if its SHA-256 is sha256; True if it was."""
    if sha256_of(data) != sha256:
        return False
    store.add(data)
    return True


def obtain(url, shas, store, mirror, session, settings, known_failures):
    """{sha256: Outcome} for the SHA-256s listed with one URL: from the store, else the mirror, else the
    known_failures ({(url, sha256): status}), else one network fetch for all that are missing."""
    outcomes, missing = {}, set()
    for sha in shas:
        stored = store.find(sha)
        mirrored = mirror.find(sha) if mirror is not None and stored is None else None
        if stored is not None:
            outcomes[sha] = Outcome("ok", "store", stored.stat().st_size)
        elif mirrored is not None and keep_if_genuine(store, mirrored.read_bytes(), sha):
            outcomes[sha] = Outcome("ok", "mirror", mirrored.stat().st_size)
        elif (url, sha) in known_failures:
            outcomes[sha] = Outcome(known_failures[url, sha], "manifest")
        else:
            missing.add(sha)
    if missing:
        fetched, body = fetch(session, url, settings)
        for sha in missing:
            status = fetched.status
            if status == "fetched":
                status = "ok" if keep_if_genuine(store, body, sha) else "hash_mismatch"
            outcomes[sha] = replace(fetched, status=status)
    return outcomes


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One list line's result: status, source (store, mirror, network), bytes received, seconds, attempts."""

    actor: str
    image_id: str
    face_id: str
    url: str
    sha256: str
    status: str
    source: str
    bytes: int
    seconds: float
    attempts: int


def download(faces, store_folder, mirror_folder=None, session=None, settings=None, progress=True,
             known_failures=None, shared=None):
    """Fetch every face's original into store_folder; an iterator of one ManifestRow per face, in list order.

    faces: any iterable of Face, read once (e.g. a lists.StreamedList). shared: {url: SHA-256s} for
    every URL on more than one face (StreamedList.shared; None: computed from faces, which must
    then be a list, and every URL counts as shared). Faces sharing a URL are fetched once, and
    their rows all get that fetch's outcome. Memory does not grow with the list:
    at most IN_FLIGHT_PER_WORKER URLs per worker are queued and WAITING_PER_WORKER faces per
    worker wait for a slower one before them; only the shared URLs' outcomes are kept to the end.
    known_failures: {(url, sha256): status} not to ask again (see known_failures()); their rows
    keep that status, with source "manifest". A run can be killed at any moment: files appear
    only complete (by rename), the next run removes leftover temporary files and does not fetch
    what is already stored. Only one run at a time may use a store folder. ProxyFailure (the
    proxy stopped answering) ends the iteration. The store is checked and cleaned when this is
    called, before the first row is asked for.
    """
    settings = settings or DownloadSettings()
    store, mirror = Store(store_folder), Store(mirror_folder) if mirror_folder else None
    store.check_writable()
    store.remove_temporary()
    session = session or make_session(settings=settings)
    shared = shas_per_url(faces) if shared is None else shared
    fetch_outcomes = (store, mirror, session, settings, known_failures or {})
    return manifest_rows(faces, shared, fetch_outcomes, settings.workers, progress)


def manifest_rows(faces, shared, fetch_outcomes, workers, progress):
    """download()'s rows: obtain(url, shas, *fetch_outcomes) on `workers` threads, rows yielded in list order."""
    executor = ThreadPoolExecutor(max_workers=workers)
    shared_futures, waiting, running = {}, deque(), set()
    bar = tqdm(total=len(faces) if hasattr(faces, "__len__") else None, desc="downloading", unit="face",
               disable=not progress, mininterval=1.0)

    def submit(url, shas):
        future = executor.submit(obtain, url, shas, *fetch_outcomes)
        running.add(future)
        return future

    def row(face, future):
        outcome = future.result()[face.sha256]
        bar.update()
        return ManifestRow(face.actor, face.image_id, face.face_id, face.url, face.sha256, outcome.status,
                           outcome.source, outcome.size, round(outcome.seconds, 3), outcome.attempts)
    try:
        for face in faces:
            if face.sha256 not in shared.get(face.url, ()):
                future = submit(face.url, {face.sha256})
            elif face.url in shared_futures:
                future = shared_futures[face.url]
            else:
                future = shared_futures[face.url] = submit(face.url, shared[face.url])
            waiting.append((face, future))
            while len(running) >= IN_FLIGHT_PER_WORKER * workers:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                running.difference_update(done)
                for finished in done:
                    finished.result()  # a ProxyFailure ends the run now, not when its line comes
            while waiting and (waiting[0][1].done() or len(waiting) > WAITING_PER_WORKER * workers):
                yield row(*waiting.popleft())
        while waiting:
            yield row(*waiting.popleft())
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        bar.close()


def write_manifest(rows, path):
    """Write the manifest rows (any iterable, read once) as CSV, atomically (temporary file + rename: a
    failure on the way, e.g. a ProxyFailure from download(), leaves the old manifest as it was).
    Returns a Counter of the rows by (actor, status, source), for summary()."""
    counts = Counter()
    try:
        with atomic_write(path, "w") as file:
            writer = csv.DictWriter(file, fieldnames=[f.name for f in fields(ManifestRow)])
            writer.writeheader()
            for row in rows:
                writer.writerow(asdict(row))
                counts[row.actor, row.status, row.source] += 1
    except OSError as error:  # a full disk while writing the manifest names it
        error.filename = error.filename or str(path)
        raise
    return counts


def iter_manifest(path):
    """The manifest rows written by write_manifest, one at a time, as ManifestRow (bytes, seconds and attempts as
    numbers)."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        for row in csv.DictReader(file):
            yield ManifestRow(**{**row, "bytes": int(row["bytes"]), "seconds": float(row["seconds"]),
                                 "attempts": int(row["attempts"])})


def read_manifest(path):
    """The list of the manifest rows written by write_manifest (see iter_manifest)."""
    return list(iter_manifest(path))


def row_counts(rows):
    """A Counter of the manifest rows by (actor, status, source), as write_manifest returns."""
    return Counter((row.actor, row.status, row.source) for row in rows)


def summary(counts, skipped, seconds):
    """A one-screen text summary: list lines per actor and status, then every list line accounted
    for (the faces, one row each, and the skipped lines by reason), and the wall time.
    counts: {(actor, status, source): rows} (see write_manifest)."""
    statuses = sorted({status for _, status, _ in counts})
    per_actor = {}
    for (actor, status, _), count in counts.items():
        per_actor.setdefault(actor, Counter())[status] += count
    per_actor["total"] = sum(per_actor.values(), Counter())
    width = max(len(actor) for actor in per_actor)
    lines = [f"{'actor':<{width}}  {'lines':>5}  " + "  ".join(f"{s:>16}" for s in statuses)]
    for actor, actor_counts in per_actor.items():
        lines.append(f"{actor:<{width}}  {sum(actor_counts.values()):>5}  "
                     + "  ".join(f"{actor_counts[s]:>16}" for s in statuses))
    faces = sum(counts.values())
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items()))
    lines.append(f"list lines: {faces + sum(skipped.values())} read = {faces} faces + "
                 f"{sum(skipped.values())} skipped{f' ({reasons})' if reasons else ''}; {faces} faces in "
                 f"{seconds:.1f} s")
    return "\n".join(lines)
