"""The SQLite DDL the dataset writes and the typed tables the API queries describe one schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, inspect

from harness.schema import CRITICAL_INDEXES, TABLES
from harness.target.tables import metadata
from harness.urls import with_driver


def test_tables_and_columns_match(reference_db: Path) -> None:
    with sqlite3.connect(f"file:{reference_db}?mode=ro", uri=True) as conn:
        on_disk = {t: [c[1] for c in conn.execute(f'PRAGMA table_info("{t}")')] for t in TABLES}
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    # sqlite_sequence (AUTOINCREMENT) and sqlite_stat1 (ANALYZE) are SQLite's own.
    assert names - {"sqlite_sequence", "sqlite_stat1"} == set(TABLES) == set(metadata.tables)
    for name in TABLES:
        assert on_disk[name] == [c.name for c in metadata.tables[name].columns], name


def test_indexes_match(reference_db: Path) -> None:
    # sqlite_master rather than SQLAlchemy reflection, which skips expression indexes.
    with sqlite3.connect(f"file:{reference_db}?mode=ro", uri=True) as conn:
        on_disk = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    modelled = {ix.name for t in metadata.tables.values() for ix in t.indexes}
    assert modelled == on_disk
    assert set(CRITICAL_INDEXES) <= modelled


def test_postgres_copy_has_the_indexes(reference_pg: str) -> None:
    engine = create_engine(with_driver(reference_pg, "psycopg"))
    try:
        inspector = inspect(engine)
        on_pg = {ix["name"] for t in TABLES for ix in inspector.get_indexes(t)}
    finally:
        engine.dispose()
    modelled = {ix.name for t in metadata.tables.values() for ix in t.indexes}
    assert modelled <= on_pg
    assert set(CRITICAL_INDEXES) <= on_pg
