"""A locustfile the users' tests load beside the real ones: probe users and a recorder.

Never imported by pytest (it imports locust, which monkey-patches the process with gevent);
the tests pass it to ``locust -f`` in a subprocess. With ``HARNESS_PROBE_OUT`` set it writes,
when Locust quits, every request (name, type, start, latency, url, error) and the wall-clock
times of a ticker greenlet that wakes every 5 ms: a blocking call anywhere in the process
shows as a gap in those ticks.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, ClassVar

import gevent
from locust import User, constant, events, task

from harness.users import ApiUser, PostgresUser, SqliteUser

OUT_ENV = "HARNESS_PROBE_OUT"
TICK_S = 0.005
# A recursive CTE that keeps SQLite busy ~0.5-1 s in one C call (calibrated on 2 cores).
SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
    "SELECT count(*) FROM c"
)
SLOW_ROWS = 2_500_000

_requests: list[dict[str, Any]] = []
_ticks: list[float] = []


def _record(
    request_type: str,
    name: str,
    response_time: float,
    start_time: float | None = None,
    exception: BaseException | None = None,
    url: str | None = None,
    **_kwargs: Any,
) -> None:
    _requests.append(
        {
            "type": request_type,
            "name": name,
            "start": start_time,
            "ms": response_time,
            "ms_type": type(response_time).__name__,
            "url": url,
            "error": repr(exception) if exception else None,
        }
    )


def _tick() -> None:
    while True:
        _ticks.append(time.time())
        gevent.sleep(TICK_S)


def _start_ticker(**_kwargs: Any) -> None:
    gevent.spawn(_tick)


def _write(**_kwargs: Any) -> None:
    out = os.environ.get(OUT_ENV)
    if out:
        Path(out).write_text(json.dumps({"requests": _requests, "ticks": _ticks}))


events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_start_ticker)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_write)  # type: ignore[no-untyped-call]


class PgSleeper(PostgresUser):
    """One user holding a pooled connection in ``pg_sleep(1)`` again and again."""

    fixed_count = 1
    weights: ClassVar[dict[str, int]] = {"sleep": 1}

    def task_sleep(self) -> None:
        self.execute("pg_sleep", "SELECT pg_sleep(1)")


class SqliteSlow(SqliteUser):
    """One user running a ~0.8 s SQLite query again and again, through SqliteUser."""

    fixed_count = 1
    weights: ClassVar[dict[str, int]] = {"slow": 1}

    def task_slow(self) -> None:
        self.execute("slow_cte", SLOW_SQLITE, {"n": SLOW_ROWS})


class InlineSqliteSlow(User):
    """Control: the same query called straight from the greenlet, as a naive user would."""

    fixed_count = 1
    # A pause between calls: back to back, they would starve the hub (even Locust's -t timer).
    wait_time = constant(0.2)

    def on_start(self) -> None:
        self.conn = sqlite3.connect(os.environ["HARNESS_SQLITE_PATH"])

    @task
    def slow(self) -> None:
        started_at, started = time.time(), time.perf_counter()
        self.conn.execute(SLOW_SQLITE, {"n": SLOW_ROWS}).fetchall()
        self.environment.events.request.fire(
            request_type="SQLITE",
            name="inline_slow_cte",
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=1,
            response=None,
            context={},
            exception=None,
            start_time=started_at,
            url=None,
        )


class ApiReader(ApiUser):
    """Reads only, so a test may point it at the shared, read-only reference dataset."""

    weights: ClassVar[dict[str, int]] = {
        name: w for name, w in ApiUser.weights.items() if not name.startswith("create")
    }
