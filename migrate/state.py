"""A migration's state, kept in the target database next to the data it describes.

Every chunk of rows is committed in one transaction with its record here (and its rejects),
so after a crash at any moment the state says exactly which rows are in: a resume redoes the
chunks that are not recorded, and none twice. Each step after the copy (keys, indexes,
foreign keys, views, sequences) is recorded in the transaction that does it; every object the
migration creates is recorded, so a rollback drops exactly those.

A run is *owned* by one process at a time (a token in ``runs.owner``). Each chunk's
transaction first takes a share lock on its run's row and checks the token; a resume takes the
row over with an UPDATE, which waits for chunks in flight and makes any straggler from the
killed run roll back instead of loading its chunk a second time.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from migrate.names import pg_ident
from migrate.reader import Chunk

SCHEMA = "harness_migrate"
_S = pg_ident(SCHEMA)

_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {_S}",
    f"""CREATE TABLE IF NOT EXISTS {_S}.runs (
        id text PRIMARY KEY,
        source text NOT NULL,
        fingerprint jsonb NOT NULL,
        plan_digest text NOT NULL,
        target_schema text NOT NULL,
        options jsonb NOT NULL,
        out_dir text NOT NULL,
        chunks jsonb NOT NULL,
        status text NOT NULL,
        phase text NOT NULL,
        owner text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    )""",
    f"""CREATE TABLE IF NOT EXISTS {_S}.chunks (
        run_id text NOT NULL REFERENCES {_S}.runs ON DELETE CASCADE,
        table_name text NOT NULL,
        chunk integer NOT NULL,
        rows_read bigint NOT NULL,
        rows_loaded bigint NOT NULL,
        rows_rejected bigint NOT NULL,
        seconds double precision NOT NULL,
        careful boolean NOT NULL,
        done_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, table_name, chunk)
    )""",
    f"""CREATE TABLE IF NOT EXISTS {_S}.rejects (
        id bigserial PRIMARY KEY,
        run_id text NOT NULL REFERENCES {_S}.runs ON DELETE CASCADE,
        table_name text NOT NULL,
        phase text NOT NULL,
        rowid bigint,
        record jsonb NOT NULL
    )""",
    f"CREATE INDEX IF NOT EXISTS rejects_run ON {_S}.rejects (run_id, table_name)",
    f"""CREATE TABLE IF NOT EXISTS {_S}.steps (
        run_id text NOT NULL REFERENCES {_S}.runs ON DELETE CASCADE,
        step text NOT NULL,
        ok boolean NOT NULL,
        detail jsonb NOT NULL DEFAULT '{{}}',
        done_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, step)
    )""",
    f"""CREATE TABLE IF NOT EXISTS {_S}.objects (
        run_id text NOT NULL REFERENCES {_S}.runs ON DELETE CASCADE,
        ordinal integer NOT NULL,
        kind text NOT NULL,
        name text NOT NULL,
        PRIMARY KEY (run_id, ordinal)
    )""",
]
# One lock id for "a migration run is being set up or taken over in this database".
_SETUP_LOCK = 0x6861726E  # "harn"


class SupersededError(Exception):
    """This process no longer owns the run: a resume took it over."""


@dataclass
class RunRecord:
    """One migration run as the state holds it."""

    id: str
    source: str
    fingerprint: dict[str, Any]
    plan_digest: str
    target_schema: str
    options: dict[str, Any]
    out_dir: str
    chunks: list[Chunk]
    status: str  # running, done, failed
    phase: str  # tables, copy, keys, indexes, foreign_keys, views, identities, analyze, done
    owner: str
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None


def new_owner() -> str:
    """A token naming the process that owns a run."""
    return secrets.token_hex(8)


async def state_exists(con: asyncpg.Connection) -> bool:
    """True when the database holds a migration state schema."""
    found = await con.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{_S}.runs")
    return bool(found)


async def ensure(con: asyncpg.Connection) -> None:
    """Create the state schema and tables if they are missing."""
    async with con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock($1)", _SETUP_LOCK)
        for statement in _DDL:
            await con.execute(statement)


def _record(row: asyncpg.Record) -> RunRecord:
    return RunRecord(
        id=row["id"],
        source=row["source"],
        fingerprint=json.loads(row["fingerprint"]),
        plan_digest=row["plan_digest"],
        target_schema=row["target_schema"],
        options=json.loads(row["options"]),
        out_dir=row["out_dir"],
        chunks=[Chunk.from_dict(c) for c in json.loads(row["chunks"])],
        status=row["status"],
        phase=row["phase"],
        owner=row["owner"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


async def runs(con: asyncpg.Connection) -> list[RunRecord]:
    """Every run recorded in this database, newest first."""
    if not await state_exists(con):
        return []
    rows = await con.fetch(f"SELECT * FROM {_S}.runs ORDER BY started_at DESC, id DESC")  # noqa: S608
    return [_record(r) for r in rows]


async def create_run(con: asyncpg.Connection, run: RunRecord) -> None:
    """Record a new run (its chunks included) owned by ``run.owner``."""
    await con.execute(
        f"""INSERT INTO {_S}.runs (id, source, fingerprint, plan_digest, target_schema,
            options, out_dir, chunks, status, phase, owner)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",  # noqa: S608
        run.id,
        run.source,
        json.dumps(run.fingerprint),
        run.plan_digest,
        run.target_schema,
        json.dumps(run.options),
        run.out_dir,
        json.dumps([c.to_dict() for c in run.chunks]),
        run.status,
        run.phase,
        run.owner,
    )


