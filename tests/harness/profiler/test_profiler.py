"""The query profiler end to end: the API's slow-query log, plans flagged, measured advice.

The composite index on scores (discovery score, artifact) is dropped from a private copy of
the reference dataset, on PostgreSQL and on SQLite; the API then serves top discoveries and
topic timelines with every statement logged (threshold 0 ms).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from harness.cli import app as cli
from harness.profiler.indexes import candidates, recommend
from harness.profiler.slow_queries import attach_plans, read_log
from harness.target.server import running_api
from harness.target.settings import ApiSettings
from harness.urls import plain_postgres_url
from tests.conftest import ANCHOR

runner = CliRunner()
TOP = "ORDER BY scores.discovery_score DESC"


def drive_api(db: str, log: Path) -> None:
    settings = ApiSettings(db=db, slow_query_log=str(log), slow_query_ms=0.0, now=ANCHOR)
    with running_api(settings) as base, httpx.Client(base_url=base, timeout=10) as client:
        for limit in (50, 40, 30):
            assert client.get("/discoveries", params={"limit": limit}).status_code == 200
        for topic in (1, 2, 3):
            assert client.get(f"/topics/{topic}/timeline").status_code == 200


@pytest.fixture
def pg_without_index(writable_pg: str) -> str:
    with psycopg.connect(plain_postgres_url(writable_pg), autocommit=True) as conn:
        conn.execute("DROP INDEX ix_scores_discovery")
        conn.execute("ANALYZE")
    return writable_pg


@pytest.fixture
def sqlite_without_index(writable_db: Path) -> Iterator[Path]:
    conn = sqlite3.connect(writable_db)
    conn.execute("DROP INDEX ix_scores_discovery")
    conn.commit()
    conn.close()
    yield writable_db


def top_statement(log_path: Path) -> str:
    (entry,) = [s for s in read_log(log_path).statements if TOP in s.sql]
    return entry.statement


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_dropped_index_is_found_flagged_and_measured_back(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fixture = "pg_without_index" if backend == "postgresql" else "sqlite_without_index"
    db = str(request.getfixturevalue(fixture))
    log_path = tmp_path / "slow_queries.jsonl"
    drive_api(db, log_path)

    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    top = [r for r in records if TOP in r["sql"]]
    assert top and all(r["endpoint"] == "GET /discoveries" for r in top)
    assert all(r["dialect"] == ("postgres" if backend == "postgresql" else "sqlite") for r in top)

    log = read_log(log_path)
    attach_plans(log, db)
    by_sql = {s.statement: s for s in log.statements}
    # PostgreSQL reads scores whole and sorts; SQLite walks artifacts whole and sorts.
    expected = "scores" if backend == "postgresql" else "artifacts"
    assert expected in (by_sql[top_statement(log_path)].full_scans or [])
    timeline = [s for s in log.statements if "artifact_topics.topic_id" in s.sql]
    assert timeline and all(not s.full_scans for s in timeline)  # it has its index

    advice = recommend(read_log(log_path), db)
    chosen = [a for a in advice if a.recommended]
    assert chosen, [(a.candidate.label(), a.speedup, a.uses_index) for a in advice]
    best = chosen[0]
    assert best.candidate.table == "scores"
    assert best.candidate.columns == (("discovery_score", True), ("artifact_id", False))
    assert best.speedup is not None and best.speedup >= 1.25
    assert best.size_bytes and best.size_bytes > 0 and best.build_ms is not None
    assert best.create.startswith('CREATE INDEX "ix_scores_discovery_score_artifact_id" ON')
    # Nothing for the statement that already uses an index.
    assert not any("artifact_topics.topic_id" in a.statement for a in advice)


def test_measuring_leaves_the_database_as_it_was(pg_without_index: str, tmp_path: Path) -> None:
    log_path = tmp_path / "slow.jsonl"
    drive_api(pg_without_index, log_path)
    recommend(read_log(log_path), pg_without_index)
    with psycopg.connect(plain_postgres_url(pg_without_index)) as conn:
        names = {
            r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename='scores'")
        }
    assert not any(n.startswith("harness_advice") for n in names)
    assert "ix_scores_discovery" not in names


def test_parameters_are_masked_in_the_log(writable_pg: str, tmp_path: Path) -> None:
    log_path = tmp_path / "slow.jsonl"
    settings = ApiSettings(
        db=writable_pg, slow_query_log=str(log_path), slow_query_ms=0.0, now=ANCHOR
    )
    secret_title = "Top secret merger plans"
    with running_api(settings) as base, httpx.Client(base_url=base, timeout=10) as client:
        body = {"title": secret_title, "source_id": 1, "discovery_score": 0.5}
        assert client.post("/artifacts", json=body).status_code in (200, 201)
    text = log_path.read_text()
    assert secret_title not in text
    assert f"<text:{len(secret_title)}>" in text


def test_candidates_come_from_the_syntax() -> None:
    sql = (
        "SELECT a.id FROM artifacts AS a JOIN scores AS s ON s.artifact_id = a.id "
        "WHERE a.source_id = $1 AND a.published_at >= $2 ORDER BY a.published_at DESC"
    )
    labels = {c.label() for c in candidates(sql, "postgres")}
    assert "artifacts (source_id, published_at DESC)" in labels
    assert "artifacts (source_id, published_at)" in labels
    assert "scores (artifact_id)" in labels


def test_cli_explain_flags_a_full_scan(sqlite_without_index: Path) -> None:
    result = runner.invoke(
        cli,
        ["db", "explain", "SELECT * FROM scores ORDER BY discovery_score DESC LIMIT 5",
         "--db", str(sqlite_without_index)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "full scan" in result.output and "scores" in result.output


def test_cli_bad_input(tmp_path: Path) -> None:
    missing = runner.invoke(cli, ["db", "slow-queries", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such run directory or slow-query log" in missing.output
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("hello")
    bad = runner.invoke(cli, ["db", "explain", "SELECT 1", "--db", str(not_sqlite)])
    assert bad.exit_code == 3 and "not a readable SQLite database" in bad.output
    typo = runner.invoke(cli, ["db", "explain", "SELEC 1 FROM", "--db", str(not_sqlite)])
    assert typo.exit_code != 0
