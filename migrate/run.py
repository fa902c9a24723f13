"""``harness migrate run``: plan, create the tables, copy every chunk, finish the schema, prove
the counts, and say what was rejected.

The run directory (``runs/<UTC>-migrate-<source>``) holds ``plan.sql`` and ``plan.json`` (what
was created and why), ``rejects/<table>.jsonl`` (every row PostgreSQL did not take, and why)
and ``summary.json`` (the figures). The run's state lives in the target database (see
:mod:`migrate.state`), which is what makes ``--resume`` exact and ``rollback`` precise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import asyncpg
from rich.console import Console

from harness.errors import ConfigError
from harness.run_dirs import new_run_dir
from harness.urls import mask_url
from migrate import rejects, state
from migrate.convert import ColumnSpec, TableSpec
from migrate.errors import CopyError, MigrationError, ResumeError, TargetError
from migrate.names import pg_ident
from migrate.parallel import WorkerPool
from migrate.plan import Plan, make_plan, sqlite_path_of
from migrate.postload import PostLoad, StepOutcome
from migrate.reader import DEFAULT_CHUNK_ROWS, Chunk, plan_chunks
from migrate.rollback import drop_run
from migrate.sqlite_file import Integrity, open_source
from migrate.target import (
    check_rights,
    connect,
    drop_existing,
    existing,
    libpq_url,
    run_guarded,
)
from migrate.worker import WorkerSetup

EXIT_REJECTED = 25  # finished; some rows are in the rejects
EXIT_OBJECTS_FAILED = 30  # finished; PostgreSQL refused some planned objects
IfExists = Literal["fail", "replace"]
T = TypeVar("T")


def default_workers() -> int:
    """One worker per core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass
class MigrateOptions:
    """What ``harness migrate run`` was asked to do."""

    source: Path
    pg_url: str | None = None
    schema: str = "public"
    workers: int | None = None
    out_dir: Path | None = None
    runs_dir: Path = Path("runs")
    if_exists: IfExists | None = None
    resume: bool = False
    strict: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    integrity: Integrity = "quick"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    progress: bool = True


@dataclass
class TableResult:
    """One table's outcome."""

    name: str
    source_rows: int
    read: int
    loaded: int
    rejected: dict[str, int]
    rejects_file: str | None

    @property
    def rejected_total(self) -> int:
        """Rows rejected in any phase."""
        return sum(self.rejected.values())


