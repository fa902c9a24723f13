"""Seeding PostgreSQL with a reference dataset, for the reference API's PostgreSQL backend.

It creates the API's expected schema from :mod:`harness.target.tables` and copies the
dataset's rows with psycopg's COPY. It knows only the reference schema and trusts its rows
(the dataset generator wrote them): no casts to plan, no rejects. Migrating an application's
own SQLite database is ``harness migrate``'s job, which checks and proves every row.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from harness.schema import TABLES
from harness.target.tables import metadata
from harness.urls import plain_postgres_url, with_driver


def load_into_postgres(sqlite_file: Path, pg_url: str) -> dict[str, int]:
    """Create the reference schema on ``pg_url`` and copy every row; return counts.

    Tables are created bare, filled with COPY, and only then given their indexes and foreign
    keys: one sort per index and one validation per key, instead of row-by-row upkeep.
    """
    engine = create_engine(with_driver(pg_url, "psycopg"))
    try:
        with engine.begin() as conn:
            for model in metadata.sorted_tables:
                conn.execute(CreateTable(model, include_foreign_key_constraints=[]))
    finally:
        engine.dispose()
    counts: dict[str, int] = {}
    src = sqlite3.connect(f"file:{quote(str(sqlite_file))}?mode=ro", uri=True)
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
            dst.commit()
    finally:
        src.close()
    _finish_schema(pg_url)
    return counts


def _finish_schema(pg_url: str) -> None:
    """Indexes, then foreign keys, then identity positions and planner statistics."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as dst:
        # Index builds sort in memory up to this; the default 64 MB spills to disk at 1M rows.
        dst.execute("SET maintenance_work_mem = '256MB'")
        for model in metadata.sorted_tables:
            for index in model.indexes:
                dst.execute(str(CreateIndex(index).compile(dialect=dialect)))
        for model in metadata.sorted_tables:
            for fk in model.foreign_key_constraints:
                dst.execute(str(AddConstraint(fk).compile(dialect=dialect)))
        for model in metadata.sorted_tables:
            if "id" in model.c and model.c.id.primary_key and model.c.id.identity is not None:
                dst.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, 'id'), "
                        "coalesce(max(id), 0) + 1, false) FROM {i}"
                    ).format(t=sql.Literal(model.name), i=sql.Identifier(model.name))
                )
        dst.execute("ANALYZE")


REFERENCE_DATABASE = "harness_reference"
SEED_MARK = "harness seeded from "


def _dataset_facts_sqlite(path: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT key, value FROM dataset_info").fetchall())


def ensure_seeded(dataset: Path, server_url: str, database: str = REFERENCE_DATABASE) -> str:
    """A database on ``server_url`` holding ``dataset``'s rows; seeded only when it differs.

    The dataset's ``dataset_info`` (seed, size, anchor) identifies it: a database already
    holding the same facts is reused, one holding other facts is dropped and seeded again.
    """
    from urllib.parse import urlsplit, urlunsplit

    want = SEED_MARK + json.dumps(_dataset_facts_sqlite(dataset), sort_keys=True)
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))
    admin = plain_postgres_url(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        # The mark is written last, so a seed interrupted half-way is never reused.
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (database,),
        ).fetchone()
        if found is not None and found[0] == want:
            return url
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    load_into_postgres(dataset, url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(database), sql.Literal(want)
            )
        )
    return url


def clone_database(server_url: str, template: str, name: str) -> str:
    """A new database ``name`` copied from ``template`` (which must have no connections)."""
    from urllib.parse import urlsplit, urlunsplit

    with psycopg.connect(plain_postgres_url(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def drop_database(server_url: str, name: str) -> None:
    """Drop ``name`` if it exists, closing any connection left to it."""
    with psycopg.connect(plain_postgres_url(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
