"""A loopback HTTP target for open-model tests: answers at once, except during its stalls.

Standard library only (``http.server``), one thread per connection, on 127.0.0.1. Stalls
come on a fixed schedule: every ``period`` seconds from ``first`` (epoch s) the server holds
every request for ``length`` seconds and answers them all when the stall ends, as a server
in a GC pause or behind a lock does.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Stalls:
    """Stall windows ``[first + k * period, first + k * period + length)`` for k >= 0."""

    first: float
    period: float
    length: float

    def end_of(self, t: float) -> float | None:
        """When the stall holding time ``t`` ends, or None when ``t`` is outside every stall."""
        if t < self.first:
            return None
        k = math.floor((t - self.first) / self.period)
        start = self.first + k * self.period
        return start + self.length if t < start + self.length else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Locust's clients use it
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms delayed ACK
    server: _Server

    def do_GET(self) -> None:
        stalls = self.server.stalls
        if stalls is not None:
            end = stalls.end_of(time.time())
            if end is not None:
                time.sleep(max(0.0, end - time.time()))
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.count()

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: thousands of requests per test


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def __init__(self, stalls: Stalls | None) -> None:
        super().__init__((HOST, 0), _Handler)
        self.stalls = stalls
        self.served = 0
        self._lock = threading.Lock()

    def count(self) -> None:
        with self._lock:
            self.served += 1


@dataclass
class StallServer:
    url: str
    server: _Server

    @property
    def served(self) -> int:
        return self.server.served


@contextlib.contextmanager
def stall_server(stalls: Stalls | None = None) -> Iterator[StallServer]:
    """Serve on a free loopback port until the block ends."""
    server = _Server(stalls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StallServer(f"http://{HOST}:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
