"""``harness migrate run`` on the reference dataset: every row, every value, the whole schema."""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from harness.urls import plain_postgres_url
from migrate import MigrateOptions, MigrationResult, run_migration
from tests.migrate.conftest import MakeDb, apply_ddl, catalog, pg_rows


def migrate(source: Path, url: str, tmp_path: Path, **options: object) -> MigrationResult:
    """Run a migration with the test's defaults: two workers, small chunks, no bars."""
    opts = MigrateOptions(
        source=source,
        pg_url=url,
        runs_dir=tmp_path / "runs",
        workers=2,
        chunk_rows=2_000,
        progress=False,
    )
    for key, value in options.items():
        setattr(opts, key, value)
    return run_migration(opts)


def sqlite_rows(path: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def migrated(
    reference_db: Path, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MigrationResult, str]]:
    """The reference dataset migrated once for the module's read-only checks."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    name = f"harness_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}"))
    result = migrate(reference_db, url, tmp_path_factory.mktemp("migrate"))
    yield result, url
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_row_arrives_and_the_counts_are_proved(
    migrated: tuple[MigrationResult, str], reference_db: Path
) -> None:
    result, url = migrated
    assert result.exit_code == 0
    assert result.verified and result.rows_rejected == 0
    for table in result.tables:
        count = f'SELECT count(*) FROM "{table.name}"'  # noqa: S608 - names from the dataset
        (sqlite_count,) = sqlite_rows(reference_db, count)[0]
        (pg_count,) = pg_rows(url, count)[0]
        assert table.source_rows == table.read == table.loaded == sqlite_count == pg_count
    summary = json.loads((Path(result.out_dir) / "summary.json").read_text())
    assert summary["rows"] == {"read": result.rows_read, "loaded": result.rows_read, "rejected": 0}
    assert (Path(result.out_dir) / "plan.sql").read_text().startswith("-- PostgreSQL schema")


def test_real_values_round_trip_bit_for_bit(
    migrated: tuple[MigrationResult, str], reference_db: Path
) -> None:
    _, url = migrated
    query = "SELECT artifact_id, discovery_score, novelty, impact FROM scores ORDER BY 1"
    source = sqlite_rows(reference_db, query)
    target = pg_rows(url, query)
    assert len(source) == len(target) > 1000

    def bits(rows: list[tuple[object, ...]]) -> list[bytes]:
        return [struct.pack("<qddd", *row) for row in rows]

    assert bits(source) == bits(target)


def test_timestamps_booleans_json_and_bytes_keep_their_values(
    migrated: tuple[MigrationResult, str], reference_db: Path
) -> None:
    _, url = migrated
    source = sqlite_rows(
        reference_db,
        "SELECT id, published_at, updated_at, is_retracted, metadata, fingerprint "
        "FROM artifacts ORDER BY id",
    )
    target = {
        r[0]: r[1:]
        for r in pg_rows(
            url,
            "SELECT id, published_at, updated_at, is_retracted, metadata::text, fingerprint "
            "FROM artifacts",
        )
    }
    for id_, published, updated, retracted, metadata, fingerprint in source:
        pub, upd, ret, meta, fp = target[id_]
        assert pub == datetime.fromisoformat(str(published))
        assert upd == (datetime.fromisoformat(str(updated)) if updated is not None else None)
        assert ret is bool(retracted)
        assert (json.loads(meta) if meta else None) == (
            json.loads(str(metadata)) if metadata else None
        )
        assert (bytes(fp) if fp is not None else None) == fingerprint


def test_schema_equals_the_reviewed_plan_file(
    migrated: tuple[MigrationResult, str], pg_database: str
) -> None:
    result, url = migrated
    apply_ddl(pg_database, (Path(result.out_dir) / "plan.sql").read_text())
    # The plan file has every feature (tests/migrate/test_plan_postgres.py checks them: NOT
    # NULL, CHECK, partial and DESC and expression indexes, defaults, identities, foreign
    # key actions); the migration, which adds keys and indexes after the data, must end
    # with exactly the same catalog.
    assert catalog(url) == catalog(pg_database)


def test_identity_sequences_continue_after_the_largest_id(
    migrated: tuple[MigrationResult, str], reference_db: Path, pg_database: str
) -> None:
    _, url = migrated
    (max_artifact,) = sqlite_rows(reference_db, "SELECT max(id) FROM artifacts")[0]
    (seq,) = sqlite_rows(reference_db, "SELECT seq FROM sqlite_sequence WHERE name='bookmarks'")[0]
    assert isinstance(max_artifact, int) and isinstance(seq, int)
    with psycopg.connect(plain_postgres_url(url)) as conn:
        art = conn.execute("SELECT nextval(pg_get_serial_sequence('artifacts', 'id'))").fetchone()
        book = conn.execute("SELECT nextval(pg_get_serial_sequence('bookmarks', 'id'))").fetchone()
        conn.rollback()
    assert art == (max_artifact + 1,)
    assert book == (seq + 1,)


def test_second_run_needs_if_exists_and_replace_starts_over(
    reference_db: Path, pg_database: str, tmp_path: Path
) -> None:
    from migrate.errors import TargetError

    first = migrate(reference_db, pg_database, tmp_path)
    before = catalog(pg_database)
    with pytest.raises(TargetError, match="--if-exists replace"):
        migrate(reference_db, pg_database, tmp_path)
    with pytest.raises(TargetError, match="--if-exists fail"):
        migrate(reference_db, pg_database, tmp_path, if_exists="fail")
    assert catalog(pg_database) == before
    again = migrate(reference_db, pg_database, tmp_path, if_exists="replace")
    assert again.exit_code == 0 and again.run_id != first.run_id
    assert again.rows_loaded == first.rows_loaded
    runs = pg_rows(pg_database, "SELECT id FROM harness_migrate.runs")
    assert runs == [(again.run_id,)]


def test_tables_go_to_the_schema_asked_for(
    make_db: MakeDb, pg_database: str, tmp_path: Path
) -> None:
    source = make_db(
        ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"], {"t": [(1, "a"), (2, "b")]}
    )
    result = migrate(source, pg_database, tmp_path, schema="staging")
    assert result.exit_code == 0
    assert pg_rows(pg_database, "SELECT id, v FROM staging.t ORDER BY id") == [(1, "a"), (2, "b")]
    assert pg_rows(pg_database, "SELECT to_regclass('public.t')") == [(None,)]


def test_without_rowid_generated_columns_and_numeric_values(
    make_db: MakeDb, pg_database: str, tmp_path: Path
) -> None:
    source = make_db(
        [
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID",
            "CREATE TABLE prices (id INTEGER PRIMARY KEY, amount DECIMAL(10,2), "
            "doubled REAL GENERATED ALWAYS AS (amount * 2) STORED)",
        ],
        {"kv": [("b", 2), ("a", 1), ("c", 3)], "prices": [(1, 0.1), (2, 19.99), (3, 7)]},
    )
    result = migrate(source, pg_database, tmp_path)
    assert result.exit_code == 0
    assert pg_rows(pg_database, "SELECT k, v FROM kv ORDER BY k") == [("a", 1), ("b", 2), ("c", 3)]
    rows = pg_rows(pg_database, "SELECT amount::text, doubled FROM prices ORDER BY id")
    # 0.1 as the text that reads back as the same double, not its binary expansion.
    assert rows == [("0.1", 0.2), ("19.99", 39.98), ("7", 14.0)]


def test_timezone_reads_naive_timestamps_in_that_zone(
    make_db: MakeDb, pg_database: str, tmp_path: Path
) -> None:
    source = make_db(
        ["CREATE TABLE ev (id INTEGER PRIMARY KEY, at DATETIME NOT NULL)"],
        {"ev": [(1, "2026-07-01 12:00:00"), (2, "2026-01-01T12:00:00+00:00")]},
    )
    result = migrate(source, pg_database, tmp_path, timezone="Europe/Paris")
    assert result.exit_code == 0
    rows = pg_rows(
        pg_database, "SELECT to_char(at AT TIME ZONE 'UTC', 'HH24:MI') FROM ev ORDER BY id"
    )
    assert rows == [("10:00",), ("12:00",)]  # Paris is UTC+2 in July; an offset wins


def test_plan_with_pg_checks_the_target_without_writing(
    migrated: tuple[MigrationResult, str], reference_db: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from harness.cli import app
    from tests.migrate.conftest import relations

    _, url = migrated
    before = relations(url)
    out = CliRunner().invoke(
        app, ["migrate", "plan", str(reference_db), "--out", str(tmp_path), "--pg", url]
    )
    assert out.exit_code == 0, out.output
    assert "already there: artifact_entities (table)" in out.output
    assert "--if-exists replace" in out.output
    password = url.split(":")[2].split("@")[0]
    assert password not in out.output
    assert relations(url) == before