@dataclass
class MigrationResult:
    """Everything a finished run says about itself (``summary.json``)."""

    run_id: str
    out_dir: str
    source: str
    target: str
    schema: str
    resumed: bool
    workers: int
    tables: list[TableResult]
    failed_steps: list[StepOutcome]
    human: list[str]
    seconds: dict[str, float]
    source_bytes: int
    verified: bool
    exit_code: int = 0

    @property
    def rows_read(self) -> int:
        """Rows read from SQLite."""
        return sum(t.read for t in self.tables)

    @property
    def rows_loaded(self) -> int:
        """Rows in PostgreSQL at the end."""
        return sum(t.loaded for t in self.tables)

    @property
    def rows_rejected(self) -> int:
        """Rows in the rejects."""
        return sum(t.rejected_total for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the totals."""
        data = asdict(self)
        copy_s = self.seconds.get("copy", 0.0)
        data["rows"] = {
            "read": self.rows_read,
            "loaded": self.rows_loaded,
            "rejected": self.rows_rejected,
        }
        data["copy_rows_per_s"] = self.rows_read / copy_s if copy_s else None
        data["copy_mb_per_s"] = self.source_bytes / 1e6 / copy_s if copy_s else None
        return data


# -- source identity -------------------------------------------------------------------------


def source_fingerprint(path: Path) -> dict[str, Any]:
    """What tells a resume the source is the file the run began on: the database file's size
    and modification time and the size of its write-ahead log."""
    stat = path.stat()
    wal = path.with_name(path.name + "-wal")
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "wal_size": wal.stat().st_size if wal.exists() else 0,
    }


def plan_digest(plan: Plan) -> str:
    """A digest of what the plan creates and how each column converts."""
    payload = {
        "copy_tables": [t.create_sql_for_copy for t in plan.tables],
        "statements": {p: plan.statements(p) for p in ("indexes", "foreign_keys", "views")},
        "identities": plan.statements("identities"),
        "casts": [
            [t.name, c.name, c.cast.pg_type, c.cast.conversion]
            for t in plan.tables
            for c in t.columns
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def table_specs(plan: Plan) -> dict[str, TableSpec]:
    """What the copy needs of each table: loaded columns, conversions, keys."""
    specs: dict[str, TableSpec] = {}
    for table in plan.tables:
        columns = tuple(
            ColumnSpec(
                name=c.name,
                conversion=c.cast.conversion,
                pg_type=c.cast.pg_type,
                required=c.not_null or c.name in table.primary_key,
                storage=tuple(k for k, v in (c.profile.storage.items() if c.profile else ()) if v),
            )
            for c in table.columns
            if c.loaded
        )
        names = {c.name.lower() for c in table.columns}
        rowid = next((n for n in ("rowid", "_rowid_", "oid") if n not in names), None)
        specs[table.name] = TableSpec(
            table.name,
            columns,
            table.primary_key,
            table.without_rowid,
            plan.timezone,
            None if table.without_rowid else rowid,
        )
    return specs


def _run_dir(opts: MigrateOptions, source: Path) -> Path:
    return opts.out_dir or new_run_dir(opts.runs_dir, f"migrate-{source.stem}")


# -- the run ---------------------------------------------------------------------------------


def run_migration(opts: MigrateOptions, console: Console | None = None) -> MigrationResult:
    """Migrate ``opts.source`` into PostgreSQL (see the module docstring)."""
    from harness.services import check_postgres, postgres_url

    if opts.schema == state.SCHEMA:
        raise ConfigError(f"--schema {state.SCHEMA} is the migration's own state schema")
    if opts.workers is not None and opts.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if opts.chunk_rows < 1:
        raise ConfigError("--chunk-rows must be at least 1")
    started = time.perf_counter()
    path = sqlite_path_of(opts.source)
    url = postgres_url(opts.pg_url)
    check_postgres(url)
    # The workers start now and load their modules while the source is planned.
    # Taken before the source is read: a change while it is planned or copied is caught.
    fingerprint = source_fingerprint(path) if path.is_file() else {}
    with WorkerPool(opts.workers or default_workers()) as pool:
        plan = make_plan(
            path, overrides=opts.overrides, timezone=opts.timezone, integrity=opts.integrity
        )
        job = _Migration(opts, path, url, plan, console, pool, fingerprint)
        job.seconds["plan"] = time.perf_counter() - started
        return job.execute(started)


class _Migration:
    def __init__(
        self,
        opts: MigrateOptions,
        path: Path,
        url: str,
        plan: Plan,
        console: Console | None,
        pool: WorkerPool,
        fingerprint: dict[str, Any],
    ) -> None:
        self.opts = opts
        self.pool = pool
        self.path = path
        self.url = url
        self.plan = plan
        self.console = console
        self.workers = opts.workers or default_workers()
        self.specs = table_specs(plan)
        self.seconds: dict[str, float] = {}
        self.fingerprint = fingerprint
        self.digest = plan_digest(plan)
        self.resumed = False
        self.current: state.RunRecord | None = None

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)

    def execute(self, started: float) -> MigrationResult:
        """Prepare, copy, finish. The copy runs outside any event loop, so Ctrl-C stops it
        at once (asyncio would only cancel a task, after the copy)."""
        run, pending, done_rows = run_guarded(self._prepare())
        self.current = run
        try:
            self._copy(run, pending, done_rows)
        except BaseException:
            with contextlib.suppress(Exception):
                asyncio.run(self._stopped())
            raise
        result = run_guarded(self._complete(run, started))
        out_dir = Path(run.out_dir)
        (out_dir / "summary.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
        return result

    async def _prepare(self) -> tuple[state.RunRecord, list[Chunk], dict[str, int]]:
        con = await connect(self.url, self.opts.schema)
        try:
            creates_schema = await check_rights(con, self.opts.schema)
            if self.opts.resume:
                run = await self._resume(con)
            else:
                run = await self._start(con, creates_schema)
            done = await state.chunks_done(con, run.id)
        finally:
            await con.close()
        loaded = {(c.table, c.index) for c in done}
        done_rows: dict[str, int] = {}
        for c in done:
            done_rows[c.table] = done_rows.get(c.table, 0) + c.read
        return run, [c for c in run.chunks if (c.table, c.index) not in loaded], done_rows

    async def _complete(self, run: state.RunRecord, started: float) -> MigrationResult:
        con = await connect(self.url, self.opts.schema)
        try:
            loaded = {(c.table, c.index) for c in await state.chunks_done(con, run.id)}
            missing = [c for c in run.chunks if (c.table, c.index) not in loaded]
            if missing:
                raise CopyError(
                    f"{len(missing)} of {len(run.chunks)} chunks were not loaded (first: "
                    f"table {missing[0].table!r}); run `harness migrate run --resume` to load them"
                )
            if source_fingerprint(self.path) != self.fingerprint:
                raise ResumeError(
                    f"{self.path} changed while it was being copied: the copy may mix two "
                    "versions of the data; roll back (`harness migrate rollback`) and migrate "
                    "a quiet copy (sqlite3 SRC '.backup copy.db')"
                )
            await state.set_phase(con, run.id, "keys")
            failed = await self._finish(run)
            result = await self._result(con, run, Path(run.out_dir), failed, started)
            await state.set_phase(con, run.id, "done", "done")
        except BaseException:
            await self._mark_stopped(con)
            raise
        finally:
            await con.close()
        return result

    async def _stopped(self) -> None:
        con = await connect(self.url, self.opts.schema)
        try:
            await self._mark_stopped(con)
        finally:
            await con.close()

    # -- starting and resuming -------------------------------------------------------------
    async def _start(self, con: asyncpg.Connection, creates_schema: bool) -> state.RunRecord:
        opts = self.opts
        previous = await state.runs(con)
        unfinished = [r for r in previous if r.status != "done"]
        if unfinished and opts.if_exists != "replace":
            r = unfinished[0]
            raise TargetError(
                f"an unfinished migration ({r.id}, stopped in phase {r.phase}) is in this "
                "database: finish it with --resume, undo it with `harness migrate rollback`, "
                "or start over with --if-exists replace"
            )
        names = [t.name for t in self.plan.tables] + [v.name for v in self.plan.views]
        names += [i.name for t in self.plan.tables for i in t.indexes if i.sql]
        found = await existing(con, opts.schema, names)
        if found and opts.if_exists != "replace":
            shown = ", ".join(f"{e.name} ({e.kind})" for e in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            ask = (
                "(--if-exists fail)"
                if opts.if_exists == "fail"
                else "; pass --if-exists replace to drop and re-create them, or --if-exists "
                "fail to stop here"
            )
            raise TargetError(
                f"schema {opts.schema!r} already has {shown}{more}, which this migration "
                f"creates {ask}"
            )
        if opts.if_exists == "replace":
            for r in previous:
                if r.status != "done" or r.target_schema == opts.schema:
                    await drop_run(con, r)
                    self.say(f"replaced: rolled back earlier migration {r.id}")
            found = await existing(con, opts.schema, names)
            if found:
                await drop_existing(con, opts.schema, found)
                self.say("replaced: dropped " + ", ".join(f"{e.name} ({e.kind})" for e in found))
            creates_schema = await check_rights(con, opts.schema)
        out_dir = _run_dir(opts, self.path)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "plan.sql").write_text(self.plan.ddl())
        (out_dir / "plan.json").write_text(self.plan.to_json())
        run = state.RunRecord(
            id=f"{out_dir.name}-{state.new_owner()[:6]}",
            source=str(self.path.resolve()),
            fingerprint=self.fingerprint,
            plan_digest=self.digest,
            target_schema=opts.schema,
            options={
                "workers": self.workers,
                "strict": opts.strict,
                "overrides": opts.overrides,
                "timezone": opts.timezone,
                "chunk_rows": opts.chunk_rows,
            },
            out_dir=str(out_dir.resolve()),
            chunks=self._chunks(),
            status="running",
            phase="tables",
            owner=state.new_owner(),
        )
        tick = time.perf_counter()
        await state.ensure(con)
        async with con.transaction():
            await state.create_run(con, run)
            created: list[tuple[str, str]] = []
            if creates_schema:
                await con.execute(f"CREATE SCHEMA {pg_ident(opts.schema)}")
                created.append(("schema", opts.schema))
            for table in self.plan.tables:
                try:
                    await con.execute(table.create_sql_for_copy)
                except asyncpg.PostgresError as exc:
                    raise TargetError(
                        f"PostgreSQL refused table {table.name!r} of the plan "
                        f"({' '.join(str(exc).split())}); nothing was created: check the "
                        "overrides, or review plan.sql in the run directory"
                    ) from None
                created.append(("table", table.name))
            await state.record_objects(con, run.id, created)
            await state.mark_step(con, run.id, "tables")
            await state.set_phase(con, run.id, "copy")
        self.seconds["tables"] = time.perf_counter() - tick
        return run

    def _chunks(self) -> list[Chunk]:
        conn = open_source(self.path)
        try:
            chunks: list[Chunk] = []
            for table in self.plan.tables:
                rows = table.rows or 0
                chunks += plan_chunks(conn, self.specs[table.name], rows, self.opts.chunk_rows)
            return chunks
        finally:
            conn.close()

    async def _resume(self, con: asyncpg.Connection) -> state.RunRecord:
        unfinished = [r for r in await state.runs(con) if r.status != "done"]
        mine = [r for r in unfinished if r.source == str(self.path.resolve())]
        if not mine:
            where = f" (there is one for {unfinished[0].source})" if unfinished else ""
            raise TargetError(
                f"nothing to resume: no unfinished migration of {self.path} in this "
                f"database{where}; run without --resume to start one"
            )
        run = mine[0]
        if run.fingerprint != self.fingerprint:
            raise ResumeError(
                f"{self.path} changed since migration {run.id} began (size, time or WAL "
                "differ): resuming would mix two versions of the data; roll it back "
                "(`harness migrate rollback`) and run again"
            )
        if run.plan_digest != self.digest:
            raise ResumeError(
                f"migration {run.id} was planned with other options (overrides, time zone) or "
                "another schema: resume with the same options, or roll it back and run again"
            )
        run.owner = state.new_owner()
        await state.claim(con, run.id, run.owner)
        out_dir = Path(run.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        await self._rewrite_rejects(con, run, out_dir)
        self.resumed = True
        self.say(f"resuming migration {run.id} from phase {run.phase}")
        return run

    # -- the copy and what follows ---------------------------------------------------------
    def _copy(self, run: state.RunRecord, pending: list[Chunk], done_rows: dict[str, int]) -> None:
        out_dir = Path(run.out_dir)
        setup = WorkerSetup(
            url=libpq_url(self.url),
            schema=run.target_schema,
            source=self.path,
            specs=self.specs,
            run_id=run.id,
            owner=run.owner,
            strict=self.opts.strict,
            rejects_dir=out_dir / "rejects",
            parent_pid=os.getpid(),
        )
        tick = time.perf_counter()
        self.pool.run(
            setup,
            pending,
            table_rows={t.name: t.rows or 0 for t in self.plan.tables},
            done_rows=done_rows,
            console=self.console,
            show_progress=self.opts.progress,
        )
        self.seconds["copy"] = time.perf_counter() - tick

    async def _finish(self, run: state.RunRecord) -> list[StepOutcome]:
        settings = {
            "search_path": pg_ident(run.target_schema),
            "application_name": "harness-migrate",
            # One sort per index over the whole table: give it room (per session, per build).
            "maintenance_work_mem": "256MB",
        }
        from harness.urls import plain_postgres_url

        pool = await asyncpg.create_pool(
            dsn=plain_postgres_url(self.url),
            min_size=1,
            max_size=self.workers,
            server_settings=settings,
        )
        try:
            async with pool.acquire() as con:
                done = await state.steps(con, run.id)
            post = PostLoad(pool, self.plan, run.id, run.owner, done, strict=self.opts.strict)
            phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("keys", lambda: post.keys_and_indexes(self.workers)),
                ("foreign_keys", post.foreign_keys),
                ("views", post.views),
                ("identities", post.identities),
                ("analyze", lambda: post.analyze(self.workers)),
            ]
            for phase, work in phases:
                tick = time.perf_counter()
                async with pool.acquire() as con:
                    await state.set_phase(con, run.id, phase)
                await work()
                self.seconds[phase] = time.perf_counter() - tick
                self.say(f"{phase.replace('_', ' ')}: done in {self.seconds[phase]:.1f} s")
        finally:
            await pool.close()
        return [o for o in post.outcomes if not o.ok]

    async def _rewrite_rejects(
        self, con: asyncpg.Connection, run: state.RunRecord, out_dir: Path
    ) -> dict[str, Path]:
        counts = await state.reject_counts(con, run.id)
        tables = sorted({t for t, _ in counts})
        by_table = {t: await state.reject_records(con, run.id, t) for t in tables}
        return rejects.rewrite(out_dir / "rejects", by_table)

    async def _result(
        self,
        con: asyncpg.Connection,
        run: state.RunRecord,
        out_dir: Path,
        failed: list[StepOutcome],
        started: float,
    ) -> MigrationResult:
        tick = time.perf_counter()
        files = await self._rewrite_rejects(con, run, out_dir)
        counts = await state.reject_counts(con, run.id)
        read: dict[str, int] = {}
        for c in await state.chunks_done(con, run.id):
            read[c.table] = read.get(c.table, 0) + c.read
        schema = pg_ident(run.target_schema)
        tables: list[TableResult] = []
        mismatched: list[str] = []
        for table in self.plan.tables:
            rejected = {p: n for (t, p), n in counts.items() if t == table.name}
            loaded = await con.fetchval(f"SELECT count(*) FROM {schema}.{pg_ident(table.name)}")  # noqa: S608
            expected = read.get(table.name, 0) - sum(rejected.values())
            if loaded != expected:
                mismatched.append(f"{table.name}: {loaded} in PostgreSQL, {expected} expected")
            if read.get(table.name, 0) != (table.rows or 0):
                mismatched.append(
                    f"{table.name}: {read.get(table.name, 0)} rows read, {table.rows} in SQLite"
                )
            file = files.get(table.name)
            tables.append(
                TableResult(
                    table.name,
                    table.rows or 0,
                    read.get(table.name, 0),
                    int(loaded),
                    rejected,
                    str(file) if file else None,
                )
            )
        if mismatched:
            raise MigrationError(
                "row counts do not add up (SQLite rows = rows read = rows loaded + rejected): "
                + "; ".join(mismatched)
            )
        self.seconds["verify"] = time.perf_counter() - tick
        self.seconds["total"] = time.perf_counter() - started
        human = [item.line() for item in self.plan.human]
        result = MigrationResult(
            run_id=run.id,
            out_dir=str(out_dir),
            source=str(self.path),
            target=mask_url(self.url),
            schema=run.target_schema,
            resumed=self.resumed,
            workers=self.workers,
            tables=tables,
            failed_steps=failed,
            human=human,
            seconds=self.seconds,
            source_bytes=self.path.stat().st_size,
            verified=True,
        )
        if result.rows_rejected:
            result.exit_code = EXIT_REJECTED
        elif failed:
            result.exit_code = EXIT_OBJECTS_FAILED
        return result

    async def _mark_stopped(self, con: asyncpg.Connection) -> None:
        """Leave the state saying the run stopped (best effort: the server may be gone)."""
        if self.current is None or con.is_closed():
            return
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await state.mark_stopped(con, self.current.id, self.current.owner)
