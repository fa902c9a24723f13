"""Casts: every kind on the reference schema, dirty columns flagged with counts, overrides."""

from __future__ import annotations

import pytest

from migrate import Plan, PlanOptionError, make_plan
from migrate.casts import parse_pg_type
from tests.migrate.conftest import MakeDb


def _cast(plan: Plan, table: str, column: str) -> tuple[str, bool]:
    cast = plan.table(table).column(column).cast
    return cast.pg_type, cast.identity


@pytest.mark.parametrize(
    ("table", "column", "expected"),
    [
        ("artifacts", "id", ("bigint", True)),  # INTEGER PRIMARY KEY -> identity
        ("bookmarks", "id", ("bigint", True)),  # ... with AUTOINCREMENT
        ("scores", "artifact_id", ("bigint", False)),  # rowid that is also a foreign key
        ("artifacts", "source_id", ("bigint", False)),  # INTEGER
        ("scores", "discovery_score", ("double precision", False)),  # REAL, never real
        ("artifacts", "is_retracted", ("boolean", False)),  # BOOLEAN holding 0/1
        ("artifacts", "published_at", ("timestamp", False)),  # TEXT holding ISO timestamps
        ("entities", "first_seen", ("timestamp", False)),  # nullable, same
        ("artifacts", "metadata", ("jsonb", False)),  # JSON
        ("artifacts", "fingerprint", ("bytea", False)),  # BLOB
        ("artifacts", "title", ("text", False)),  # TEXT
        ("dataset_info", "value", ("text", False)),  # TEXT, only partly timestamps
    ],
)
def test_reference_casts(
    reference_plan: Plan, table: str, column: str, expected: tuple[str, bool]
) -> None:
    assert _cast(reference_plan, table, column) == expected
    cast = reference_plan.table(table).column(column).cast
    assert cast.reason
    assert cast.rejects == 0


def test_reference_reasons_say_why(reference_plan: Plan) -> None:
    score = reference_plan.table("scores").column("discovery_score").cast
    assert "bit for bit" in score.reason and "single precision" in score.reason
    published = reference_plan.table("artifacts").column("published_at").cast
    assert "ISO-8601" in published.reason
    ident = reference_plan.table("artifacts").column("id").cast
    assert "sequence past the largest id" in ident.reason
    value = reference_plan.table("dataset_info").column("value").cast
    assert any("ISO-8601" in note for note in value.notes)


DIRTY_DDL = [
    """CREATE TABLE d (
        id INTEGER PRIMARY KEY,
        score REAL,
        n INTEGER,
        flag BOOLEAN,
        ts DATETIME,
        doc JSON,
        small SMALLINT,
        wide SMALLINT,
        price DECIMAL(10, 2),
        anything,
        day DATE,
        epoch TIMESTAMP,
        stamped TEXT,
        words BOOLEAN
    )""",
]


def _dirty_rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for i in range(1, 301):
        rows.append(
            (
                i,
                i / 3,
                i,
                i % 2,
                f"2024-02-{1 + i % 28:02d} 12:00:00",
                f'{{"i": {i}}}',
                i,
                i * 1_000,
                i / 4,
                i,
                f"2024-03-{1 + i % 28:02d}",
                1_700_000_000 + i,
                f"2024-02-{1 + i % 28:02d}T12:00:00+01:00",
                "true" if i % 2 else "false",
            )
        )
    rows[0] = (1, "n/a", "12k", 2, "yesterday", "{bad", 1, 1, 0.25, 1, "2024-03-01", 1, None, "x")
    rows[1] = (2, "", 2.5, "yes", 1_700_000_000, "[1,", 2, 2, 0.5, 2, "2024-03-02", 2, None, "y")
    return rows


@pytest.fixture
def dirty_plan(make_db: MakeDb) -> Plan:
    return make_plan(make_db(DIRTY_DDL, {"d": _dirty_rows()}))


def test_mixed_storage_keeps_the_type_and_counts_rejects(dirty_plan: Plan) -> None:
    table = dirty_plan.table("d")
    score = table.column("score").cast
    assert (score.pg_type, score.rejects) == ("double precision", 2)
    assert "'n/a'" in score.rejects_detail and "mixed storage" in score.reason
    n = table.column("n").cast
    assert (n.pg_type, n.rejects) == ("bigint", 2)
    assert "'12k'" in n.rejects_detail
    flag = table.column("flag").cast
    assert (flag.pg_type, flag.rejects) == ("boolean", 2)
    ts = table.column("ts").cast
    assert (ts.pg_type, ts.rejects) == ("timestamp", 2)
    doc = table.column("doc").cast
    assert (doc.pg_type, doc.rejects) == ("jsonb", 2)
    rejects = {item.name for item in dirty_plan.review if item.kind == "rejects"}
    assert {"d.score", "d.n", "d.flag", "d.ts", "d.doc"} <= rejects
    assert "the copy will reject 2 values" in dirty_plan.ddl()


