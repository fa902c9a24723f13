"""Opening the API's database: one SQLAlchemy async engine for SQLite and PostgreSQL.

Also the preflight check ``harness serve`` runs before it starts: a missing file, a file that
is not SQLite, a database without the reference schema, an unreachable server or a wrong
password each give one line naming the problem (never the password).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from harness.errors import DatabaseError, DatasetError
from harness.target.settings import ApiSettings
from harness.urls import is_postgres, mask_url, plain_postgres_url, sqlite_path, with_driver

SQLITE_MAGIC = b"SQLite format 3\x00"
# A write waits this long for SQLite's single writer lock before failing (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 5_000


def backend_of(db: str) -> str:
    """``"postgresql"`` or ``"sqlite"`` for a ``--db`` value (URL or file path)."""
    return "postgresql" if is_postgres(db) else "sqlite"


def check_sqlite_file(path: Path) -> None:
    """Raise :class:`DatasetError` unless ``path`` is a readable SQLite file with the schema."""
    if not path.exists():
        raise DatasetError(
            f"{path}: no such file; create one with `harness dataset -o {path}` "
            "(serve never creates an empty database)"
        )
    if not path.is_file():
        raise DatasetError(f"{path}: not a file")
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    if header != SQLITE_MAGIC:
        raise DatasetError(f"{path}: not a SQLite database (bad header)")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'artifacts'"
            ).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatasetError(
            f"{path}: SQLite cannot read it ({exc}); the file may be corrupt"
        ) from None
    if not found:
        raise DatasetError(
            f"{path}: SQLite file without the reference schema (no 'artifacts' table); "
            "generate one with `harness dataset`"
        )


def check_postgres_schema(url: str) -> None:
    """Raise unless the PostgreSQL at ``url`` answers and holds the reference schema."""
    import psycopg

    from harness.services import check_postgres

    check_postgres(url)
    try:
        with psycopg.connect(plain_postgres_url(url), connect_timeout=5) as conn:
            found = conn.execute("SELECT to_regclass('artifacts') IS NOT NULL").fetchone()
    except psycopg.Error as exc:
        raise DatabaseError(f"PostgreSQL at {mask_url(url)}: {type(exc).__name__}") from None
    if not found or not found[0]:
        raise DatasetError(
            f"PostgreSQL at {mask_url(url)} has no 'artifacts' table; migrate a dataset into it "
            "first (`harness migrate run`)"
        )


def preflight(db: str) -> str:
    """Check the database before serving; return the backend name."""
    if is_postgres(db):
        check_postgres_schema(db)
        return "postgresql"
    check_sqlite_file(sqlite_path(db))
    return "sqlite"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def make_engine(settings: ApiSettings) -> AsyncEngine:
    """The one async engine the API's queries run through, pool sized from ``settings``."""
    pool = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_pre_ping": False,
    }
    if is_postgres(settings.db):
        return create_async_engine(with_driver(settings.db, "asyncpg"), **pool)
    path = sqlite_path(settings.db).resolve()
    # mode=rw: the API must never create an empty database by accident.
    url = f"sqlite+aiosqlite:///file:{quote(str(path))}?mode=rw&uri=true"
    engine = create_async_engine(url, **pool)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine
