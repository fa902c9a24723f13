"""Embedded PostgreSQL and Redis: start, reuse, stop, and the errors a user sees."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from harness import services
from harness.errors import DatabaseError, ServiceError
from harness.services import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ServiceInfo,
    check_postgres,
    check_redis,
)

REPO = Path(__file__).resolve().parents[2]
WRONG_PASSWORD = "Wr0ngPassw0rd-do-not-echo"


def closed_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def password_of(url: str) -> str:
    password = urlsplit(url).password
    assert password
    return password


def with_password(url: str, password: str | None) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    auth = f"{user}:{password}@" if password is not None else f"{user}@"
    return parts._replace(netloc=f"{auth}{parts.hostname}:{parts.port}").geturl()


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing configured: no HARNESS_* URLs and no harness.toml in the working folder."""
    for name in ("HARNESS_PG_URL", "HARNESS_REDIS_URL", "HARNESS_CONFIG", "HARNESS_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def pg_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A root with one embedded PostgreSQL for this module, started by two threads at once."""
    root = tmp_path_factory.mktemp("services")
    yield root
    EmbeddedPostgres(root).stop()


@pytest.fixture(scope="module")
def concurrent_starts(pg_root: Path) -> list[ServiceInfo | BaseException]:
    # initdb + start takes about a second: do it once, and make it the concurrency test too.
    results: list[ServiceInfo | BaseException] = []

    def start() -> None:
        try:
            results.append(EmbeddedPostgres(pg_root).start())
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def pg(pg_root: Path, concurrent_starts: list[ServiceInfo | BaseException]) -> ServiceInfo:
    """The module's server as it runs now (a test may have restarted it)."""
    return EmbeddedPostgres(pg_root).start()


def test_concurrent_starts_share_one_server(
    pg_root: Path, concurrent_starts: list[ServiceInfo | BaseException]
) -> None:
    first, second = concurrent_starts
    assert isinstance(first, ServiceInfo), first
    assert isinstance(second, ServiceInfo), second
    assert first == second
    assert first.embedded
    assert first.name == "postgres"
    assert first.pid is not None
    assert sorted(p.name for p in (pg_root / "pg").iterdir() if p.name.startswith("data")) == [
        "data"
    ]


def test_postgres_runs_as_configured(pg: ServiceInfo, pg_root: Path) -> None:
    parts = urlsplit(pg.url)
    assert (parts.scheme, parts.hostname, parts.username, parts.path) == (
        "postgresql",
        "127.0.0.1",
        "postgres",
        "/postgres",
    )
    with psycopg.connect(pg.url) as conn:
        shown = {
            name: conn.execute(f"SHOW {name}").fetchone()
            for name in ("max_connections", "listen_addresses", "password_encryption")
        }
        version = conn.execute("SHOW server_version_num").fetchone()
    assert shown == {
        "max_connections": ("300",),
        "listen_addresses": ("127.0.0.1",),
        "password_encryption": ("scram-sha-256",),
    }
    assert version is not None
    assert int(version[0]) >= 160000

    password_file = pg_root / "pg" / "password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == password_of(pg.url)

    state = (pg_root / "services.json").read_text()
    assert password_of(pg.url) not in state
    assert json.loads(state)["postgres"]["pid"] == pg.pid
    assert json.loads(state)["postgres"]["port"] == parts.port


def test_postgres_needs_the_password(pg: ServiceInfo) -> None:
    # scram-sha-256 for TCP and local connections: no trust anywhere.
    with pytest.raises(DatabaseError, match="needs a password"):
        check_postgres(with_password(pg.url, None))


def test_status_and_start_reuse_the_running_server(pg: ServiceInfo, pg_root: Path) -> None:
    assert EmbeddedPostgres(pg_root).status() == pg
    assert EmbeddedPostgres(pg_root).start() == pg
    assert services.postgres_url(root=pg_root, start=False) == pg.url


def test_masked_url_hides_the_password(pg: ServiceInfo) -> None:
    password = password_of(pg.url)
    assert pg.masked_url == pg.url.replace(password, "***")
    assert password not in pg.masked_url
    assert password not in repr(pg)
    assert password not in str(pg)


def test_stop_then_start_keeps_data_password_and_port(pg: ServiceInfo, pg_root: Path) -> None:
    server = EmbeddedPostgres(pg_root)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (id int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    assert server.stop() is True
    assert server.status() is None
    assert server.stop() is False
    with pytest.raises(DatabaseError, match="connection refused"):
        check_postgres(pg.url)

    again = server.start()
    assert again.url == pg.url
    assert again.pid != pg.pid
    with psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT id FROM kept").fetchall() == [(42,)]


def test_start_failure_quotes_the_log_without_the_password(pg: ServiceInfo, pg_root: Path) -> None:
    server = EmbeddedPostgres(pg_root)
    conf = pg_root / "pg" / "data" / "postgresql.conf"
    original = conf.read_bytes()
    server.stop()
    conf.write_bytes(original + b"shared_buffers = 'lots'\n")
    try:
        with pytest.raises(ServiceError) as caught:
            server.start()
    finally:
        conf.write_bytes(original)
    message = str(caught.value)
    assert 'invalid value for parameter "shared_buffers"' in message
    assert str(pg_root / "pg" / "log") in message
    assert password_of(pg.url) not in message
    assert server.start().url == pg.url


def test_check_postgres_on_a_closed_port_names_host_and_port() -> None:
    port = closed_port()
    with pytest.raises(DatabaseError) as caught:
        check_postgres(f"postgresql://postgres:secret-pw@127.0.0.1:{port}/postgres")
    message = str(caught.value)
    assert message == (
        f"cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused; is the server running?"
    )
    assert caught.value.exit_code == 4


def test_check_postgres_wrong_password_is_not_echoed(pg: ServiceInfo) -> None:
    with pytest.raises(DatabaseError) as caught:
        check_postgres(with_password(pg.url, WRONG_PASSWORD))
    message = str(caught.value)
    port = urlsplit(pg.url).port
    assert message == (
        f"PostgreSQL at 127.0.0.1:{port} refused user 'postgres': "
        "password authentication failed; check the password in the URL"
    )
    assert WRONG_PASSWORD not in message
    assert "\n" not in message


def test_check_postgres_missing_database(pg: ServiceInfo) -> None:
    url = urlsplit(pg.url)._replace(path="/no_such_db").geturl()
    with pytest.raises(DatabaseError, match="has no database 'no_such_db'") as caught:
        check_postgres(url)
    assert password_of(pg.url) not in str(caught.value)


def test_socket_dir_falls_back_to_a_short_path_when_the_root_is_deep() -> None:
    deep = Path("/tmp") / ("d" * 120) / "pg"
    sock = services._socket_dir(deep)
    assert sock.parent == Path("/tmp")
    assert len(os.fsencode(sock / ".s.PGSQL.65535")) <= 107
    assert services._socket_dir(deep) == sock
    assert services._socket_dir(Path("/tmp/short/pg")) == Path("/tmp/short/pg/sock")


# --------------------------------------------------------------------------- resolution


def test_postgres_url_honours_the_environment_without_starting_anything(
    no_config: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    given = "postgresql://app:s3cret@db.example:5432/app"
    monkeypatch.setenv("HARNESS_PG_URL", given)
    root = tmp_path / "home"
    assert services.postgres_url(root=root) == given
    assert services.postgres_url("postgresql://cli@h/db", root=root) == "postgresql://cli@h/db"
    assert not root.exists()


def test_redis_url_honours_the_environment_without_starting_anything(
    no_config: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HARNESS_REDIS_URL", "redis://:pw@cache.example:6379/1")
    root = tmp_path / "home"
    assert services.redis_url(root=root) == "redis://:pw@cache.example:6379/1"
    assert not root.exists()


def test_urls_without_a_server_and_without_start_say_what_to_do(
    no_config: None, tmp_path: Path
) -> None:
    with pytest.raises(ServiceError, match=r"give --pg URL or set HARNESS_PG_URL") as caught:
        services.postgres_url(root=tmp_path / "home", start=False)
    assert caught.value.exit_code == 5
    with pytest.raises(ServiceError, match=r"give --redis URL or set HARNESS_REDIS_URL"):
        services.redis_url(root=tmp_path / "home", start=False)


def test_start_all_status_all_stop_all(no_config: None, pg: ServiceInfo, pg_root: Path) -> None:
    try:
        pg_info, redis_info = services.start_all(pg_root)
        assert pg_info == pg
        assert redis_info.name == "redis"
        assert services.status_all(pg_root) == [pg_info, redis_info]
    finally:
        assert EmbeddedRedis(pg_root).stop() is True
    assert services.status_all(pg_root) == [pg, None]


def test_start_all_reports_a_configured_server_as_not_embedded(
    no_config: None, monkeypatch: pytest.MonkeyPatch, pg: ServiceInfo, tmp_path: Path
) -> None:
    monkeypatch.setenv("HARNESS_PG_URL", pg.url)
    root = tmp_path / "home"
    try:
        pg_info, redis_info = services.start_all(root)
        assert (pg_info.url, pg_info.embedded, pg_info.pid) == (pg.url, False, None)
        assert redis_info.embedded
        assert not (root / "pg").exists()
    finally:
        # The configured server is not ours: stop_all leaves it running.
        assert services.stop_all(root) == [False, True]
    check_postgres(pg.url)


# --------------------------------------------------------------------------- Redis


def test_redis_start_status_reuse_stop(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    assert server.status() is None
    info = server.start()
    try:
        assert info.name == "redis"
        assert info.embedded
        parts = urlsplit(info.url)
        assert (parts.scheme, parts.hostname, parts.path) == ("redis", "127.0.0.1", "/0")
        password = password_of(info.url)
        assert password not in info.masked_url
        assert password not in (tmp_path / "services.json").read_text()
        for secret_file in ("password", "redis.conf"):
            assert stat.S_IMODE((tmp_path / "redis" / secret_file).stat().st_mode) == 0o600

        client = redis.Redis.from_url(info.url)
        try:
            assert client.ping() is True
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
        finally:
            client.close()

        assert EmbeddedRedis(tmp_path).status() == info
        assert EmbeddedRedis(tmp_path).start() == info
    finally:
        assert server.stop() is True
    assert server.status() is None
    assert server.stop() is False
    with pytest.raises(DatabaseError, match="connection refused"):
        check_redis(info.url)
    # A restart keeps the password and, when it is still free, the port.
    again = server.start()
    try:
        assert again.url == info.url
    finally:
        server.stop()


def test_redis_concurrent_starts_from_two_processes_share_one_server(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from harness.services import EmbeddedRedis; "
        "i = EmbeddedRedis(Path(sys.argv[1])).start(); print(i.pid, i.url)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    try:
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outputs.append(out.strip())
        assert outputs[0] == outputs[1]
        assert EmbeddedRedis(tmp_path).status() is not None
    finally:
        EmbeddedRedis(tmp_path).stop()


def test_check_redis_wrong_password_is_not_echoed(private_redis: EmbeddedRedis) -> None:
    info = private_redis.status()
    assert info is not None
    with pytest.raises(DatabaseError) as caught:
        check_redis(with_password(info.url, WRONG_PASSWORD))
    message = str(caught.value)
    assert "refused the password" in message
    assert WRONG_PASSWORD not in message
    assert caught.value.exit_code == 4


def test_check_redis_without_password(private_redis: EmbeddedRedis) -> None:
    info = private_redis.status()
    assert info is not None
    port = urlsplit(info.url).port
    with pytest.raises(DatabaseError, match=f"Redis at 127.0.0.1:{port} needs a password"):
        check_redis(f"redis://127.0.0.1:{port}/0")


def test_check_redis_on_a_closed_port_names_host_and_port() -> None:
    port = closed_port()
    with pytest.raises(DatabaseError) as caught:
        check_redis(f"redis://:secret-pw@127.0.0.1:{port}/0")
    assert str(caught.value) == (
        f"cannot reach Redis at 127.0.0.1:{port}: connection refused; is the server running?"
    )


def test_private_redis_can_be_killed(private_redis: EmbeddedRedis) -> None:
    info = private_redis.status()
    assert info is not None and info.pid is not None
    check_redis(info.url)
    os.kill(info.pid, signal.SIGKILL)
    with pytest.raises(DatabaseError, match="cannot reach Redis"):
        check_redis(info.url)
    # The process may linger a moment as a zombie; status must not call it running.
    for _ in range(100):
        if private_redis.status() is None:
            break
        threading.Event().wait(0.02)
    assert private_redis.status() is None


# --------------------------------------------------------------------------- shared fixtures


def test_pg_database_is_fresh_and_separate(pg_database: str, pg_url: str) -> None:
    name = urlsplit(pg_database).path.lstrip("/")
    assert name.startswith("harness_test_")
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        assert tables == (0,)
    check_postgres(pg_url)


def test_session_redis_answers(redis_url: str) -> None:
    check_redis(redis_url)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cr3t@db:5432/app", "postgresql://app:***@db:5432/app"),
        (
            "postgresql://db/app?user=app&password=s3cr3t",
            "postgresql://db/app?user=app&password=***",
        ),
        ("redis://:s3cr3t@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("sqlite:///data/app.db", "sqlite:///data/app.db"),
    ],
)
def test_every_form_of_password_in_a_url_is_masked(url: str, masked: str) -> None:
    from harness.urls import mask_url

    assert mask_url(url) == masked
    assert "s3cr3t" not in mask_url(url)
