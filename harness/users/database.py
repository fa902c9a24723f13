"""Database users: the workload's critical queries straight against PostgreSQL or SQLite.

Each task is one query of :data:`harness.target.queries.CRITICAL_QUERIES` (request name = the
query's name, request type ``PG`` or ``SQLITE``), compiled once per dialect from the very
SQLAlchemy statements the API runs, with bind parameters drawn per request: ids with Zipf skew
from the tables' real id ranges (read once per process), ``since`` = the dataset's anchor minus
7 days so "recent" finds rows on any dataset, ``limit`` = the builder's own default.

Latency is measured around the whole call as the application sees it, waiting for a pooled
connection (PostgreSQL) or a free database thread (SQLite) included, as a float in ms.

Neither driver may block the other Locust users of the process:

- psycopg (3.1.14+) picks gevent-aware waiting when it is imported after gevent's
  monkey-patching, which Locust does first; :class:`PostgresUser` refuses to start otherwise.
- sqlite3 calls are blocking C calls; :class:`SqliteUser` runs each one in a native thread of
  a gevent ThreadPool (sqlite3 releases the GIL while SQLite works), each thread with its own
  read-only connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import psycopg
from gevent import monkey
from gevent.threadpool import ThreadPool
from locust import User, events
from psycopg import waiting
from psycopg_pool import ConnectionPool
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect

from harness.errors import ConfigError, DatabaseError, DatasetError, HarnessError
from harness.urls import is_postgres, mask_url, plain_postgres_url, sqlite_path
from harness.users import settings
from harness.users.base import WeightedTasks, shared_popularity, stop_test
from harness.workload import (
    CRITICAL_WEIGHTS,
    RECENT_DAYS,
    CompiledQuery,
    DatasetFacts,
    Popularity,
    compile_critical_queries,
    draw_params,
    read_facts,
)

SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CONNECT_TIMEOUT_S = 10


# -- backends: one per process and target, shared by every user of it ------------------------


class Backend:
    """A database target shared by a process's users: runs SQL, cooperatively."""

    request_type: ClassVar[str]
    dialect: ClassVar[Dialect]

    def __init__(self, key: str) -> None:
        self.key = key
        self.queries = compile_critical_queries(self.dialect)
        self.facts = self._load_facts()
        since = self.facts.anchor - timedelta(days=RECENT_DAYS)
        self.since = self.since_value(since)

    def _load_facts(self) -> DatasetFacts:
        raise NotImplementedError

    def since_value(self, since: datetime) -> Any:
        """``since`` as this driver must receive it."""
        return since

    def run(self, sql: str, params: Mapping[str, Any] | None) -> int:
        """Run ``sql`` and fetch every row; return the number of rows."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and threads."""


def _psycopg_is_cooperative() -> bool:
    if not monkey.is_module_patched("select"):
        return True  # not under gevent: nothing to cooperate with
    wait_c = getattr(waiting, "wait_c", None)
    return wait_c is None or waiting.wait is not wait_c


class PostgresBackend(Backend):
    """psycopg 3 with one ``ConnectionPool`` per process (autocommit: the queries only read)."""

    request_type = "PG"
    dialect = PGDialect_psycopg()

    def __init__(self, url: str, pool_size: int, pool_timeout: float) -> None:
        if not _psycopg_is_cooperative():
            raise ConfigError(
                "psycopg was imported before gevent's monkey-patching, so its waits would block "
                "every Locust user; import locust (or harness.users) before psycopg"
            )
        self.url = plain_postgres_url(url)
        self.pool_timeout = pool_timeout
        super().__init__(mask_url(self.url))
        self.pool: ConnectionPool = ConnectionPool(
            self.url,
            min_size=pool_size,
            max_size=pool_size,
            timeout=pool_timeout,
            kwargs={"autocommit": True},
            open=False,
            name="harness-users",
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 3)
        except psycopg.Error as exc:
            self.pool.close()
            raise DatabaseError(
                f"cannot fill a pool of {pool_size} connections to {self.key}: {exc}"
            ) from None

    def _load_facts(self) -> DatasetFacts:
        # A direct connection first: it reports the real reason (refused, bad password, no
        # database) where a pool would only time out.
        try:
            with psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:

                def fetch(sql: str, params: Mapping[str, Any]) -> Sequence[Any]:
                    return conn.execute(sql, params).fetchall()

                return read_facts(fetch, self.dialect)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"cannot query PostgreSQL at {self.key}: {first}") from None

    def run(self, sql: str, params: Mapping[str, Any] | None) -> int:
        with self.pool.connection() as conn:
            # The SQL text is compiled from our own statements (or given by a locustfile's
            # author), never built from data.
            return len(conn.execute(sql, params).fetchall())

    def close(self) -> None:
        self.pool.close(timeout=1.0)


