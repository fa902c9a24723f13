"""``harness validate``: a clean copy passes; each fault is found at its exact key and column,
and nothing else is reported."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from harness.cli import app
from harness.target.seed import clone_database, drop_database
from harness.urls import plain_postgres_url
from migrate.validate.run import EXIT_DIFFERENT, ValidateOptions, ValidationResult, validate
from tests.migrate.conftest import MakeDb
from tests.migrate.test_rejects import dirty_db
from tests.migrate.test_run import migrate


@pytest.fixture(scope="module")
def migrated_template(
    reference_db: Path, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database holding the migrated reference dataset, cloned by each test."""
    name = f"harness_valtpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}"))
    result = migrate(reference_db, url, tmp_path_factory.mktemp("valmig"))
    assert result.exit_code == 0
    yield name
    drop_database(pg_url, name)


@pytest.fixture
def copy_url(pg_url: str, migrated_template: str) -> Iterator[str]:
    """A private copy of the migrated reference dataset."""
    name = f"harness_val_{uuid.uuid4().hex[:8]}"
    url = clone_database(pg_url, migrated_template, name)
    yield url
    drop_database(pg_url, name)


def run(source: Path, url: str, tmp_path: Path, **options: object) -> ValidationResult:
    opts = ValidateOptions(
        source=source, pg_url=url, out_dir=tmp_path / "validation", progress=False
    )
    opts.skip_queries = True
    for key, value in options.items():
        setattr(opts, key, value)
    return validate(opts)


def problems(result: ValidationResult) -> set[tuple[str, str, str]]:
    """(section, table, what) of every failure but the profiles'."""
    out: set[tuple[str, str, str]] = set()
    for f in result.findings:
        if not f.ok and f.section != "profiles":
            out.add((f.section, f.table, f.check))
    for c in result.counts:
        if not c.ok:
            out.add(("counts", c.table, f"{c.source - c.rejected - c.target:+d}"))
    for t in result.checksums:
        for d in t.diffs:
            key = ",".join(f"{k}={v}" for k, v in d.key.items())
            cols = ",".join(c.column for c in d.columns)
            out.add(("rows", t.table, f"{d.kind} {key} {cols}".strip()))
    return out


def profile_failures(result: ValidationResult) -> set[tuple[str, str]]:
    return {(f.table, f.check) for f in result.findings if f.section == "profiles" and not f.ok}


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(plain_postgres_url(url)) as conn:
        for statement in statements:
            conn.execute(statement.encode())
        conn.commit()


def test_a_clean_copy_passes_every_section(
    reference_db: Path, copy_url: str, tmp_path: Path
) -> None:
    result = run(reference_db, copy_url, tmp_path, skip_queries=False, repeat=3)
    assert problems(result) == set() and profile_failures(result) == set()
    assert all(q.same_rows for q in result.queries) and len(result.queries) == 6
    assert {q.name for q in result.queries if q.indexes} >= {"citations_in", "entity_profile"}
    assert result.ok and result.exit_code == 0
    methods = {c.table: c.method for c in result.checksums}
    assert methods["artifacts"] == "key ranges" and methods["dataset_info"] == "whole table"
    files = sorted(p.name for p in (tmp_path / "validation").iterdir())
    assert files == ["validation.html", "validation.json", "validation.md"]
    data = json.loads((tmp_path / "validation" / "validation.json").read_text())
    assert data["ok"] is True and data["sections"]["rows"]["checks"] == len(result.checksums)
    assert "PASS" in (tmp_path / "validation" / "validation.md").read_text()


