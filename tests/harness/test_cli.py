"""The command line as a user meets it: help with examples, versions, one-line errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from harness import __version__
from harness.cli import app
from harness.errors import DatabaseError, DatasetError

runner = CliRunner()


def _all_commands() -> list[list[str]]:
    """Every command path, found by walking the command tree (groups have ``commands``)."""
    paths: list[list[str]] = [[]]

    def walk(group: Any, prefix: list[str]) -> None:
        for name, cmd in group.commands.items():
            paths.append([*prefix, name])
            if hasattr(cmd, "commands"):
                walk(cmd, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: " ".join(c) or "harness")
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example: harness" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"harness {__version__}"


def test_dataset_writes_and_reports_counts(tmp_path: Path) -> None:
    target = tmp_path / "d.db"
    result = runner.invoke(
        app, ["dataset", "-o", str(target), "--artifacts", "300", "--anchor", "2026-01-15"]
    )
    assert result.exit_code == 0, result.output
    assert "artifacts" in result.output and "rows/s" in result.output
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 300
        anchor = conn.execute("SELECT value FROM dataset_info WHERE key = 'anchor'").fetchone()
    assert anchor == ("2026-01-15 00:00:00",)


def test_dataset_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "d.db"
    target.write_bytes(b"precious")
    result = runner.invoke(app, ["dataset", "-o", str(target), "--artifacts", "5"])
    assert result.exit_code == DatasetError.exit_code
    assert "--force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert target.read_bytes() == b"precious"


def test_dataset_bad_anchor_names_the_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dataset", "-o", str(tmp_path / "x.db"), "--anchor", "yesterday"])
    assert result.exit_code == 2
    assert "--anchor" in result.stderr


def test_serve_missing_file_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = runner.invoke(app, ["serve", "--db", str(missing), "--no-redis"])
    assert result.exit_code == DatasetError.exit_code
    assert "no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not missing.exists()


def test_serve_unreachable_postgres_hides_the_password() -> None:
    url = "postgresql://app:TopSecret99@127.0.0.1:1/app"
    result = runner.invoke(app, ["serve", "--db", url, "--no-redis"])
    assert result.exit_code == DatabaseError.exit_code
    assert "TopSecret99" not in result.output + result.stderr
    assert "127.0.0.1:1" in result.stderr


def test_serve_rejects_a_port_in_use(reference_db: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            app, ["serve", "--db", str(reference_db), "--no-redis", "--port", str(port)]
        )
    assert result.exit_code == 2
    assert f"port {port}" in result.stderr and "--port" in result.stderr


def test_serve_rejects_a_zero_pool(reference_db: Path) -> None:
    result = runner.invoke(
        app, ["serve", "--db", str(reference_db), "--no-redis", "--pool-size", "0"]
    )
    assert result.exit_code == 2
    assert "--pool-size" in result.stderr


def test_services_status_on_an_empty_home(tmp_path: Path) -> None:
    result = runner.invoke(app, ["services", "status", "--home", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output.count("stopped") == 2


def test_services_status_reports_a_given_server_with_its_password_masked(
    tmp_path: Path, pg_url: str
) -> None:
    result = runner.invoke(app, ["services", "status", "--home", str(tmp_path), "--pg", pg_url])
    assert result.exit_code == 0
    password = pg_url.split(":")[2].split("@")[0]
    assert password not in result.output
    assert ":***@" in result.output


def test_migrate_plan_writes_a_reviewable_sql_file(reference_db: Path, tmp_path: Path) -> None:
    before = reference_db.read_bytes()
    result = runner.invoke(
        app,
        [
            "migrate",
            "plan",
            str(reference_db),
            "--out",
            str(tmp_path),
            "--override",
            "artifacts.metadata=json",
        ],
    )
    assert result.exit_code == 0, result.output
    sql = (tmp_path / "reference.plan.sql").read_text()
    assert "double precision" in sql and "GENERATED BY DEFAULT AS IDENTITY" in sql
    assert (tmp_path / "reference.plan.json").exists()
    assert reference_db.read_bytes() == before  # a plan writes nothing to the source


def test_migrate_plan_bad_override_and_missing_source(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["migrate", "plan", str(tmp_path / "x.db"), "--override", "nope"])
    assert bad.exit_code == 2 and "table.column=pgtype" in bad.stderr
    missing = runner.invoke(app, ["migrate", "plan", str(tmp_path / "absent.db")])
    assert missing.exit_code != 0
    assert "absent.db" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
