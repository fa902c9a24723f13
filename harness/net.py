"""Network checks shared by ``harness run`` and the Locust hooks, each a one-line error.

This module imports neither Locust nor gevent: ``harness run`` calls it before it starts
Locust, and the hooks call it inside Locust.
"""

from __future__ import annotations

import errno
import socket
import time

from harness.errors import ConfigError

# Every IPv4 interface: the default for servers that another host scrapes or joins.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
# Locust's own default port for workers to reach the master on.
DEFAULT_MASTER_PORT = 5557
# How long a worker keeps trying the master's port before it gives up: a master started a
# moment earlier needs a few seconds to load its locustfile and listen.
MASTER_WAIT_S = 3.0
MASTER_RETRY_S = 0.25


def port_in_use_error(option: str, host: str, port: int, exc: OSError) -> ConfigError:
    """The error for a port that cannot be listened on, naming the option that chose it."""
    where = host or ALL_INTERFACES
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"{option} {port}: the port is already in use on {where}; "
            f"pass a free port to {option} or stop what listens there"
        )
    return ConfigError(f"{option} {port}: cannot listen on {where}:{port} ({exc.strerror})")


def check_port_free(option: str, host: str, port: int) -> None:
    """Raise :class:`ConfigError` when nothing can listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers that take the port do: a port in TIME_WAIT is free to them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise port_in_use_error(option, host, port, exc) from None


def check_master_reachable(host: str, port: int, wait: float = MASTER_WAIT_S) -> None:
    """Raise :class:`ConfigError` when the Locust master's port accepts no connection within
    ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(remaining, MASTER_RETRY_S)):
                return
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        if time.monotonic() + MASTER_RETRY_S > deadline:
            break
        time.sleep(MASTER_RETRY_S)
    raise ConfigError(
        f"cannot reach the Locust master at {host}:{port} ({reason}); start "
        "`harness run SCENARIO --master` there first, or fix --master-host/--master-port"
    )
