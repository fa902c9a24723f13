"""``harness rehearse`` end to end on the embedded servers, shrunk in time and size."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from harness.cli import app
from harness.rehearse import RehearseOptions, RehearseResult, rehearse
from harness.rehearse.run import EXIT_NO_GO, judge
from harness.rehearse.steps import STEPS
from harness.urls import plain_postgres_url

runner = CliRunner()
SMALL = {"artifacts": 3000, "quick": True, "time_scale": 0.03, "progress": False}


def _drop_rehearsal_databases(pg_url: str) -> None:
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'rehearsal%'"
            ).fetchall()
        ]
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def go(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RehearseResult]:
    folder = tmp_path_factory.mktemp("rehearsal") / "go"
    yield rehearse(RehearseOptions(pg=pg_url, rehearsal_dir=folder, **SMALL))  # type: ignore[arg-type]
    _drop_rehearsal_databases(pg_url)


def copy_of(result: RehearseResult, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(result.directory, target)
    return target


def test_a_quick_rehearsal_on_clean_data_is_go(go: RehearseResult) -> None:
    assert go.go and go.exit_code == 0, go.reasons
    data = json.loads((go.directory / "rehearsal.json").read_text())
    assert [s for s in STEPS if data["steps"][s]["status"] == "done"] == list(STEPS)
    steps = data["steps"]
    assert steps["migrate"]["rows"]["read"] == steps["migrate"]["rows"]["loaded"]
    assert steps["validate"]["passed"] and steps["rollback"]["passed"]
    assert (
        steps["pool"]["pool_size"] >= 1
        and steps["candidate"]["pool_size"] == (steps["pool"]["pool_size"])
    )
    assert "8 of 8 equal" in steps["rollback"]["steps"][-1]
    html = (go.directory / "rehearsal.html").read_text()
    for title in (
        "Verdict", "Source", "Audit", "Baseline", "Migrate", "Validate", "Pool", "Candidate",
        "Compare", "Rollback drill", "Latency: SQLite against PostgreSQL",
    ):  # fmt: skip
        assert f"<h2>{title}" in html, title
    assert html.count("<svg") >= 2  # p95 per endpoint, pool curve
    assert "password" not in json.dumps(data).lower()


def test_from_compare_reuses_the_earlier_steps(
    go: RehearseResult, pg_url: str, tmp_path: Path
) -> None:
    folder = copy_of(go, tmp_path)
    before = json.loads((folder / "rehearsal.json").read_text())["steps"]
    again = rehearse(
        RehearseOptions(from_step="compare", rehearsal_dir=folder, progress=False, pg=pg_url)
    )
    after = again.data["steps"]
    assert again.go, again.reasons
    for step in STEPS[: STEPS.index("compare")]:
        assert after[step]["started"] == before[step]["started"]
    assert after["compare"]["started"] != before["compare"]["started"]


def test_rollback_drill_fails_when_the_sqlite_file_is_gone(
    go: RehearseResult, pg_url: str, tmp_path: Path
) -> None:
    folder = copy_of(go, tmp_path)
    (folder / "source" / "dataset.db").unlink()
    result = rehearse(
        RehearseOptions(from_step="rollback", rehearsal_dir=folder, progress=False, pg=pg_url)
    )
    assert not result.go and result.exit_code == EXIT_NO_GO
    assert any("rollback drill failed" in r and "is gone" in r for r in result.reasons)


@pytest.mark.slow
def test_a_row_missing_in_postgresql_is_no_go_naming_the_table(
    go: RehearseResult, pg_url: str, tmp_path: Path
) -> None:
    folder = copy_of(go, tmp_path)

    def lose_a_row(url: str) -> None:
        with psycopg.connect(plain_postgres_url(url), autocommit=True) as conn:
            conn.execute("DELETE FROM citations WHERE ctid = (SELECT min(ctid) FROM citations)")

    result = rehearse(
        RehearseOptions(
            from_step="migrate", rehearsal_dir=folder, pool_size=4, after_migrate=lose_a_row,
            pg=pg_url, **{k: v for k, v in SMALL.items() if k != "artifacts"},  # type: ignore[arg-type]
        )
    )  # fmt: skip
    assert not result.go
    assert any("validation found differences in citations" in r for r in result.reasons)


@pytest.mark.slow
def test_a_value_postgresql_rejects_is_no_go_naming_the_reject_file(
    go: RehearseResult, pg_url: str, tmp_path: Path
) -> None:
    folder = copy_of(go, tmp_path)
    with sqlite3.connect(folder / "source" / "dataset.db") as conn:
        # PostgreSQL text cannot hold a NUL character.
        conn.execute("UPDATE entities SET description = 'bad' || char(0) || 'value' WHERE id = 5")
    result = rehearse(
        RehearseOptions(
            from_step="migrate", rehearsal_dir=folder, pool_size=4, pg=pg_url,
            **{k: v for k, v in SMALL.items() if k != "artifacts"},  # type: ignore[arg-type]
        )
    )  # fmt: skip
    assert not result.go
    (reason,) = [r for r in result.reasons if "rejected by PostgreSQL" in r]
    assert "entities.jsonl" in reason and "--accept-rejects" in reason


def _data(rejected: int, files: list[str]) -> dict[str, object]:
    done = {"status": "done"}
    steps: dict[str, object] = {s: dict(done) for s in STEPS}
    steps["candidate"] = {**done, "passed": True}
    steps["validate"] = {**done, "passed": True}
    steps["rollback"] = {**done, "passed": True}
    steps["migrate"] = {**done, "rows": {"rejected": rejected}, "reject_files": files}
    return {"dir": "/nowhere", "steps": steps}


def test_rejects_block_go_unless_every_one_is_accepted(tmp_path: Path) -> None:
    record = {"table": "entities", "rowid": 5, "reason": "NUL in text"}
    rejects = tmp_path / "entities.jsonl"
    rejects.write_text(json.dumps(record) + "\n")
    assert judge(_data(0, []), None) == []
    (reason,) = judge(_data(1, [str(rejects)]), None)
    assert "1 row(s) rejected" in reason and str(rejects) in reason
    accept = tmp_path / "accept.jsonl"
    accept.write_text(json.dumps(record) + "\n")
    assert judge(_data(1, [str(rejects)]), accept) == []


def test_bad_input_is_one_line_and_leaves_no_rehearsal(tmp_path: Path, pg_url: str) -> None:
    not_sqlite = tmp_path / "app.db"
    not_sqlite.write_text("id,name\n1,a\n")
    out = tmp_path / "r"
    result = runner.invoke(app, ["rehearse", str(not_sqlite), "--dir", str(out), "--pg", pg_url])
    assert result.exit_code == 3 and "not a SQLite database" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["rehearse", "--from", "migrat", "--dir", str(out)])
    assert result.exit_code == 2 and "no such step" in result.output and "migrate" in result.output
    result = runner.invoke(
        app, ["rehearse", "--scenario", "stedy", "--dir", str(out), "--pg", pg_url]
    )
    assert result.exit_code == 2 and "stedy" in result.output
    assert not out.exists()


def test_report_opens_in_a_headless_browser(go: RehearseResult, tmp_path: Path) -> None:
    from tests.harness.analysis.test_report_browser import (
        CHROMIUM,
        _chromium,
        _console_lines,
        _SvgCounter,
    )

    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    done = _chromium(tmp_path / "profile", ["--dump-dom", go.files["html"].as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_lines(done.stderr) == []
    counter = _SvgCounter()
    counter.feed(done.stdout)
    assert len(counter.paths) == 2 and all(n >= 10 for n in counter.paths), counter.paths
    assert "GO" in done.stdout