async def claim(con: asyncpg.Connection, run_id: str, owner: str) -> None:
    """Take ``run_id`` over for ``owner``: waits for the chunks the old owner has in flight,
    after which no process but ``owner`` can commit to the run."""
    await con.execute(
        f"UPDATE {_S}.runs SET owner = $2, status = 'running', updated_at = now() WHERE id = $1",  # noqa: S608
        run_id,
        owner,
    )


async def check_owner(con: asyncpg.Connection, run_id: str, owner: str) -> None:
    """Inside a transaction: hold the run's row (shared) and make sure we still own it."""
    found = await con.fetchval(
        f"SELECT 1 FROM {_S}.runs WHERE id = $1 AND owner = $2 FOR SHARE",  # noqa: S608
        run_id,
        owner,
    )
    if found is None:
        raise SupersededError(run_id)


async def mark_stopped(con: asyncpg.Connection, run_id: str, owner: str) -> None:
    """Say the run stopped before the end (unless another process owns it now)."""
    await con.execute(
        f"UPDATE {_S}.runs SET status = 'stopped', updated_at = now() "  # noqa: S608
        "WHERE id = $1 AND owner = $2 AND status = 'running'",
        run_id,
        owner,
    )


async def set_phase(
    con: asyncpg.Connection, run_id: str, phase: str, status: str = "running"
) -> None:
    """Move the run to ``phase`` (``done`` also stamps the finish time)."""
    await con.execute(
        f"""UPDATE {_S}.runs SET phase = $2, status = $3, updated_at = now(),
            finished_at = CASE WHEN $3 = 'done' THEN now() ELSE finished_at END
            WHERE id = $1""",  # noqa: S608
        run_id,
        phase,
        status,
    )


