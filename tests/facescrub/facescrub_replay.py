"""A loopback HTTP proxy that replays ../shared/data/facescrub/replay.tsv, for the downloader tests.

The downloader is pointed at it the way a user points it at any proxy, so the real request,
redirect, timeout, retry, hashing and storing code runs. http URLs reach it as ordinary
proxied requests (`GET http://host/path`). https URLs are different: through a real proxy
a client sends `CONNECT host:443` and then speaks TLS to the origin inside that tunnel, so
a proxy that wanted to answer for the origin would have to forge a certificate the client
trusts. Rather than add a certificate authority to the tests, `replay_session` mounts
ForwardingAdapter for https: the request goes to the proxy in absolute form
(`GET https://host/path`), and everything above the socket (requests' redirects, urllib3's
timeouts, the downloader's retries and checks) is unchanged. CONNECT itself is answered 405.
"""
import hashlib
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from requests.utils import requote_uri

from facescrub.download import make_session
from facescrub.network import CheckedAdapter

MOVED_PREFIX = "http://moved.replay.invalid/"
ESCAPING_FILENAME = "../../escaped-from-store.jpg"  # every 200 offers it; the store must never use it


@dataclass(frozen=True)
class Route:
    """What the proxy answers for one URL: an HTTP status ("200", "404", "301", ...), TIMEOUT, RESET, or DRIP
    (200, then one byte every 50 ms until the client hangs up: a body that never ends)."""

    status: str
    body: bytes = b""
    location: str = ""


@dataclass(frozen=True)
class ReplayLine:
    """One line of replay.tsv with its body's bytes (b"" when none) and their SHA-256."""

    url: str
    status: str
    body_path: str
    body: bytes

    @property
    def body_sha256(self):
        return hashlib.sha256(self.body).hexdigest()


def read_replay(folder: Path) -> list:
    """The lines of folder/replay.tsv as ReplayLine (bodies read from folder)."""
    lines = []
    for text in (folder / "replay.tsv").read_text().splitlines():
        if text.startswith("#") or not text.strip():
            continue
        url, status, body_path = text.split("\t")
        lines.append(ReplayLine(url, status, body_path, (folder / body_path).read_bytes() if body_path else b""))
    return lines


def replay_routes(lines) -> dict:
    """{url: Route}: each line as recorded; a 301 redirects to its own moved URL that answers 200 with the body."""
    routes = {}
    for index, line in enumerate(lines):
        if line.status == "301":
            target = f"{MOVED_PREFIX}{index}"
            routes[line.url] = Route("301", location=target)
            routes[target] = Route("200", line.body)
        else:
            routes[line.url] = Route(line.status, line.body)
    return routes


class ReplayHandler(BaseHTTPRequestHandler):
    """Answers each proxied request from server.routes; counts the requests per URL."""

    def do_GET(self):
        route = self.server.route(self.path, self.headers.get("User-Agent"))
        if route is None:
            self.send_error(502, "not in the replay")
        elif route.status == "TIMEOUT":
            self.server.stopping.wait()
            self.close_connection = True
        elif route.status == "RESET":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif route.status == "DRIP":
            self.send_response(200)
            self.end_headers()
            while not self.server.stopping.wait(0.05):
                self.wfile.write(b"\xff")
        else:
            self.send_response(int(route.status))
            if route.location:
                self.send_header("Location", route.location)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", f'attachment; filename="{ESCAPING_FILENAME}"')
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

    def do_CONNECT(self):
        self.send_error(405, "the replay proxy does not tunnel; tests send https through ForwardingAdapter")

    def log_message(self, format, *args):
        """Quiet: the tests count requests instead."""


class ReplayServer(ThreadingHTTPServer):
    """The proxy on 127.0.0.1 (a free port), one thread per connection. Use as a context manager."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, routes):
        super().__init__(("127.0.0.1", 0), ReplayHandler)
        self.routes = {requote_uri(url): (url, route) for url, route in routes.items()}
        self.hits, self.unknown = Counter(), []  # requests per replay URL; requested URLs the replay lacks
        self.user_agents = set()
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, requested, user_agent):
        """The Route for the requested URL (None if the replay has none); counts requests per replay URL."""
        url, route = self.routes.get(requested, (requested, None))
        with self.lock:
            self.hits[url] += 1
            self.user_agents.add(user_agent)
            if route is None:
                self.unknown.append(url)
        return route

    def handle_error(self, request, client_address):
        """Clients hang up on purpose (timeouts, size caps): not worth a traceback."""

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.shutdown()
        self.server_close()


class ForwardingAdapter(CheckedAdapter):
    """Sends every request it gets to proxy_url in absolute form (`GET https://host/path`), without CONNECT;
    the connection to proxy_url is checked against the address policy as any other."""

    def __init__(self, proxy_url, policy):
        super().__init__(policy)
        self.proxy_url = proxy_url

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        return self.checked(self.poolmanager.connection_from_url(self.proxy_url))

    def request_url(self, request, proxies):
        return request.url


def replay_session(proxy_url, settings):
    """The downloader's own session with proxy_url as its proxy, https forwarded by ForwardingAdapter.
    settings.allowed_networks must allow 127.0.0.1 (the proxy's address), as --allow-private-addresses does."""
    session = make_session(proxy_url, settings)
    session.mount("https://", ForwardingAdapter(proxy_url, settings.policy))
    return session
