"""Rows PostgreSQL cannot take go to rejects/<table>.jsonl with the reason; the rest loads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import StrictStopError
from migrate.run import EXIT_REJECTED
from tests.migrate.conftest import MakeDb, pg_rows
from tests.migrate.test_run import migrate

CLEAN_ROWS = 40
# id -> (column, what the reason says) for each dirty kind the issue names.
DIRTY: dict[int, tuple[str, str]] = {
    100: ("qty", "not an integer"),
    101: ("price", "empty string is not a number"),
    102: ("flag", "holds 2"),
    103: ("flag", "holds 'yes'"),
    104: ("at", "not an ISO-8601 timestamp"),
    105: ("doc", "not valid JSON"),
    106: ("note", "NUL byte"),
    107: ("note", "not valid UTF-8"),
    109: ("code", "duplicate key (code)"),
    110: ("parent_id", "orphan: no row in items with id = 999"),
}


def dirty_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE items (
            id INTEGER PRIMARY KEY, qty INTEGER, price REAL, flag BOOLEAN, at DATETIME,
            doc JSON, note TEXT, code UNIQUE, parent_id INTEGER REFERENCES items (id)
        );
        """
    )
    base = (1, 1.0, 1, "2024-01-01 00:00:00", "{}", "x")
    rows: list[tuple[object, ...]] = [
        (i, i, i * 1.5, i % 2, f"2024-01-{i % 28 + 1:02d} 10:00", f"[{i}]", f"n{i}", f"c{i}", None)
        for i in range(1, CLEAN_ROWS + 1)
    ]

    def dirty(id_: int, column: int, value: object, code: object = None) -> tuple[object, ...]:
        values = list(base)
        values[column] = value
        return (id_, *values, f"d{id_}" if code is None else code, None)

    rows += [
        dirty(100, 0, "12k"),
        dirty(101, 1, ""),
        dirty(102, 2, 2),
        dirty(103, 2, "yes"),
        dirty(104, 3, "not a date"),
        dirty(105, 4, "{bad"),
        dirty(106, 5, "a\x00b"),
        # 5 and '5' are two values to SQLite (no type on `code`), one text value to PostgreSQL.
        dirty(108, 0, 1, code=5),
        dirty(109, 0, 1, code="5"),
        # SQLite enforces no foreign key unless asked to: an orphan.
        (*dirty(110, 0, 1)[:-1], 999),
    ]
    conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    # Text whose bytes are not UTF-8 can only be made in SQL.
    conn.execute(
        "INSERT INTO items VALUES (107, 1, 1.0, 1, '2024-01-01 00:00:00', '{}', "
        "CAST(? AS TEXT), 'd107', NULL)",
        (b"a\xffb",),
    )
    conn.commit()
    conn.close()
    return path


def reject_lines(out_dir: str, table: str = "items") -> list[dict[str, Any]]:
    path = Path(out_dir) / "rejects" / f"{table}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_dirty_value_is_rejected_with_its_reason_and_the_rest_loads(
    tmp_path: Path, pg_database: str
) -> None:
    source = dirty_db(tmp_path / "dirty.db")
    result = migrate(source, pg_database, tmp_path)
    assert result.exit_code == EXIT_REJECTED
    (items,) = result.tables
    assert (items.read, items.loaded, items.rejected_total) == (51, 41, len(DIRTY))
    assert items.rejected == {"copy": 8, "keys": 1, "foreign_keys": 1}
    records = reject_lines(result.out_dir)
    assert [r["key"]["id"] for r in records] == sorted(DIRTY)
    for record in records:
        column, reason = DIRTY[record["key"]["id"]]
        assert record["table"] == "items"
        assert record["column"] == column
        assert reason in record["reason"], record
    by_id = {r["key"]["id"]: r for r in records}
    assert by_id[100]["value"] == "12k" and by_id[100]["value_type"] == "text"
    assert by_id[100]["rowid"] == 100 and by_id[100]["row"]["note"] == "x"
    assert by_id[106]["value"] == "a\\x00b"  # escaped, never a raw NUL
    assert by_id[107]["value"] == "x'61ff62'"
    loaded = {r[0] for r in pg_rows(pg_database, "SELECT id FROM items")}
    assert loaded == set(range(1, CLEAN_ROWS + 1)) | {108}
    # The values that did load are the exact ones.
    assert pg_rows(pg_database, "SELECT qty, price, flag, note FROM items WHERE id = 3") == [
        (3, 4.5, True, "n3")
    ]