FAULTS = {
    "changed value": (
        ["UPDATE scores SET impact = 0.123 WHERE artifact_id = 17"],
        {("rows", "scores", "changed artifact_id=17 impact")},
        {("scores", "column impact")},
    ),
    "deleted row": (
        [
            "DELETE FROM citations WHERE (citing_id, cited_id) = "
            "(SELECT citing_id, cited_id FROM citations ORDER BY 1, 2 OFFSET 100 LIMIT 1)"
        ],
        None,  # filled in by the test: the key depends on the dataset
        None,
    ),
    "extra row": (
        ["INSERT INTO bookmarks (artifact_id, user_ref, note) VALUES (5, 'u-extra', 'x')"],
        None,
        None,
    ),
    "double as single precision": (
        ["UPDATE scores SET novelty = novelty::real WHERE artifact_id = 23"],
        {("rows", "scores", "changed artifact_id=23 novelty")},
        {("scores", "column novelty")},
    ),
    "timestamp shifted by a time zone": (
        ["UPDATE artifacts SET published_at = published_at + interval '2 hours' WHERE id = 31"],
        {("rows", "artifacts", "changed id=31 published_at")},
        {("artifacts", "column published_at")},
    ),
    "truncated text": (
        ["UPDATE artifacts SET title = left(title, 5) WHERE id = 41"],
        {("rows", "artifacts", "changed id=41 title")},
        {("artifacts", "column title")},
    ),
    "changed BLOB byte": (
        [
            "UPDATE artifacts SET fingerprint = "  # noqa: S608 - a fixed statement
            + "set_byte(fingerprint, 3, 255 - get_byte(fingerprint, 3)) WHERE id = 43"
        ],
        {("rows", "artifacts", "changed id=43 fingerprint")},
        {("artifacts", "column fingerprint")},
    ),
    "missing index": (
        ["DROP INDEX ix_scores_discovery"],
        {("schema", "scores", "index ix_scores_discovery")},
        set(),
    ),
    "missing NOT NULL": (
        ["ALTER TABLE artifacts ALTER COLUMN title DROP NOT NULL"],
        {("schema", "artifacts", "column title")},
        set(),
    ),
    "sequence left behind": (
        ["SELECT setval(pg_get_serial_sequence('bookmarks', 'id'), 3)"],
        {("integrity", "bookmarks", "sequence of id")},
        set(),
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=lambda f: f.replace(" ", "-"))
def test_each_fault_is_found_at_its_key_and_column_and_nothing_else(
    fault: str, reference_db: Path, copy_url: str, tmp_path: Path
) -> None:
    statements, expected, expected_profiles = FAULTS[fault]
    if fault == "deleted row":
        with psycopg.connect(plain_postgres_url(copy_url)) as conn:
            key = conn.execute(
                "SELECT citing_id, cited_id FROM citations ORDER BY 1, 2 OFFSET 100 LIMIT 1"
            ).fetchone()
        assert key is not None
        expected = {
            ("counts", "citations", "+1"),
            ("rows", "citations", f"missing citing_id={key[0]},cited_id={key[1]}"),
        }
    if fault == "extra row":
        with psycopg.connect(plain_postgres_url(copy_url)) as conn:
            row = conn.execute("SELECT max(id) + 1 FROM bookmarks").fetchone()
        assert row is not None
        expected = {("counts", "bookmarks", "-1"), ("rows", "bookmarks", f"extra id={row[0]}")}
    execute(copy_url, *statements)
    result = run(reference_db, copy_url, tmp_path)
    assert result.exit_code == EXIT_DIFFERENT
    assert problems(result) == expected
    if expected_profiles is not None:
        assert profile_failures(result) <= expected_profiles


def test_null_against_empty_string(reference_db: Path, copy_url: str, tmp_path: Path) -> None:
    with psycopg.connect(plain_postgres_url(copy_url)) as conn:
        row = conn.execute("SELECT min(id) FROM entities WHERE description IS NULL").fetchone()
    assert row is not None and row[0] is not None
    execute(copy_url, f"UPDATE entities SET description = '' WHERE id = {int(row[0])}")  # noqa: S608
    result = run(reference_db, copy_url, tmp_path)
    assert problems(result) == {("rows", "entities", f"changed id={row[0]} description")}
    (diff,) = [d for t in result.checksums for d in t.diffs]
    assert (diff.columns[0].source, diff.columns[0].target) == ("~", "0:")
    assert profile_failures(result) == {("entities", "column description")}


def test_a_single_changed_row_costs_logarithmic_range_queries(
    reference_db: Path, copy_url: str, tmp_path: Path
) -> None:
    execute(copy_url, "UPDATE citations SET context = 'moved' WHERE citing_id = 2500")
    result = run(reference_db, copy_url, tmp_path, tables=["citations"])
    (table,) = result.checksums
    assert table.diffs and all(d.columns[0].column == "context" for d in table.diffs)
    # One 16-way pass per level on each side, about log16(rows) levels, then one fetch each.
    assert table.range_queries <= 2 * 5 + 2


def test_migration_rejects_are_accounted_for(tmp_path: Path, pg_database: str) -> None:
    source = dirty_db(tmp_path / "dirty.db")
    migration = migrate(source, pg_database, tmp_path)
    assert migration.rows_rejected == 10
    result = run(source, pg_database, tmp_path, run_dir=Path(migration.out_dir))
    (count,) = result.counts
    assert (count.source, count.rejected, count.target) == (51, 10, 41) and count.ok
    assert problems(result) == set() and result.ok
    assert "Rejected by the migration" in (tmp_path / "validation" / "validation.md").read_text()


def test_hostile_identifiers(make_db: MakeDb, tmp_path: Path, pg_database: str) -> None:
    hostile = 'a"; DROP TABLE b; --'
    column = "x\"y'z"
    q = '"' + hostile.replace('"', '""') + '"'
    c = '"' + column.replace('"', '""') + '"'
    source = make_db(
        [f"CREATE TABLE {q} (id INTEGER PRIMARY KEY, {c} TEXT)"],
        {hostile: [(i, f"v{i}") for i in range(1, 300)]},
    )
    migrate(source, pg_database, tmp_path)
    assert run(source, pg_database, tmp_path).ok
    execute(pg_database, f"UPDATE {q} SET {c} = 'changed' WHERE id = 7")  # noqa: S608
    result = run(source, pg_database, tmp_path)
    assert problems(result) == {("rows", hostile, f"changed id=7 {column}")}


def test_cli_exit_codes_and_query_file(reference_db: Path, copy_url: str, tmp_path: Path) -> None:
    queries = tmp_path / "queries.sql"
    queries.write_text(
        "-- name: live_count\nSELECT count(*) FROM artifacts WHERE is_retracted = 0;\n"
        "-- name: kinds\nSELECT kind, count(*) FROM artifacts GROUP BY kind;\n"
    )
    runner = CliRunner()
    args = ["validate", str(reference_db), "--pg", copy_url, "--no-progress", "--repeat", "2"]
    ok = runner.invoke(app, [*args, "--queries", str(queries), "--out", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.output
    assert "live_count" in ok.output and "kinds" in ok.output
    password = urlsplit(copy_url).password or ""
    assert password not in ok.output
    assert password not in (tmp_path / "a" / "validation.json").read_text()
    execute(copy_url, "UPDATE artifacts SET title = title || '!' WHERE id = 3")
    bad = runner.invoke(app, [*args, "--no-queries", "--out", str(tmp_path / "b")])
    assert bad.exit_code == EXIT_DIFFERENT
    missing = runner.invoke(app, [*args, "--tables", "nope"])
    assert missing.exit_code == 2 and "no table 'nope'" in missing.output


def test_exact_forms_of_tricky_values_pass_when_equal(
    make_db: MakeDb, tmp_path: Path, pg_database: str
) -> None:
    source = make_db(
        [
            "CREATE TABLE v (id INTEGER PRIMARY KEY, amount DECIMAL(40,2), doc JSON, "
            "code TEXT, ratio REAL, at DATETIME, flag BOOLEAN)"
        ],
        {
            "v": [
                (1, "1234567890123456789012345678.95", '{"b": 0.10, "a": 1e30}', "ab", 0.1,
                 "2024-01-01 10:00:00", 1),
                (2, "0.50", '{"x": [1, 2.50], "y": null}', "c", -0.0, "2024-01-01T10:00", 0),
                (9223372036854775807, "7", "{}", "d", 1e30, "2024-01-01 10:00:00.5", 1),
            ]
        },
    )  # fmt: skip
    overrides = {"v.code": "char(4)", "v.ratio": "real", "v.amount": "numeric(40,2)"}
    migration = migrate(source, pg_database, tmp_path, overrides=overrides)
    assert migration.exit_code == 0
    result = run(source, pg_database, tmp_path, run_dir=Path(migration.out_dir))
    assert problems(result) == set() and profile_failures(result) == set(), problems(result)
    queries = tmp_path / "q.sql"
    queries.write_text("-- name: docs\nSELECT id, doc, amount FROM v ORDER BY id;\n")
    parity = run(source, pg_database, tmp_path, queries=queries, skip_queries=False, repeat=1)
    assert [q.same_rows for q in parity.queries] == [True], parity.queries
    execute(pg_database, 'UPDATE v SET doc = \'{"b": 0.1, "a": 1e30}\' WHERE id = 1')
    result = run(source, pg_database, tmp_path, run_dir=Path(migration.out_dir))
    assert problems(result) == {("rows", "v", "changed id=1 doc")}
