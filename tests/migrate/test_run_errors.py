"""Bad input to ``harness migrate run``: one clear line, a non-zero exit, nothing half-written."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from harness.cli import app
from harness.urls import plain_postgres_url
from tests.migrate.conftest import relations

runner = CliRunner()


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["migrate", "run", *args, "--no-progress"])
    return result.exit_code, result.output


def test_missing_file(tmp_path: Path, pg_database: str) -> None:
    code, output = run_cli(str(tmp_path / "nope.db"), "--pg", pg_database)
    assert code == 21 and "no such file" in output
    assert relations(pg_database) == []


def test_not_sqlite(tmp_path: Path, pg_database: str) -> None:
    path = tmp_path / "export.db"
    path.write_text("id,name\n1,a\n" * 50)
    code, output = run_cli(str(path), "--pg", pg_database)
    assert code == 22 and "not a SQLite database" in output
    assert relations(pg_database) == []


def test_corrupt_database(tmp_path: Path, pg_database: str, reference_db: Path) -> None:
    path = tmp_path / "bad.db"
    data = bytearray(reference_db.read_bytes())
    data[8 * 4096 : 12 * 4096] = b"\xa5" * (4 * 4096)
    path.write_bytes(bytes(data))
    code, output = run_cli(str(path), "--pg", pg_database)
    assert code == 23 and ".recover" in output
    assert relations(pg_database) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_down(reference_db: Path) -> None:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{_closed_port()}/app"
    code, output = run_cli(str(reference_db), "--pg", url)
    assert code == 4 and "connection refused" in output
    assert "s3cret-pw" not in output


def test_wrong_password_is_never_echoed(reference_db: Path, pg_database: str) -> None:
    parts = urlsplit(pg_database)
    wrong = "not-the-Password-42"
    url = urlunsplit(
        parts._replace(netloc=f"{parts.username}:{wrong}@{parts.hostname}:{parts.port}")
    )
    code, output = run_cli(str(reference_db), "--pg", url)
    assert code == 4 and "password authentication failed" in output
    assert wrong not in output and (parts.password or "") not in output
    assert relations(pg_database) == []


@pytest.fixture
def user_without_create(pg_database: str) -> Iterator[str]:
    """A login role that may connect to the test database but create nothing in it."""
    role = f"harness_ro_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    admin = plain_postgres_url(pg_database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    parts = urlsplit(pg_database)
    try:
        yield urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_target_without_create_rights(
    reference_db: Path, pg_database: str, user_without_create: str
) -> None:
    code, output = run_cli(str(reference_db), "--pg", user_without_create)
    assert code == 27 and "cannot create" in output and "GRANT CREATE" in output
    assert relations(pg_database) == []


def test_bad_options_are_refused_before_any_work(reference_db: Path, pg_database: str) -> None:
    code, output = run_cli(str(reference_db), "--pg", pg_database, "--if-exists", "merge")
    assert code == 2 and "fail or replace" in output
    code, output = run_cli(
        str(reference_db), "--pg", pg_database, "--override", "artifacts.nope=int"
    )
    assert code == 2 and "names no column" in output
    code, output = run_cli(str(reference_db), "--pg", pg_database, "--schema", "harness_migrate")
    assert code == 2
    assert relations(pg_database) == []