# The real thread-local: under gevent's patching threading.local is greenlet-local instead.
_ThreadLocal: type[Any] = monkey.get_original("threading", "local")


class SqliteBackend(Backend):
    """sqlite3 in native threads (a gevent ThreadPool), one read-only connection per thread."""

    request_type = "SQLITE"
    dialect = SQLiteDialect_pysqlite(paramstyle="named")

    def __init__(self, path: Path, threads: int) -> None:
        if not path.is_file():
            raise DatasetError(
                f"SQLite database {path} does not exist; give SqliteUser a dataset file as "
                f"--host or {settings.SQLITE_PATH_ENV} (make one with `harness dataset`)"
            )
        self.path = path.resolve()
        self.uri = f"file:{quote(str(self.path))}?mode=ro"
        self.pool = ThreadPool(threads)
        self._local = _ThreadLocal()
        try:
            super().__init__(str(self.path))
        except sqlite3.Error as exc:
            self.pool.kill()
            raise DatasetError(f"cannot read {self.path} as a reference dataset: {exc}") from None

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # mode=ro: a load test must never write the dataset under test.
            conn = sqlite3.connect(self.uri, uri=True)
            self._local.conn = conn
        return conn

    def _fetch_in_thread(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        return self._connection().execute(sql, params).fetchall()

    def _count_in_thread(self, sql: str, params: Mapping[str, Any] | None) -> int:
        return len(self._connection().execute(sql, params or ()).fetchall())

    def _load_facts(self) -> DatasetFacts:
        def fetch(sql: str, params: Mapping[str, Any]) -> Sequence[Any]:
            rows: list[Any] = self.pool.apply(self._fetch_in_thread, (sql, params))
            return rows

        return read_facts(fetch, self.dialect)

    def since_value(self, since: datetime) -> Any:
        # The reference schema stores timestamps as TEXT; compare text with text.
        return since.strftime(SQLITE_TIME_FORMAT)

    def run(self, sql: str, params: Mapping[str, Any] | None) -> int:
        # Parks only this greenlet while a native thread runs the query.
        rows: int = self.pool.apply(self._count_in_thread, (sql, params))
        return rows

    def close(self) -> None:
        self.pool.kill()


_backends: dict[tuple[Any, ...], Backend] = {}
_backends_failed: dict[tuple[Any, ...], HarnessError] = {}
# gevent-patched inside Locust: the first user opens the backend, the others wait for it.
_backends_lock = threading.Lock()


def shared_backend(key: tuple[Any, ...], make: Callable[[], Backend]) -> Backend:
    """The process's backend for ``key``, made once (a failure is remembered too)."""
    with _backends_lock:
        if key in _backends_failed:
            raise _backends_failed[key]
        backend = _backends.get(key)
        if backend is None:
            try:
                backend = make()
            except HarnessError as exc:
                _backends_failed[key] = exc
                raise
            _backends[key] = backend
        return backend


@events.quitting.add_listener
def _close_backends(**_kwargs: Any) -> None:
    with _backends_lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()


# -- users -------------------------------------------------------------------------------------


class DatabaseUser(WeightedTasks, User):
    """Runs the critical queries as named requests; see :class:`PostgresUser`, :class:`SqliteUser`.

    Subclasses may add ``task_<name>`` methods calling :meth:`execute` with SQL of their own.
    """

    abstract = True
    weights: ClassVar[dict[str, int]] = dict(CRITICAL_WEIGHTS)
    weights_env: ClassVar[str] = settings.DB_WEIGHTS_ENV
    # Database users stand for application threads issuing queries back to back.
    think_time: ClassVar[tuple[float, float]] = (0.0, 0.0)

    backend: Backend
    popularity: Popularity

    def open_backend(self) -> Backend:
        """The shared backend of this user's target (made on first use)."""
        raise NotImplementedError

    def on_start(self) -> None:
        """Open (once per process) the target and read the id ranges and anchor."""
        super().on_start()
        try:
            self.backend = self.open_backend()
            backend = self.backend
            self.popularity = shared_popularity(
                backend.key,
                self.resolved_exponent,
                self.popularity_seed(),
                lambda: backend.facts.ranges,
            )
        except HarnessError as exc:
            stop_test(self.environment, exc)

    def execute(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run ``sql`` as one request called ``name``, report it to Locust, return its rows.

        ``sql`` uses the driver's named placeholders: ``%(name)s`` for PostgreSQL, ``:name``
        for SQLite. A failure is reported with its exception and returns 0.
        """
        started_at = time.time()
        started = time.perf_counter()
        rows, error = 0, None
        try:
            # No parameters: None, so that a literal % or : in the SQL is not read as one.
            rows = self.backend.run(sql, params or None)
        except Exception as exc:  # every driver error is a failed request, not a dead user
            error = exc
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self.environment.events.request.fire(
            request_type=self.backend.request_type,
            name=name,
            response_time=elapsed_ms,
            response_length=rows,
            response=None,
            context=self.context(),
            exception=error,
            start_time=started_at,
            url=None,
        )
        return rows

    def critical_params(self, query: CompiledQuery) -> dict[str, Any]:
        """Parameters for one run of ``query``: skewed ids, the recent cutoff, the limit."""
        return draw_params(query, self.popularity, self.rng, self.backend.since)

    def run_critical(self, name: str) -> int:
        """Run the critical query ``name`` with freshly drawn parameters."""
        query = self.backend.queries[name]
        return self.execute(name, query.sql, self.critical_params(query))

    def task_top_discoveries(self) -> None:
        """Top discoveries by score."""
        self.run_critical("top_discoveries")

    def task_topic_timeline(self) -> None:
        """A topic's newest artifacts."""
        self.run_critical("topic_timeline")

    def task_citations_out(self) -> None:
        """What an artifact cites."""
        self.run_critical("citations_out")

    def task_citations_in(self) -> None:
        """Who cites an artifact."""
        self.run_critical("citations_in")

    def task_recent_discoveries(self) -> None:
        """Artifacts of the last 7 days before the dataset's anchor."""
        self.run_critical("recent_discoveries")

    def task_entity_profile(self) -> None:
        """An entity's most salient artifacts."""
        self.run_critical("entity_profile")


class PostgresUser(DatabaseUser):
    """The critical queries on PostgreSQL through psycopg 3 and a per-process pool.

    Target: ``--host postgresql://user:password@host:5432/db`` or ``HARNESS_PG_URL``.
    """

    #: Connections in the process's pool (``HARNESS_PG_POOL_SIZE`` overrides).
    pool_size: ClassVar[int] = 10
    #: Seconds a query waits for a pooled connection before failing (pool exhaustion).
    pool_timeout: ClassVar[float] = 30.0

    def open_backend(self) -> Backend:
        """The process's pool for this target."""
        url = self.host or os.environ.get(settings.PG_URL_ENV)
        name = type(self).__name__
        if not url:
            raise ConfigError(
                f"{name} needs a PostgreSQL URL: --host postgresql://user:password@host/db "
                f"or {settings.PG_URL_ENV}"
            )
        if not is_postgres(url):
            raise ConfigError(
                f"{name} needs a postgresql:// URL as --host, got {mask_url(url)!r} "
                "(for a SQLite file run SqliteUser)"
            )
        size = settings.env_positive_int(settings.PG_POOL_SIZE_ENV, self.pool_size)
        timeout = self.pool_timeout
        return shared_backend(
            ("pg", url, size, timeout), lambda: PostgresBackend(url, size, timeout)
        )


class SqliteUser(DatabaseUser):
    """The critical queries on a SQLite file, each in a native thread, read-only.

    Target: ``--host path/to/signals.db`` (or ``sqlite:///path``) or ``HARNESS_SQLITE_PATH``.
    """

    #: Native threads running this process's SQLite queries (``HARNESS_SQLITE_THREADS``).
    #: A few more than cores: more threads only queue on the GIL and SQLite's locks and
    #: inflate latency with handoffs (10 threads on 2 cores: 0.3 ms queries took 5-14 ms).
    sqlite_threads: ClassVar[int] = min(32, (os.cpu_count() or 1) + 2)

    def open_backend(self) -> Backend:
        """The process's thread pool for this file."""
        target = self.host or os.environ.get(settings.SQLITE_PATH_ENV)
        name = type(self).__name__
        if not target:
            raise ConfigError(
                f"{name} needs a SQLite file: --host path/to/signals.db or "
                f"{settings.SQLITE_PATH_ENV}"
            )
        if is_postgres(target) or target.startswith(("http://", "https://")):
            raise ConfigError(
                f"{name} needs a SQLite file as --host, got {mask_url(target)!r} "
                "(for PostgreSQL run PostgresUser)"
            )
        path = sqlite_path(target)
        threads = settings.env_positive_int(settings.SQLITE_THREADS_ENV, self.sqlite_threads)
        return shared_backend(
            ("sqlite", str(path.resolve()), threads), lambda: SqliteBackend(path, threads)
        )
