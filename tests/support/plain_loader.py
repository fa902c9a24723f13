"""A plain SQLite -> PostgreSQL loader for test fixtures and benchmarks.

It creates the API's expected schema from :mod:`harness.target.tables` and copies rows with
psycopg's COPY, with no checks and no rejects: just enough to put the reference dataset on
PostgreSQL. The real migration (``harness migrate``) is the product; this is a fixture.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import create_engine

from harness.schema import TABLES
from harness.target.tables import metadata
from harness.urls import plain_postgres_url, with_driver


def load_into_postgres(sqlite_file: Path, pg_url: str) -> dict[str, int]:
    """Create the reference schema on ``pg_url`` and copy every row; return counts."""
    engine = create_engine(with_driver(pg_url, "psycopg"))
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    counts: dict[str, int] = {}
    src = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    try:
        with psycopg.connect(plain_postgres_url(pg_url)) as dst:
            for table in TABLES:
                cur = src.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (our own table names)
                columns = [d[0] for d in cur.description]
                stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                n = 0
                with dst.cursor().copy(stmt) as copy:
                    for row in cur:
                        copy.write_row(row)
                        n += 1
                counts[table] = n
            for model in metadata.sorted_tables:
                if "id" in model.c and model.c.id.primary_key and model.c.id.identity is not None:
                    dst.execute(
                        sql.SQL(
                            "SELECT setval(pg_get_serial_sequence({t}, 'id'), "
                            "coalesce(max(id), 0) + 1, false) FROM {i}"
                        ).format(t=sql.Literal(model.name), i=sql.Identifier(model.name))
                    )
            dst.commit()
            dst.autocommit = True
            dst.execute("ANALYZE")
    finally:
        src.close()
    return counts
