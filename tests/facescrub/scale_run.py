"""Download and prepare a generated list of many lines served on 127.0.0.1: peak memory and URLs per second.

    python tests/facescrub/scale_run.py [--lines 100000] [--workers 8] [--size 32]

The real FaceScrub lists have about 107,000 lines. Here a tiny local server answers
http://127.0.0.1:<port>/<i>.bmp with a distinct 16x16 BMP made from i, so every line has its
own image and SHA-256; it answers at most as many requests as the list has lines and stops by
itself (also after IDLE_SECONDS without a request). `python -m facescrub download` and
`python -m facescrub prepare` run as child processes on the generated list; their peak
resident memory comes from os.wait4, their time from the wall clock. Everything is written
to a temporary folder that is removed at the end.

Measured (2 shared cores, another long job running, load 2.5-3.4): download of 100,000 lines
174 URLs/s, peak RSS 56 MB (51 MB at 20,000 lines); before it streamed the lists and the
manifest, 170 URLs/s and 220 MB (68 MB at 20,000). prepare --size 32: 2,457 lines/s, 598 MB.
"""
import argparse
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from facescrub.lists import ACTORS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SIDE = 16
IDLE_SECONDS = 60
# PLUS[y] maps each byte value v to (v + y) mod 256 (bytes.translate): 5x faster than a generator per row, which was
# ~1 CPU-s of the 22,000 images test_download_memory_does_not_grow_with_the_list stores (issue 30).
PLUS = [bytes((value + y) & 0xFF for value in range(256)) for y in range(SIDE)]


def bmp(index: int) -> bytes:
    """A SIDE x SIDE 24-bit BMP whose pixels spell out index: a distinct decodable image per index.

    Row y is the first row with y added to each byte (mod 256)."""
    row = bytes(((index >> (8 * (x % 3))) ^ (x * 16)) & 0xFF for x in range(SIDE * 3))
    pixels = b"".join(row.translate(PLUS[y]) for y in range(SIDE))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, SIDE, SIDE, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


class ImageHandler(BaseHTTPRequestHandler):
    """GET /<i>.bmp answers bmp(i); anything else 404. Keeps connections alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        name = self.path.lstrip("/")
        body = bmp(int(name[:-4])) if name.endswith(".bmp") and name[:-4].isdigit() else None
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")
        self.server.answered()

    def log_message(self, format, *args):
        """Quiet: 100,000 lines of log would be the bottleneck."""


class ImageServer(ThreadingHTTPServer):
    """ImageHandler on 127.0.0.1 (a free port); shuts itself down after `limit` requests or IDLE_SECONDS idle."""

    daemon_threads = True

    def __init__(self, limit):
        super().__init__(("127.0.0.1", 0), ImageHandler)
        self.limit, self.requests, self.last = limit, 0, time.monotonic()
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def answered(self):
        with self.lock:
            self.requests += 1
            self.last = time.monotonic()
            if self.requests == self.limit:
                threading.Thread(target=self.shutdown).start()

    def service_actions(self):
        if time.monotonic() - self.last > IDLE_SECONDS:
            threading.Thread(target=self.shutdown).start()
            self.last = float("inf")


def write_list(path, base_url, lines):
    """A FaceScrub-style list of `lines` lines, the course's six actors in turn, each line its own image."""
    with open(path, "w") as file:
        for i in range(lines):
            sha = hashlib.sha256(bmp(i)).hexdigest()
            file.write(f"{ACTORS[i % len(ACTORS)]}\t{i}\t{i}\t{base_url}/{i}.bmp\t2,2,14,14\t{sha}\n")


def measure(command, env):
    """Run command; return (exit code, seconds, peak resident memory in MB, its stdout)."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.monotonic() - started, usage.ru_maxrss / 1024, out


def run(lines, workers=8, size=32, folder=None):
    """Generate, serve, download and prepare `lines` lines; return the measurements as a dict."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch, ImageServer(limit=lines) as server:
        scratch = Path(scratch)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        write_list(scratch / "list.txt", server.url, lines)
        env = {**os.environ, "TINYNET_CACHE": str(scratch / "cache"), "PYTHONPATH": str(PROJECT_ROOT)}
        common = ["--lists", str(scratch / "list.txt"), "--store", str(scratch / "store")]
        download = measure([sys.executable, "-m", "facescrub", "download", *common, "--workers", str(workers),
                            "--allow-private-addresses", "127.0.0.1"], env)
        prepare = measure([sys.executable, "-m", "facescrub", "prepare", *common, "--size", str(size)], env)
        stored = sum(1 for _ in (scratch / "store").glob("*.bmp"))
        return {"lines": lines, "requests": server.requests, "stored": stored,
                "download": dict(zip(("exit", "seconds", "peak_mb", "out"), download)),
                "prepare": dict(zip(("exit", "seconds", "peak_mb", "out"), prepare))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    result = run(args.lines, args.workers, args.size)
    download, prepare = result["download"], result["prepare"]
    print(download["out"].splitlines()[-2], prepare["out"].splitlines()[-1], sep="\n")
    print(f"{args.lines} lines, {result['requests']} requests answered, {result['stored']} images stored")
    print(f"download: exit {download['exit']}, {download['seconds']:.1f} s, "
          f"{args.lines / download['seconds']:.0f} URLs/s, peak RSS {download['peak_mb']:.0f} MB")
    print(f"prepare --size {args.size}: exit {prepare['exit']}, {prepare['seconds']:.1f} s, "
          f"{args.lines / prepare['seconds']:.0f} lines/s, peak RSS {prepare['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