def test_a_value_only_postgresql_refuses_is_found_row_by_row(
    make_db: MakeDb, tmp_path: Path, pg_database: str
) -> None:
    # SQLite never enforced a length; the override asks PostgreSQL to, and only PostgreSQL
    # finds the row that is too long: the batch is halved until that row stands alone.
    rows = [(i, f"v{i}") for i in range(1, 500)] + [(500, "x" * 20)]
    source = make_db(["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"], {"t": rows})
    result = migrate(source, pg_database, tmp_path, overrides={"t.v": "varchar(10)"})
    assert result.exit_code == EXIT_REJECTED
    (record,) = reject_lines(result.out_dir, "t")
    assert record["rowid"] == 500 and record["column"] == "v"
    assert "PostgreSQL" in record["reason"] and "too long" in record["reason"]
    assert pg_rows(pg_database, "SELECT count(*) FROM t") == [(499,)]


def test_strict_stops_at_the_first_reject_and_resume_finishes(
    tmp_path: Path, pg_database: str
) -> None:
    source = dirty_db(tmp_path / "dirty.db")
    with pytest.raises(StrictStopError, match="first reject") as stopped:
        migrate(source, pg_database, tmp_path, strict=True)
    assert stopped.value.exit_code == 26
    assert stopped.value.record["key"] == {"id": 100}
    # Nothing of the refused chunk is in; the state says where the run stands.
    assert pg_rows(pg_database, "SELECT count(*) FROM items") == [(0,)]
    assert pg_rows(pg_database, "SELECT status, phase FROM harness_migrate.runs") == [
        ("stopped", "copy")
    ]
    resumed = migrate(source, pg_database, tmp_path, resume=True)
    assert resumed.resumed and resumed.exit_code == EXIT_REJECTED
    assert resumed.rows_loaded == 41 and resumed.rows_rejected == len(DIRTY)


def test_hostile_names_migrate_as_themselves(
    make_db: MakeDb, tmp_path: Path, pg_database: str
) -> None:
    hostile = 'a"; DROP TABLE b; --'
    column = "x\"y'z"
    q = '"' + hostile.replace('"', '""') + '"'
    c = '"' + column.replace('"', '""') + '"'
    source = make_db(
        [
            f"CREATE TABLE {q} (id INTEGER PRIMARY KEY, {c} INTEGER)",
            "CREATE TABLE b (id INTEGER PRIMARY KEY)",
        ],
        {hostile: [(1, 1), (2, "bad")], "b": [(1,)]},
    )
    result = migrate(source, pg_database, tmp_path)
    assert result.exit_code == EXIT_REJECTED
    tables = {
        r[0]
        for r in pg_rows(pg_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables == {hostile, "b"}
    assert pg_rows(pg_database, f"SELECT id, {c} FROM {q}") == [(1, 1)]  # noqa: S608
    files = list((Path(result.out_dir) / "rejects").iterdir())
    assert len(files) == 1 and files[0].parent == Path(result.out_dir) / "rejects"
    assert '"' not in files[0].name and " " not in files[0].name
    (record,) = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert record["table"] == hostile and record["column"] == column


def test_a_column_named_rowid_does_not_hide_the_rowid(
    make_db: MakeDb, tmp_path: Path, pg_database: str
) -> None:
    rows = [(f"r{i}", i) for i in range(50)] + [(None, 50)]
    source = make_db(["CREATE TABLE t (rowid TEXT, n INTEGER)"], {"t": rows})
    result = migrate(source, pg_database, tmp_path, chunk_rows=10)
    assert result.exit_code == 0 and result.rows_loaded == 51
    assert pg_rows(pg_database, 'SELECT count(*), count("rowid") FROM t') == [(51, 50)]


def test_a_source_written_during_the_run_fails_it(
    make_db: MakeDb, tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import migrate.run as run_module
    from migrate.errors import ResumeError

    source = make_db(["CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)"], {"t": [(1, 1)]})
    planned = run_module.make_plan  # type: ignore[attr-defined]

    def plan_then_write(*args: Any, **kwargs: Any) -> Any:
        plan = planned(*args, **kwargs)
        conn = sqlite3.connect(source)
        conn.execute("UPDATE t SET n = 7.5")  # a writer after the profile: 7.5 in INTEGER
        conn.commit()
        conn.close()
        return plan

    monkeypatch.setattr(run_module, "make_plan", plan_then_write)
    with pytest.raises(ResumeError, match="changed while it was being copied") as err:
        migrate(source, pg_database, tmp_path)
    assert err.value.exit_code == 28
