"""kill -9 mid-copy then --resume: no row missing, none twice. Status and rollback."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.dataset import DatasetSpec, write_dataset
from harness.urls import plain_postgres_url
from migrate.errors import TargetError
from tests.conftest import ANCHOR
from tests.migrate.conftest import catalog, pg_rows, relations
from tests.migrate.test_run import migrate

runner = CliRunner()
KILL_AFTER_CHUNKS = 5
WAIT_S = 120.0


def chunks_loaded(url: str) -> int:
    with psycopg.connect(plain_postgres_url(url), autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass('harness_migrate.chunks')").fetchone()
        if found is None or found[0] is None:
            return 0
        row = conn.execute("SELECT count(*) FROM harness_migrate.chunks").fetchone()
        return int(row[0]) if row else 0


def table_digest(
    path_or_url: str, table: str, columns: str, *, sqlite: bool
) -> list[tuple[object, ...]]:
    query = f"SELECT {columns} FROM {table} ORDER BY {columns}"  # noqa: S608 - fixed names
    if sqlite:
        conn = sqlite3.connect(path_or_url)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    return pg_rows(path_or_url, query)


def start_copy(
    source: Path, url: str, tmp_path: Path, *, new_session: bool
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start `harness migrate run` in 1,000-row chunks and return once a few are loaded."""
    command = [
        sys.executable, "-m", "harness.cli", "migrate", "run", str(source),
        "--pg", url, "--workers", "2", "--chunk-rows", "1000", "--no-progress",
        "--runs-dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=new_session
        )
    deadline = time.monotonic() + WAIT_S
    while chunks_loaded(url) < KILL_AFTER_CHUNKS:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the copy never started"
        time.sleep(0.01)
    return proc, log


@pytest.fixture(scope="module")
def larger_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 115,000 rows: long enough a copy (in 1,000-row chunks) to kill it halfway."""
    path = tmp_path_factory.mktemp("resume") / "larger.db"
    write_dataset(path, DatasetSpec(artifacts=10_000, seed=5, anchor=ANCHOR))
    return path


def test_kill_9_mid_copy_then_resume_loses_and_doubles_nothing(
    larger_db: Path, pg_database: str, tmp_path: Path
) -> None:
    proc, _log = start_copy(larger_db, pg_database, tmp_path, new_session=False)
    os.kill(proc.pid, signal.SIGKILL)  # the command only: its workers must notice
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ((run_id, status, phase),) = pg_rows(
        pg_database, "SELECT id, status, phase FROM harness_migrate.runs"
    )
    assert (status, phase) == ("running", "copy")
    assert chunks_loaded(pg_database) < 115

    status_out = runner.invoke(app, ["migrate", "status", "--pg", pg_database])
    assert status_out.exit_code == 0, status_out.output
    assert run_id in status_out.output and "copy" in status_out.output

    result = migrate(larger_db, pg_database, tmp_path, resume=True)
    assert result.resumed and result.run_id == run_id
    assert result.exit_code == 0 and result.rows_rejected == 0
    for table in result.tables:
        assert table.source_rows == table.read == table.loaded, table
    # Keys were added over the loaded rows without a duplicate to remove: none loaded twice.
    for name, columns in (
        ("citations", "citing_id, cited_id, context, created_at"),
        ("artifact_entities", "artifact_id, entity_id, mentions, salience"),
        ("bookmarks", "id, artifact_id, user_ref, note"),
    ):
        source = table_digest(str(larger_db), name, columns, sqlite=True)
        target = table_digest(pg_database, name, columns, sqlite=False)
        if name == "citations":
            target = [(a, b, c, str(d).replace("T", " ")) for a, b, c, d in target]
        assert source == target, name


def test_resume_refuses_a_source_that_changed(
    reference_db: Path, pg_database: str, tmp_path: Path
) -> None:
    from migrate.errors import ResumeError, StrictStopError

    source = tmp_path / "source.db"
    source.write_bytes(reference_db.read_bytes())
    conn = sqlite3.connect(source)
    conn.execute("UPDATE artifacts SET source_id = 'abc' WHERE id = 7")
    conn.commit()
    conn.close()
    with pytest.raises(StrictStopError):
        migrate(source, pg_database, tmp_path, strict=True)
    conn = sqlite3.connect(source)
    conn.execute("UPDATE artifacts SET title = 'fixed' WHERE id = 8")
    conn.commit()
    conn.close()
    with pytest.raises(ResumeError, match="changed since"):
        migrate(source, pg_database, tmp_path, resume=True)


def test_nothing_to_resume_says_so(reference_db: Path, pg_database: str, tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="nothing to resume"):
        migrate(reference_db, pg_database, tmp_path, resume=True)


def test_rollback_removes_exactly_what_the_migration_created(
    reference_db: Path, pg_database: str, tmp_path: Path
) -> None:
    with psycopg.connect(plain_postgres_url(pg_database)) as conn:
        conn.execute("CREATE TABLE keep_me (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO keep_me VALUES (1, 'mine')")
        conn.execute("CREATE VIEW keep_view AS SELECT note FROM keep_me")
        conn.commit()
    before_relations, before_catalog = relations(pg_database), catalog(pg_database)

    result = migrate(reference_db, pg_database, tmp_path, schema="public")
    assert len(relations(pg_database)) > len(before_relations)

    out = runner.invoke(app, ["migrate", "rollback", "--pg", pg_database, "--yes"])
    assert out.exit_code == 0, out.output
    assert result.run_id in out.output
    assert relations(pg_database) == before_relations
    assert catalog(pg_database) == before_catalog
    assert pg_rows(pg_database, "SELECT * FROM keep_me") == [(1, "mine")]


def test_rollback_stops_when_something_else_depends_on_a_migrated_table(
    reference_db: Path, pg_database: str, tmp_path: Path
) -> None:
    migrate(reference_db, pg_database, tmp_path, schema="app")
    with psycopg.connect(plain_postgres_url(pg_database)) as conn:
        conn.execute("CREATE VIEW report AS SELECT count(*) AS n FROM app.artifacts")
        conn.commit()
    before = relations(pg_database)
    out = runner.invoke(app, ["migrate", "rollback", "--pg", pg_database, "--yes"])
    assert out.exit_code == TargetError.exit_code
    assert "nothing was dropped" in out.output and "report" in out.output
    assert relations(pg_database) == before


def test_ctrl_c_stops_the_copy_at_once_and_resume_finishes(
    larger_db: Path, pg_database: str, tmp_path: Path
) -> None:
    proc, log = start_copy(larger_db, pg_database, tmp_path, new_session=True)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
    proc.wait(timeout=60)
    assert proc.returncode == 29, log.read_text()
    assert "interrupted" in log.read_text()
    assert chunks_loaded(pg_database) < 115
    assert pg_rows(pg_database, "SELECT status, phase FROM harness_migrate.runs") == [
        ("stopped", "copy")
    ]
    result = migrate(larger_db, pg_database, tmp_path, resume=True)
    assert result.exit_code == 0 and result.rows_loaded == result.rows_read
