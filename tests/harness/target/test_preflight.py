"""What `harness serve` says before serving when the database is wrong: one line, no secrets."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from harness.errors import DatabaseError, DatasetError
from harness.target.db import preflight


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no such file; create one with `harness dataset"):
        preflight(str(tmp_path / "absent.db"))
    assert not (tmp_path / "absent.db").exists()


def test_file_that_is_not_sqlite(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("just some text, not a database\n")
    with pytest.raises(DatasetError, match="not a SQLite database"):
        preflight(str(bogus))


def test_truncated_sqlite_file(reference_db: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(reference_db.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"corrupt|SQLite cannot read"):
        preflight(str(broken))


def test_sqlite_without_the_reference_schema(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(DatasetError, match="no 'artifacts' table"):
        preflight(str(other))


def test_sqlite_url_form_is_accepted(reference_db: Path) -> None:
    assert preflight(f"sqlite:///{reference_db}") == "sqlite"


def test_postgres_that_is_down() -> None:
    with pytest.raises(DatabaseError, match=r"127\.0\.0\.1:1"):
        preflight("postgresql://postgres:hunter2@127.0.0.1:1/postgres")


def test_postgres_wrong_password_is_never_echoed(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    wrong = urlunsplit(parts._replace(netloc=f"postgres:Wr0ngPa55@{parts.hostname}:{parts.port}"))
    with pytest.raises(DatabaseError) as caught:
        preflight(wrong)
    assert "Wr0ngPa55" not in str(caught.value)
    assert "password" in str(caught.value)


def test_postgres_without_the_schema(pg_database: str) -> None:
    with pytest.raises(DatasetError, match="no 'artifacts' table"):
        preflight(pg_database)


def test_postgres_with_the_schema(reference_pg: str) -> None:
    assert preflight(reference_pg) == "postgresql"
