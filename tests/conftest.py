"""Shared fixtures: real PostgreSQL and Redis servers for the whole test session.

Give ``HARNESS_PG_URL`` / ``HARNESS_REDIS_URL`` to test against servers of your own;
otherwise embedded servers run under ``<repo>/.harness/test-services``. A server this
session started is stopped at its end; one that was already running is left running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from harness.dataset import DatasetSpec, write_dataset
from harness.services import EmbeddedPostgres, EmbeddedRedis, check_postgres, check_redis
from harness.target.seed import load_into_postgres
from harness.urls import plain_postgres_url

REPO = Path(__file__).resolve().parent.parent
TEST_SERVICES = REPO / ".harness" / "test-services"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a PostgreSQL server (superuser, database ``postgres``) for the session."""
    given = os.environ.get("HARNESS_PG_URL")
    if given:
        check_postgres(given)
        yield given
        return
    server = EmbeddedPostgres(TEST_SERVICES)
    started_here = server.status() is None
    info = server.start()
    try:
        yield info.url
    finally:
        if started_here:
            server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server for the session."""
    given = os.environ.get("HARNESS_REDIS_URL")
    if given:
        check_redis(given)
        yield given
        return
    server = EmbeddedRedis(TEST_SERVICES)
    started_here = server.status() is None
    info = server.start()
    try:
        yield info.url
    finally:
        if started_here:
            server.stop()


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """URL of a fresh, empty database on the session's server, dropped after the test."""
    name = f"harness_test_{uuid.uuid4().hex[:12]}"
    admin = plain_postgres_url(pg_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(pg_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis server of the test's own, started; the test may kill it. Stopped afterwards."""
    server = EmbeddedRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Fixed "now" and anchor so answers are the same on every run and on both backends.
ANCHOR = datetime(2026, 11, 1)
SMALL_ARTIFACTS = 3_000


@pytest.fixture(scope="session")
def reference_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small reference dataset (SQLite file) shared by the session; tests must not write it."""
    path = tmp_path_factory.mktemp("dataset") / "reference.db"
    write_dataset(path, DatasetSpec(artifacts=SMALL_ARTIFACTS, seed=11, anchor=ANCHOR))
    return path


@pytest.fixture
def writable_db(reference_db: Path, tmp_path: Path) -> Path:
    """A private copy of the reference dataset that a test may write to."""
    copy = tmp_path / "writable.db"
    shutil.copyfile(reference_db, copy)
    return copy


def _create_database(pg_url: str, name: str) -> str:
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}"))


def _drop_database(pg_url: str, name: str) -> None:
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def reference_pg(pg_url: str, reference_db: Path) -> Iterator[str]:
    """URL of a PostgreSQL database holding the same rows as ``reference_db``."""
    name = f"harness_ref_{uuid.uuid4().hex[:10]}"
    url = _create_database(pg_url, name)
    load_into_postgres(reference_db, url)
    try:
        yield url
    finally:
        _drop_database(pg_url, name)


@pytest.fixture(scope="session")
def _pg_template(pg_url: str, reference_db: Path) -> Iterator[str]:
    """A loaded database nothing connects to, so CREATE DATABASE ... TEMPLATE can copy it."""
    name = f"harness_tpl_{uuid.uuid4().hex[:10]}"
    load_into_postgres(reference_db, _create_database(pg_url, name))
    try:
        yield name
    finally:
        _drop_database(pg_url, name)


@pytest.fixture
def writable_pg(pg_url: str, _pg_template: str) -> Iterator[str]:
    """A private PostgreSQL copy of the reference dataset that a test may write to."""
    with writable_pg_copy(pg_url, _pg_template) as url:
        yield url


@contextlib.contextmanager
def writable_pg_copy(pg_url: str, template: str) -> Iterator[str]:
    """Clone ``template`` into a new database; drop it on exit."""
    name = f"harness_w_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain_postgres_url(pg_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}"))
    finally:
        _drop_database(pg_url, name)
