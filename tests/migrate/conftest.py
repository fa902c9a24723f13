"""Fixtures for the migration tests: the reference plan, small SQLite files, applying DDL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.urls import plain_postgres_url
from migrate import Plan, make_plan

MakeDb = Callable[..., Path]


@pytest.fixture(scope="session")
def reference_plan(reference_db: Path) -> Plan:
    """The plan for the session's reference dataset (read-only, shared)."""
    return make_plan(reference_db)


def write_db(
    path: Path,
    ddl: Iterable[str],
    rows: Mapping[str, Sequence[Sequence[Any]]] | None = None,
    *,
    journal: str = "DELETE",
) -> Path:
    """Create a SQLite file from ``ddl`` and insert ``rows`` (table -> tuples)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode = {journal}")
        for statement in ddl:
            conn.execute(statement)
        conn.execute("BEGIN")
        for table, values in (rows or {}).items():
            if not values:
                continue
            marks = ", ".join("?" * len(values[0]))
            quoted = '"' + table.replace('"', '""') + '"'
            conn.executemany(f"INSERT INTO {quoted} VALUES ({marks})", values)  # noqa: S608
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


@pytest.fixture
def make_db(tmp_path: Path) -> MakeDb:
    """Factory: ``make_db(ddl, rows, name="x.db")`` writes a SQLite file in the test's folder."""

    def make(
        ddl: Iterable[str],
        rows: Mapping[str, Sequence[Sequence[Any]]] | None = None,
        name: str = "source.db",
    ) -> Path:
        return write_db(tmp_path / name, ddl, rows)

    return make


def apply_ddl(url: str, sql: str) -> None:
    """Run a plan's SQL file on PostgreSQL in one transaction, as `psql -1 -f` would."""
    with psycopg.connect(plain_postgres_url(url)) as conn:
        conn.execute(sql.encode())
        conn.commit()


def pg_rows(url: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one catalog query."""
    with psycopg.connect(plain_postgres_url(url)) as conn:
        return conn.execute(query.encode(), params).fetchall()
