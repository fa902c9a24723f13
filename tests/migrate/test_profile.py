"""Profiling: exact storage counts, sampled shapes, a bounded and repeatable sample."""

from __future__ import annotations

from pathlib import Path

from migrate import profile_schema, read_schema
from migrate.profile import text_shape
from tests.migrate.conftest import MakeDb

MIXED_DDL = [
    "CREATE TABLE m (id INTEGER PRIMARY KEY, score REAL, n INTEGER, note TEXT, ts DATETIME)",
]


def _mixed_rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = [
        (i, i / 7, i, f"note {i}", f"2024-01-{1 + i % 28:02d} 10:00:00") for i in range(1, 501)
    ]
    rows += [(501, "n/a", "12k", None, "yesterday"), (502, "", 3.5, None, 1_700_000_000)]
    rows += [(503, b"\x00\x01", None, None, None)]
    return rows


def test_mixed_storage_is_counted_exactly(make_db: MakeDb) -> None:
    db = make_db(MIXED_DDL, {"m": _mixed_rows()})
    profile = profile_schema(db, read_schema(db))["m"]
    assert profile.rows == 503
    score = profile.columns["score"]
    assert score.storage == {"real": 500, "text": 2, "blob": 1}
    assert score.mixed
    assert "'n/a'" in score.examples["storage:text"]
    n = profile.columns["n"]
    assert n.storage == {"integer": 500, "text": 1, "real": 1}
    assert n.nulls == 1
    ts = profile.columns["ts"]
    assert ts.exact["iso"] == 500
    assert ts.storage == {"text": 501, "integer": 1}


def test_shapes_of_the_reference_columns(reference_db: Path) -> None:
    profiles = profile_schema(reference_db, read_schema(reference_db))
    artifacts = profiles["artifacts"].columns
    assert artifacts["published_at"].shapes == {"iso_timestamp": artifacts["published_at"].sampled}
    assert artifacts["published_at"].exact["iso"] == profiles["artifacts"].rows
    assert artifacts["metadata"].exact["json"] == artifacts["metadata"].non_null
    assert artifacts["is_retracted"].exact["bool01"] == profiles["artifacts"].rows
    assert artifacts["fingerprint"].storage == {"blob": artifacts["fingerprint"].non_null}
    assert artifacts["id"].storage == {"integer": profiles["artifacts"].rows}


def test_sample_is_bounded_and_repeatable(reference_db: Path) -> None:
    schema = read_schema(reference_db)
    first = profile_schema(reference_db, schema, sample_rows=200)
    again = profile_schema(reference_db, schema, sample_rows=200, workers=1)
    citations = first["citations"]
    assert citations.rows > 1_000
    assert citations.sampled_rows <= 200
    for name, table in first.items():
        for col, prof in table.columns.items():
            assert prof.to_dict() == again[name].columns[col].to_dict(), (name, col)


def test_empty_and_without_rowid_tables(make_db: MakeDb) -> None:
    db = make_db(
        [
            "CREATE TABLE e (id INTEGER PRIMARY KEY, v TEXT)",
            "CREATE TABLE w (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID",
        ],
        {"w": [(f"k{i:04d}", i) for i in range(1_000)]},
    )
    profiles = profile_schema(db, read_schema(db), sample_rows=100)
    assert profiles["e"].rows == 0 and profiles["e"].columns["v"].storage == {}
    assert profiles["w"].rows == 1_000
    assert profiles["w"].sampled_rows == 100
    assert profiles["w"].max_rowid is None


def test_text_shapes() -> None:
    assert text_shape("2024-01-02") == "iso_date"
    assert text_shape("2024-01-02T03:04:05.123") == "iso_timestamp"
    assert text_shape("2024-01-02 03:04:05+02:00") == "iso_timestamp_offset"
    assert text_shape('{"a": [1, 2]}') == "json"
    assert text_shape("{not json") == "other_text"
    assert text_shape("1") == "bool01_text"
    assert text_shape("-12") == "integer_text"
    assert text_shape("yes") == "boolean_word"
    assert text_shape("") == "empty"
