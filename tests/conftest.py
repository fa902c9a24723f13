"""Shared fixtures: real PostgreSQL and Redis servers for the whole test session.

Give ``HARNESS_PG_URL`` / ``HARNESS_REDIS_URL`` to test against servers of your own;
otherwise embedded servers run under ``<repo>/.harness/test-services``. A server this
session started is stopped at its end; one that was already running is left running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from harness.services import EmbeddedPostgres, EmbeddedRedis, check_postgres, check_redis
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
