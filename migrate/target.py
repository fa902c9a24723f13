"""The PostgreSQL side before the copy: connecting, checking rights, finding what is in the way.

Connection failures become the harness's one-line :class:`~harness.errors.DatabaseError`
(checked with :func:`harness.services.check_postgres`, which never echoes a password);
missing rights and tables already in the target become :class:`~migrate.errors.TargetError`
before anything is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from harness.errors import DatabaseError
from migrate.errors import TargetError
from migrate.names import pg_ident, truncated_pg_name
from migrate.state import SCHEMA as STATE_SCHEMA

CONNECT_TIMEOUT_S = 10.0
_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "i": "index"}
_KINDS.update({"S": "sequence", "f": "foreign table", "I": "index"})


T = TypeVar("T")


def run_guarded(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; the server failing or another process taking a run over becomes the
    migration's one-line error (the state keeps what was done, for --resume)."""
    from migrate.errors import CopyError
    from migrate.state import SupersededError

    try:
        return asyncio.run(work)
    except SupersededError:
        raise CopyError(
            "another `harness migrate` process took this run over (a --resume or a rollback)"
        ) from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise CopyError(
            f"PostgreSQL failed: {' '.join(str(exc).split())}; what was done is recorded: "
            "fix the cause and run the command again (`migrate run --resume` for a copy)"
        ) from None


def libpq_url(url: str) -> str:
    """``url`` without a SQLAlchemy driver suffix (a plain URL is returned untouched, so a
    worker process never loads the URL parser)."""
    if url.startswith(("postgresql://", "postgres://")):
        return url
    from harness.urls import plain_postgres_url

    return plain_postgres_url(url)


async def connect(url: str, schema: str | None = None, *, bulk: bool = False) -> asyncpg.Connection:
    """A connection whose search path is ``schema`` (the plan's names are unqualified).

    ``bulk`` sessions commit without waiting for the WAL flush: a chunk and its state record
    commit together, so a server crash loses both or neither and a resume redoes the chunk.
    """
    settings = {"application_name": "harness-migrate"}
    if schema is not None:
        settings["search_path"] = pg_ident(schema)
    if bulk:
        settings["synchronous_commit"] = "off"
    try:
        return await asyncpg.connect(
            dsn=libpq_url(url), server_settings=settings, timeout=CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        from harness.urls import mask_url, scrub_secret

        password = urlsplit(libpq_url(url)).password
        text = " ".join(scrub_secret(str(exc), password).split())
        raise DatabaseError(f"cannot connect to PostgreSQL at {mask_url(url)}: {text}") from None


@dataclass(frozen=True)
class Existing:
    """A relation already in the target schema under a name the plan wants."""

    name: str
    kind: str


async def check_rights(con: asyncpg.Connection, schema: str) -> bool:
    """Raise :class:`TargetError` unless the user may create what the migration needs;
    return True when ``schema`` must be created."""
    user, database = await con.fetchrow("SELECT current_user, current_database()")
    on_db = await con.fetchval("SELECT has_database_privilege(current_database(), 'CREATE')")
    exists = await con.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
    state = await con.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", STATE_SCHEMA)
    if exists:
        on_schema = await con.fetchval("SELECT has_schema_privilege($1, 'CREATE')", schema)
        if not on_schema:
            raise TargetError(
                f"user {user!r} cannot create tables in schema {schema!r} of database "
                f"{database!r}; grant it (GRANT CREATE ON SCHEMA {pg_ident(schema)} TO "
                f"{pg_ident(user)}) or choose another schema with --schema"
            )
    if (not exists or not state) and not on_db:
        missing = [s for s, there in ((schema, exists), (STATE_SCHEMA, state)) if not there]
        raise TargetError(
            f"user {user!r} cannot create schema(s) {', '.join(map(repr, missing))} in "
            f"database {database!r}; grant it (GRANT CREATE ON DATABASE {pg_ident(database)} "
            f"TO {pg_ident(user)}) or have an owner create them first"
        )
    if state:
        usable = await con.fetchval(
            "SELECT has_schema_privilege($1, 'USAGE') AND has_schema_privilege($1, 'CREATE')",
            STATE_SCHEMA,
        )
        if not usable:
            raise TargetError(
                f"user {user!r} cannot use the migration state schema {STATE_SCHEMA!r} in "
                f"database {database!r}; run as its owner or grant USAGE, CREATE on it"
            )
    return not exists


async def existing(con: asyncpg.Connection, schema: str, names: Iterable[str]) -> list[Existing]:
    """Relations of ``schema`` that carry one of ``names`` (as PostgreSQL cuts them)."""
    wanted = sorted({truncated_pg_name(n) for n in names})
    rows = await con.fetch(
        """SELECT c.relname, c.relkind::text FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relname = ANY($2::text[])
           ORDER BY c.relname""",
        schema,
        wanted,
    )
    # Composite types and the like share the namespace too, but CREATE TABLE replaces none.
    return [Existing(r[0], _KINDS[r[1]]) for r in rows if r[1] in _KINDS]


async def drop_existing(con: asyncpg.Connection, schema: str, found: Iterable[Existing]) -> None:
    """``--if-exists replace``: drop what is in the way (with what depends on it)."""
    order = {"view": 0, "materialized view": 1, "table": 2, "foreign table": 2, "sequence": 3}
    async with con.transaction():
        for item in sorted(found, key=lambda e: order.get(e.kind, 4)):
            kind = item.kind.upper()
            target = f"{pg_ident(schema)}.{pg_ident(item.name)}"
            await con.execute(f"DROP {kind} IF EXISTS {target} CASCADE")


@dataclass
class TargetReport:
    """What ``harness migrate plan --pg`` found on the target, without writing to it."""

    server_version: str
    user: str
    database: str
    schema: str
    problems: list[str]
    conflicts: list[Existing]
    unfinished: list[str]


def inspect_target(url: str, schema: str, names: Iterable[str]) -> TargetReport:
    """Read-only look at the target: rights, relations in the way, unfinished runs."""
    return run_guarded(_inspect(url, schema, list(names)))


async def _inspect(url: str, schema: str, names: list[str]) -> TargetReport:
    from migrate import state

    con = await connect(url)
    try:
        version, user, database = await con.fetchrow(
            "SELECT current_setting('server_version'), current_user, current_database()"
        )
        problems: list[str] = []
        try:
            await check_rights(con, schema)
        except TargetError as exc:
            problems.append(str(exc))
        conflicts = await existing(con, schema, names)
        unfinished = [
            f"{r.id} (phase {r.phase})" for r in await state.runs(con) if r.status != "done"
        ]
        return TargetReport(version, user, database, schema, problems, conflicts, unfinished)
    finally:
        await con.close()