async def record_chunk(
    con: asyncpg.Connection,
    run_id: str,
    chunk: Chunk,
    *,
    read: int,
    loaded: int,
    rejected: int,
    seconds: float,
    careful: bool,
) -> None:
    """Record a chunk as loaded (inside the transaction that loaded it)."""
    await con.execute(
        f"""INSERT INTO {_S}.chunks (run_id, table_name, chunk, rows_read, rows_loaded,
            rows_rejected, seconds, careful) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",  # noqa: S608
        run_id,
        chunk.table,
        chunk.index,
        read,
        loaded,
        rejected,
        seconds,
        careful,
    )


@dataclass(frozen=True)
class ChunkDone:
    """A loaded chunk's counts."""

    table: str
    index: int
    read: int
    loaded: int
    rejected: int
    seconds: float
    careful: bool


async def chunks_done(con: asyncpg.Connection, run_id: str) -> list[ChunkDone]:
    """The chunks of ``run_id`` that are loaded."""
    rows = await con.fetch(
        f"""SELECT table_name, chunk, rows_read, rows_loaded, rows_rejected, seconds, careful
            FROM {_S}.chunks WHERE run_id = $1""",  # noqa: S608
        run_id,
    )
    return [ChunkDone(*r) for r in rows]


async def insert_rejects(
    con: asyncpg.Connection, run_id: str, records: Sequence[Mapping[str, Any]]
) -> None:
    """Store reject records (inside the transaction that decided them)."""
    if not records:
        return
    await con.executemany(
        f"""INSERT INTO {_S}.rejects (run_id, table_name, phase, rowid, record)
            VALUES ($1, $2, $3, $4, $5)""",  # noqa: S608
        [(run_id, r["table"], r["phase"], r["rowid"], json.dumps(r, default=str)) for r in records],
    )


async def reject_counts(con: asyncpg.Connection, run_id: str) -> dict[tuple[str, str], int]:
    """(table, phase) -> rejected rows."""
    rows = await con.fetch(
        f"""SELECT table_name, phase, count(*) FROM {_S}.rejects WHERE run_id = $1
            GROUP BY 1, 2""",  # noqa: S608
        run_id,
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


_PHASE_ORDER = "CASE phase WHEN 'copy' THEN 0 WHEN 'keys' THEN 1 WHEN 'indexes' THEN 2 ELSE 3 END"


async def reject_records(con: asyncpg.Connection, run_id: str, table: str) -> list[dict[str, Any]]:
    """Every reject of ``table``, in a stable order (phase, rowid, then as decided)."""
    rows = await con.fetch(
        f"""SELECT record FROM {_S}.rejects WHERE run_id = $1 AND table_name = $2
            ORDER BY {_PHASE_ORDER}, rowid NULLS LAST, id""",  # noqa: S608
        run_id,
        table,
    )
    return [json.loads(r[0]) for r in rows]


async def mark_step(
    con: asyncpg.Connection, run_id: str, step: str, *, ok: bool = True, detail: Any = None
) -> None:
    """Record a step after the copy as done (``ok``) or failed with ``detail``."""
    await con.execute(
        f"""INSERT INTO {_S}.steps (run_id, step, ok, detail) VALUES ($1, $2, $3, $4)
            ON CONFLICT (run_id, step) DO UPDATE SET ok = $3, detail = $4, done_at = now()""",  # noqa: S608
        run_id,
        step,
        ok,
        json.dumps(detail if detail is not None else {}, default=str),
    )


async def steps(con: asyncpg.Connection, run_id: str) -> dict[str, tuple[bool, Any]]:
    """step -> (ok, detail) for the steps recorded."""
    rows = await con.fetch(
        f"SELECT step, ok, detail FROM {_S}.steps WHERE run_id = $1",  # noqa: S608
        run_id,
    )
    return {r[0]: (bool(r[1]), json.loads(r[2])) for r in rows}


async def record_objects(
    con: asyncpg.Connection, run_id: str, objects: Iterable[tuple[str, str]]
) -> None:
    """Record objects the run created (kind, name), in creation order."""
    start = await con.fetchval(
        f"SELECT coalesce(max(ordinal), 0) FROM {_S}.objects WHERE run_id = $1",  # noqa: S608
        run_id,
    )
    rows = [(run_id, start + i, kind, name) for i, (kind, name) in enumerate(objects, 1)]
    if rows:
        await con.executemany(
            f"INSERT INTO {_S}.objects (run_id, ordinal, kind, name) VALUES ($1, $2, $3, $4)",  # noqa: S608
            rows,
        )


async def objects(con: asyncpg.Connection, run_id: str) -> list[tuple[str, str]]:
    """(kind, name) of every object the run created, in creation order."""
    rows = await con.fetch(
        f"SELECT kind, name FROM {_S}.objects WHERE run_id = $1 ORDER BY ordinal",  # noqa: S608
        run_id,
    )
    return [(r[0], r[1]) for r in rows]


async def forget(con: asyncpg.Connection, run_id: str) -> bool:
    """Delete the run's state; drop the state schema when no run is left. True when the
    schema was dropped."""
    await con.execute(f"DELETE FROM {_S}.runs WHERE id = $1", run_id)  # noqa: S608
    left = await con.fetchval(f"SELECT count(*) FROM {_S}.runs")  # noqa: S608
    if left:
        return False
    await con.execute(f"DROP SCHEMA {_S} CASCADE")
    return True
