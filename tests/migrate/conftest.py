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


def catalog(url: str, schema: str = "public") -> dict[str, list[tuple[Any, ...]]]:
    """What a schema holds, as PostgreSQL prints it: columns (type, NOT NULL, default,
    identity), constraints, indexes and views; for comparing two databases."""
    queries = {
        "columns": (
            "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, "
            "column_default, identity_generation FROM information_schema.columns "
            "WHERE table_schema = %s ORDER BY 1, 2"
        ),
        "constraints": (
            "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = %s ORDER BY 1, 2"
        ),
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1",
        "views": ("SELECT viewname, definition FROM pg_views WHERE schemaname = %s ORDER BY 1"),
    }
    return {k: pg_rows(url, q, (schema,)) for k, q in queries.items()}


def relations(url: str) -> list[tuple[str, str, str]]:
    """Every relation of the database outside the system schemas: (schema, name, kind)."""
    return [
        (str(s), str(n), str(k))
        for s, n, k in pg_rows(
            url,
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%%' ORDER BY 1, 2",
        )
    ]