def test_declared_types_and_ranges(dirty_plan: Plan) -> None:
    table = dirty_plan.table("d")
    assert table.column("small").cast.pg_type == "smallint"
    wide = table.column("wide").cast
    assert wide.pg_type == "bigint" and "outside smallint" in wide.reason
    assert table.column("price").cast.pg_type == "numeric"
    assert table.column("anything").cast.pg_type == "bigint"
    assert table.column("day").cast.pg_type == "date"
    epoch = table.column("epoch").cast
    assert epoch.pg_type == "bigint" and "epoch_s" in epoch.reason
    assert table.column("stamped").cast.pg_type == "timestamptz"
    words = table.column("words").cast
    assert words.pg_type == "text" and "0/1" in words.reason


def test_timezone_makes_timestamps_timestamptz(make_db: MakeDb) -> None:
    db = make_db(["CREATE TABLE t (at TEXT)"], {"t": [("2024-01-01 00:00:00",)]})
    assert make_plan(db).table("t").column("at").cast.pg_type == "timestamp"
    cast = make_plan(db, timezone="Europe/Paris").table("t").column("at").cast
    assert cast.pg_type == "timestamptz" and "Europe/Paris" in cast.reason
    with pytest.raises(PlanOptionError, match="IANA"):
        make_plan(db, timezone="Mars/Olympus")


def test_overrides_apply_and_are_checked(make_db: MakeDb) -> None:
    db = make_db(DIRTY_DDL, {"d": _dirty_rows()}, name="again.db")
    plan = make_plan(db, overrides={"d.stamped": "text", "D.Doc": "json", "d.n": "numeric(12,2)"})
    table = plan.table("d")
    assert table.column("stamped").cast.pg_type == "text"
    doc = table.column("doc").cast
    assert (doc.pg_type, doc.override, doc.rejects) == ("json", True, 2)
    assert table.column("n").cast.pg_type == "numeric(12, 2)"
    assert plan.overrides == {"d.stamped": "text", "d.doc": "json", "d.n": "numeric(12,2)"}
    with pytest.raises(PlanOptionError, match="names no column"):
        make_plan(db, overrides={"d.nope": "text"})
    with pytest.raises(PlanOptionError, match="not a PostgreSQL type"):
        make_plan(db, overrides={"d.n": "bigint; DROP TABLE d"})


def test_override_key_with_dots_in_names(make_db: MakeDb) -> None:
    db = make_db(['CREATE TABLE "a.b" ("c.d" TEXT)'], {"a.b": [("1",)]})
    plan = make_plan(db, overrides={"a.b.c.d": "integer"})
    assert plan.table("a.b").column("c.d").cast.pg_type == "integer"


def test_null_primary_keys_are_rejects(make_db: MakeDb) -> None:
    db = make_db(
        ["CREATE TABLE k (code TEXT PRIMARY KEY, v INTEGER)"], {"k": [(None, 1), ("a", 2)]}
    )
    cast = make_plan(db).table("k").column("code").cast
    assert cast.rejects == 1 and any("NULL key" in n for n in cast.notes)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("jsonb", ("jsonb", "json")),
        ("timestamp with time zone", ("timestamptz", "timestamptz")),
        ("float8", ("double precision", "float")),
        ("int4", ("integer", "integer")),
        ("varchar(10)", ("varchar(10)", "text")),
        ("bytea", ("bytea", "bytes")),
    ],
)
def test_parse_pg_type(given: str, expected: tuple[str, str]) -> None:
    assert parse_pg_type(given) == expected


def test_source_as_a_sqlite_url_and_generated_columns(make_db: MakeDb) -> None:
    db = make_db(["CREATE TABLE g (n INTEGER, twice INTEGER AS (n * 2))"], {"g": [(1,)]})
    plan = make_plan(f"sqlite:///{db}")
    table = plan.table("g")
    assert table.column("n").loaded and not table.column("twice").loaded
    assert table.column("twice").generated is not None


@pytest.mark.parametrize("given", ["uuid", "time", "interval", "integer[]", "money", "inet"])
def test_types_the_copy_cannot_load_exactly_are_refused(given: str) -> None:
    with pytest.raises(PlanOptionError, match="cannot load that type exactly"):
        parse_pg_type(given)


def test_values_a_typmod_would_round_are_rejects_not_rounded() -> None:
    from decimal import Decimal

    from migrate.convert import CarefulConverter, ColumnSpec, TableSpec, fast_converter

    spec = TableSpec(
        "t",
        (
            ColumnSpec("at", "timestamp", "timestamp(0)", False, ("text",)),
            ColumnSpec("n", "numeric", "numeric(5,2)", False, ("real",)),
        ),
        (),
        False,
    )
    careful = CarefulConverter(spec)
    row, bad = careful.row(("2024-01-01 10:00:00.5", 1.005))
    assert row is None and [b.column for b in bad] == ["at", "n"]
    assert careful.row(("2024-01-01 10:00:01", 1.5))[0] is not None
    with pytest.raises(ValueError, match="fractional seconds"):
        fast_converter(spec)([("2024-01-01 10:00:00.5", 1.5)])
    assert careful.row(("2024-01-01 10:00:01", "١٢"))[1][0].reason.startswith("text is not")
    assert Decimal("1.5") == careful.row(("2024-01-01 10:00:01", 1.5))[0][1]  # type: ignore[index]
