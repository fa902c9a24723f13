"""The reference API as a child process, for commands that need a target of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from harness.errors import ServiceError
from harness.target.server import free_port

STARTUP_TIMEOUT_S = 60.0


@contextmanager
def reference_api(
    db: str,
    *,
    redis_url: str | None,
    log: Path,
    pool_size: int | None = None,
    workers: int = 1,
    slow_log: Path | None = None,
    settings_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Start ``harness serve`` on a free loopback port; yield its URL; stop it on exit.

    A child process rather than a thread: load generators monkey-patch with gevent, and the
    API must not share that process or its GIL with them.
    """
    port = free_port()
    # URLs travel in the environment: on the command line, ``ps`` would show their passwords.
    env = {**os.environ, **(settings_env or {}), "HARNESS_API_DB": db}
    cmd = [sys.executable, "-m", "harness", "serve", "--port", str(port), "--workers", str(workers)]
    if redis_url:
        env["HARNESS_REDIS_URL"] = redis_url
    else:
        cmd.append("--no-redis")
    if pool_size is not None:
        cmd += ["--pool-size", str(pool_size)]
    if slow_log is not None:
        # The threshold comes from HARNESS_API_SLOW_MS when set (100 ms otherwise).
        env["HARNESS_API_SLOW_LOG"] = str(slow_log.resolve())
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # Own session: a terminal's Ctrl-C must not kill the target while Locust still runs.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise ServiceError(
                    f"reference API exited with code {proc.returncode}: " + " | ".join(tail)
                )
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"reference API did not answer on {url} within "
                    f"{STARTUP_TIMEOUT_S:.0f} s; see {log}"
                )
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
