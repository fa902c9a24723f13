"""Helpers shared by the benchmark scripts: argument checks, JSON output, formatting."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from harness import __version__

REPO = Path(__file__).resolve().parent.parent
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

T = TypeVar("T")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (underscores allowed: 1_000_000)."""
    value = int(text.replace("_", ""))
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def require_loopback(url: str) -> None:
    """Refuse a database URL that points anywhere but this machine (benchmarks only run
    against loopback servers, never a shared or remote one)."""
    host = urlsplit(url).hostname
    if host is None or host == "" or host.startswith("/"):
        return  # Unix socket: local by definition
    if host not in LOOPBACK_HOSTS:
        sys.exit(f"refusing non-loopback database host {host!r}: benchmarks run on 127.0.0.1 only")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` and return its result and the wall-clock seconds it took."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def environment() -> dict[str, Any]:
    """What the figures were measured on, stored next to them in the JSON."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "harness": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
        "cpus": _cpu_count(),
    }


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def write_json(path: Path | None, figures: Mapping[str, Any]) -> None:
    """Write ``figures`` (plus the environment) to ``path`` when one was given."""
    if path is None:
        return
    payload = {"environment": environment(), **figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def rate(rows: int, seconds: float) -> float:
    """Rows per second (0 when no time passed)."""
    return rows / seconds if seconds > 0 else 0.0


def fmt_int(value: float) -> str:
    """12_345_678 -> '12,345,678'."""
    return f"{value:,.0f}"


def verdict(ok: bool) -> str:
    """Rich markup for a pass/fail cell."""
    return "[green]pass[/green]" if ok else "[bold red]FAIL[/bold red]"


def fresh_database(server: str, prefix: str) -> tuple[str, str]:
    """Create an empty database ``<prefix>_<random>`` on ``server``: (name, URL)."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    from harness.urls import plain_postgres_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain_postgres_url(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, urlunsplit(urlsplit(plain_postgres_url(server))._replace(path=f"/{name}"))


def drop_database(server: str, name: str) -> None:
    """Drop database ``name`` on ``server`` (closing its connections)."""
    import psycopg
    from psycopg import sql

    from harness.urls import plain_postgres_url

    with psycopg.connect(plain_postgres_url(server), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
