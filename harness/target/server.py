"""Running the reference API: preflight, then uvicorn in the foreground or in a thread."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from harness.errors import ConfigError, ServiceError
from harness.target.app import create_app
from harness.target.db import preflight
from harness.target.settings import ApiSettings

# Serving only on loopback unless asked: the API has an admin endpoint.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`ConfigError` naming the port when something already listens on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use; pass --port") from None
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(
    settings: ApiSettings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    workers: int = 1,
    log_level: str = "warning",
) -> None:
    """Check the database and the port, then serve until interrupted."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {workers})")
    preflight(settings.db)
    check_port_free(host, port)
    if workers == 1:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level=log_level, access_log=False
        )
        return
    # Worker processes rebuild their settings from the environment.
    os.environ.update(settings.to_env())
    uvicorn.run(
        "harness.target.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


@contextmanager
def running_api(
    settings: ApiSettings,
    *,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    startup_timeout: float = 20.0,
) -> Iterator[str]:
    """Serve the API in a background thread of this process; yield its base URL."""
    preflight(settings.db)
    port = port or free_port(host)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"reference-api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServiceError(f"reference API did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
