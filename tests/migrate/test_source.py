"""Reading a SQLite schema: every feature of the reference schema, odd DDL, bad files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from harness.schema import CREATE_INDEXES, TABLES
from migrate import (
    CorruptSourceError,
    NotSQLiteError,
    SourceLockedError,
    SourceNotFoundError,
    read_schema,
)
from migrate.errors import MigrationError
from tests.migrate.conftest import MakeDb, write_db


def test_reads_every_table_column_and_constraint(reference_db: Path) -> None:
    schema = read_schema(reference_db)
    assert [t.name for t in schema.tables] == list(TABLES)
    artifacts = schema.table("artifacts")
    assert [c.name for c in artifacts.columns][:3] == ["id", "external_id", "source_id"]
    created = artifacts.column("created_at")
    assert (created.declared_type, created.not_null, created.default) == (
        "TEXT",
        True,
        "datetime('now')",
    )
    assert artifacts.column("is_retracted").declared_type == "BOOLEAN"
    assert artifacts.rowid_alias == "id"
    assert {c.expression for c in artifacts.checks} >= {
        "length(title) > 0",
        "is_retracted IN (0, 1)",
    }
    citations = schema.table("citations")
    assert citations.primary_key == ("citing_id", "cited_id")
    assert [(c.expression, c.column) for c in citations.checks] == [("citing_id <> cited_id", None)]
    topics = schema.table("topics")
    assert topics.column("slug").collation == "NOCASE"
    (fk,) = topics.foreign_keys
    assert (fk.columns, fk.ref_table, fk.on_delete) == (("parent_id",), "topics", "SET NULL")
    assert schema.table("bookmarks").autoincrement
    assert schema.sequences["bookmarks"] == max(schema.sequences.values())
    assert not any(t.problems for t in schema.tables)


def test_reads_partial_expression_desc_and_collate_indexes(reference_db: Path) -> None:
    schema = read_schema(reference_db)
    created = [i for t in schema.tables for i in t.indexes if i.origin == "c"]
    assert len(created) == len(CREATE_INDEXES)
    live = next(i for i in created if i.name == "ix_artifacts_published_live")
    assert live.where == "is_retracted = 0"
    assert [(k.column, k.desc) for k in live.keys] == [("published_at", True)]
    lower = next(i for i in created if i.name == "ix_entities_lower_name")
    assert [(k.column, k.expression) for k in lower.keys] == [(None, "lower(name)")]
    slug = next(i for i in created if i.name == "ux_topics_slug")
    assert slug.unique and slug.keys[0].collation == "NOCASE"


def test_reads_views_and_triggers(reference_db: Path) -> None:
    schema = read_schema(reference_db)
    (view,) = schema.views
    assert view.name == "live_discoveries"
    assert view.columns == ("id", "title", "published_at", "discovery_score")
    (trigger,) = schema.triggers
    assert (trigger.name, trigger.table) == ("artifacts_touch_updated_at", "artifacts")
    assert "datetime('now')" in trigger.sql


def test_reading_never_changes_the_file(make_db: MakeDb) -> None:
    db = make_db(["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"], {"t": [(1, "a")]})
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    read_schema(db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_odd_but_valid_ddl(make_db: MakeDb) -> None:
    db = make_db(
        [
            "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT UNIQUE)",
            """CREATE TABLE [odd table] (
                k TEXT PRIMARY KEY COLLATE NOCASE,
                "select" INT CONSTRAINT positive CHECK ("select" > 0),
                v ANY,
                u TEXT UNIQUE ON CONFLICT REPLACE,
                g INTEGER GENERATED ALWAYS AS ("select" * 2) STORED,
                p_id INTEGER REFERENCES p (id) ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED,
                CONSTRAINT pair CHECK (k <> u)
            ) WITHOUT ROWID, STRICT""",
        ]
    )
    table = read_schema(db).table("odd table")
    assert table.without_rowid and table.strict
    assert table.rowid_alias is None
    assert table.column("k").collation == "NOCASE"
    assert [(c.name, c.expression) for c in table.checks] == [
        ("positive", '"select" > 0'),
        ("pair", "k <> u"),
    ]
    assert table.column("g").generated == '"select" * 2'
    assert table.column("g").generated_stored
    (fk,) = table.foreign_keys
    assert fk.deferred and fk.on_update == "CASCADE"
    assert table.problems == ()


def test_int_primary_key_is_not_the_rowid(make_db: MakeDb) -> None:
    db = make_db(
        [
            "CREATE TABLE a (id INT PRIMARY KEY)",
            "CREATE TABLE b (id INTEGER PRIMARY KEY DESC)",
            "CREATE TABLE c (id INTEGER PRIMARY KEY)",
        ]
    )
    schema = read_schema(db)
    assert [schema.table(n).rowid_alias for n in "abc"] == [None, None, "id"]


# -- bad input ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such file") as err:
        read_schema(tmp_path / "nope.db")
    assert err.value.exit_code == 21


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="not a file"):
        read_schema(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"id,name\n1,a\n" * 100, "not a SQLite database")],
)
def test_not_sqlite(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "data.db"
    path.write_bytes(content)
    with pytest.raises(NotSQLiteError, match=message) as err:
        read_schema(path)
    assert err.value.exit_code == 22
    assert str(path) in str(err.value)


def _big_db(path: Path) -> Path:
    rows = [(i, f"value {i}" * 20) for i in range(3_000)]
    return write_db(path, ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"], {"t": rows})


def test_truncated_file(tmp_path: Path) -> None:
    db = _big_db(tmp_path / "cut.db")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptSourceError, match=r"damaged|quick_check") as err:
        read_schema(db)
    assert err.value.exit_code == 23
    assert ".recover" in str(err.value)


def test_corrupt_pages(tmp_path: Path) -> None:
    db = _big_db(tmp_path / "bad.db")
    data = bytearray(db.read_bytes())
    page = 4096
    data[3 * page : 6 * page] = b"\xa5" * (3 * page)  # garbage over b-tree pages
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptSourceError):
        read_schema(db)


def test_locked_by_a_writer(tmp_path: Path) -> None:
    db = _big_db(tmp_path / "busy.db")
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        with pytest.raises(SourceLockedError, match="locked") as err:
            read_schema(db, timeout=0.05)
        assert err.value.exit_code == 24
        assert isinstance(err.value, MigrationError)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
