"""Small local HTTP servers for the downloader's hostile-input tests.

A TableServer answers each path from a fixed table (a redirect, a body or a status) and counts
every TCP connection it accepts. One on 127.0.0.1 stands for a service the downloader must
never reach (a test asserts it saw no connection, so a refusal came before any); one on
127.0.0.2 is a hostile site the test allows, whose redirects point at the first.
"""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TableHandler(BaseHTTPRequestHandler):
    """Answers GET path from server.table: ("redirect", location), ("body", bytes) or ("status", code)."""

    def do_GET(self):
        kind, value = self.server.table.get(self.path, ("status", 404))
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", value)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "body":
            self.send_response(200)
            self.send_header("Content-Length", str(len(value)))
            self.end_headers()
            self.wfile.write(value)
        else:
            self.send_response(value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format, *args):
        """Quiet: tests count connections instead."""


class TableServer(ThreadingHTTPServer):
    """An HTTP server on host (a free port) answering from `table`; counts accepted connections. A context manager."""

    daemon_threads = True

    def __init__(self, table=None, host="127.0.0.1"):
        super().__init__((host, 0), TableHandler)
        self.table, self.connections, self.lock = dict(table or {}), 0, threading.Lock()
        self.host, self.port = host, self.server_address[1]
        self.url = f"http://{host}:{self.port}"

    def verify_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        return True

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
        self.server_close()
