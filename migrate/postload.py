"""After the rows are in: keys, indexes, foreign keys, views, identity sequences, statistics.

Keys and indexes are built once over the loaded data (faster than upkeep row by row), several
at a time. A key PostgreSQL refuses because two loaded rows collide (values SQLite held apart,
such as 1 and '1') and a foreign key refused for orphan rows are not dropped: the rows in the
way are moved to the rejects with the reason, in the transaction that removes them, and the
constraint is added. Each step is recorded in the transaction that does it, so a resume
skips what is done. A step PostgreSQL refuses for another reason is recorded as failed with
PostgreSQL's message, and the run ends with a non-zero exit code naming it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from migrate import state
from migrate.errors import StrictStopError
from migrate.names import pg_ident
from migrate.plan import Plan, PlanForeignKey, PlanIndex, PlanTable
from migrate.rejects import loaded_row_record

_DESC = re.compile(r"\s+DESC$")


@dataclass
class StepOutcome:
    """One step after the copy: done, skipped (done before a resume) or failed."""

    name: str
    ok: bool
    seconds: float = 0.0
    error: str | None = None
    rejected: int = 0
    skipped: bool = False


@dataclass
class _Unique:
    """A set of keys PostgreSQL will hold unique: the constraint's label, key SQL, columns."""

    label: str
    keys: list[str]
    columns: list[str]  # plain columns, for the reason's values (empty for expressions)
    where: str | None = None


@dataclass
class PostLoad:
    """Runs the steps after the copy on a pool of connections."""

    pool: asyncpg.Pool
    plan: Plan
    run_id: str
    owner: str
    done: dict[str, tuple[bool, Any]]
    strict: bool = False
    outcomes: list[StepOutcome] = field(default_factory=list)

    # -- helpers ---------------------------------------------------------------------------
    async def _step(
        self,
        name: str,
        work: Callable[[asyncpg.Connection], Awaitable[None]],
        *,
        on_conflict: Callable[[asyncpg.Connection], Awaitable[int]] | None = None,
        conflict: type[asyncpg.PostgresError] | None = None,
    ) -> StepOutcome:
        """Run ``work`` and record ``name`` in one transaction; when it fails with
        ``conflict``, let ``on_conflict`` move the rows in the way to the rejects, then retry."""
        if name in self.done and self.done[name][0]:
            outcome = StepOutcome(name, True, skipped=True)
            self.outcomes.append(outcome)
            return outcome
        started = time.perf_counter()
        rejected = 0
        async with self.pool.acquire() as con:
            for attempt in range(2):
                try:
                    async with con.transaction():
                        await state.check_owner(con, self.run_id, self.owner)
                        await work(con)
                        await state.mark_step(con, self.run_id, name)
                    break
                except asyncpg.PostgresError as exc:
                    message = _message(exc)
                    if conflict is not None and isinstance(exc, conflict) and attempt == 0:
                        assert on_conflict is not None
                        try:
                            rejected += await on_conflict(con)
                            continue
                        except asyncpg.PostgresError as cleaning:
                            message = f"{message}; removing the rows in the way failed: " + (
                                _message(cleaning)
                            )
                    await state.mark_step(con, self.run_id, name, ok=False, detail=message)
                    outcome = StepOutcome(
                        name, False, time.perf_counter() - started, message, rejected
                    )
                    self.outcomes.append(outcome)
                    return outcome
        outcome = StepOutcome(name, True, time.perf_counter() - started, rejected=rejected)
        self.outcomes.append(outcome)
        return outcome

    async def _remove(
        self,
        con: asyncpg.Connection,
        table: PlanTable,
        sql: str,
        phase: str,
        reason: Callable[[dict[str, Any]], tuple[list[str], str]],
    ) -> int:
        """Run a DELETE ... RETURNING row and store each removed row as a reject, in one
        transaction. Returns how many rows it removed."""
        async with con.transaction():
            await state.check_owner(con, self.run_id, self.owner)
            rows = [json.loads(r[0]) for r in await con.fetch(sql)]
            records = []
            for row in rows:
                columns, why = reason(row)
                records.append(
                    loaded_row_record(table.name, phase, table.primary_key, row, columns, why)
                )
            if records and self.strict:
                raise StrictStopError(records[0])
            await state.insert_rejects(con, self.run_id, records)
        return len(rows)

    # -- keys and indexes ------------------------------------------------------------------
    def _uniques(self, table: PlanTable) -> list[_Unique]:
        out = []
        if table.primary_key:
            cols = list(table.primary_key)
            out.append(_Unique("PRIMARY KEY", [pg_ident(c) for c in cols], cols))
        for unique in table.uniques:
            cols = list(unique)
            out.append(_Unique(f"UNIQUE ({', '.join(cols)})", [pg_ident(c) for c in cols], cols))
        return out

    async def _dedupe(self, con: asyncpg.Connection, table: PlanTable, keys: list[_Unique]) -> int:
        removed = 0
        for unique in keys:
            sql = _duplicates_sql(table.name, unique)

            def reason(row: dict[str, Any], u: _Unique = unique) -> tuple[list[str], str]:
                if u.columns:
                    values = ", ".join(json.dumps(row.get(c), default=str) for c in u.columns)
                    what = f"({', '.join(u.columns)}) = ({values})"
                else:
                    what = f"({', '.join(u.keys)})"
                return u.columns, (
                    f"duplicate key {what} under {u.label}: another row with the same key "
                    "was loaded first and kept"
                )

            removed += await self._remove(con, table, sql, "keys", reason)
        return removed

    async def keys_and_indexes(self, parallel: int) -> None:
        """Primary keys, UNIQUE constraints and indexes, ``parallel`` at a time, largest
        tables first."""
        jobs: list[Callable[[], Awaitable[StepOutcome]]] = []
        tables = sorted(self.plan.tables, key=lambda t: -(t.rows or 0))
        for table in tables:
            uniques = self._uniques(table)
            if uniques:
                jobs.append(self._keys_job(table, uniques))
        for table in tables:
            for index in table.indexes:
                if index.sql is not None:
                    jobs.append(self._index_job(table, index))
        await _bounded(jobs, parallel)

    def _keys_job(
        self, table: PlanTable, uniques: list[_Unique]
    ) -> Callable[[], Awaitable[StepOutcome]]:
        t = pg_ident(table.name)

        async def work(con: asyncpg.Connection) -> None:
            for unique in uniques:
                kind = "PRIMARY KEY" if unique.label == "PRIMARY KEY" else "UNIQUE"
                await con.execute(f"ALTER TABLE {t} ADD {kind} ({', '.join(unique.keys)})")

        async def dedupe(con: asyncpg.Connection) -> int:
            return await self._dedupe(con, table, uniques)

        return lambda: self._step(
            f"keys:{table.name}", work, on_conflict=dedupe, conflict=asyncpg.UniqueViolationError
        )

    def _index_job(
        self, table: PlanTable, index: PlanIndex
    ) -> Callable[[], Awaitable[StepOutcome]]:
        sql = index.sql
        assert sql is not None

        async def work(con: asyncpg.Connection) -> None:
            await con.execute(sql)

        unique = _Unique(
            f"unique index {index.name}",
            [_DESC.sub("", k) for k in index.keys],
            [],
            index.where,
        )

        async def dedupe(con: asyncpg.Connection) -> int:
            return await self._dedupe(con, table, [unique])

        return lambda: self._step(
            f"index:{index.name}",
            work,
            on_conflict=dedupe if index.unique else None,
            conflict=asyncpg.UniqueViolationError if index.unique else None,
        )

    # -- foreign keys ----------------------------------------------------------------------
    async def foreign_keys(self) -> None:
        """Every foreign key, validated over the loaded rows; orphans go to the rejects."""
        fks = [
            (self.plan.table(fk.table), fk)
            for t in self.plan.tables
            for fk in t.foreign_keys
            if fk.sql is not None
        ]
        if not fks:
            return

        async def add_all(con: asyncpg.Connection) -> None:
            for _table, fk in fks:
                assert fk.sql is not None
                await con.execute(fk.sql)

        async def clean(con: asyncpg.Connection) -> int:
            # No foreign key exists while orphans are removed, so no ON DELETE action fires;
            # removing one orphan can orphan its own children, hence the repeat.
            total = 0
            while True:
                removed = 0
                for table, fk in fks:
                    removed += await self._remove(
                        con, table, _orphans_sql(fk), "foreign_keys", _orphan_reason(fk)
                    )
                total += removed
                if not removed:
                    return total

        outcome = await self._step(
            "foreign_keys",
            add_all,
            on_conflict=clean,
            conflict=asyncpg.ForeignKeyViolationError,
        )
        if outcome.ok or outcome.skipped:
            return
        # One of them fails for another reason: add them one by one, so the others stand.
        self.outcomes.remove(outcome)
        failed = []
        for _table, fk in fks:
            sql = fk.sql
            assert sql is not None

            async def one(con: asyncpg.Connection, sql: str = sql) -> None:
                await con.execute(sql)

            single = await self._step(
                f"foreign_key:{fk.name}",
                one,
                on_conflict=clean,
                conflict=asyncpg.ForeignKeyViolationError,
            )
            if not single.ok:
                failed.append(fk.name)
        async with self.pool.acquire() as con:
            # Done only when every key stands; otherwise a resume tries the phase again.
            await state.mark_step(
                con, self.run_id, "foreign_keys", ok=not failed, detail={"failed": failed}
            )

    # -- views, sequences, statistics ------------------------------------------------------
    async def views(self) -> None:
        """Each view in the plan's order, recorded as created for the rollback."""
        for view in self.plan.views:
            sql = view.sql
            if sql is None:
                continue

            async def work(con: asyncpg.Connection, sql: str = sql, name: str = view.name) -> None:
                await con.execute(sql)
                await state.record_objects(con, self.run_id, [("view", name)])

            await self._step(f"view:{view.name}", work)

    async def identities(self) -> None:
        """Move every identity's sequence past the largest id loaded (and SQLite's own)."""
        statements = self.plan.statements("identities")
        if not statements:
            return

        async def work(con: asyncpg.Connection) -> None:
            for sql in statements:
                await con.execute(sql)

        await self._step("identities", work)

    async def analyze(self, parallel: int) -> None:
        """Planner statistics for every table, so the first queries on PostgreSQL are planned
        on real numbers."""
        if "analyze" in self.done:
            return
        started = time.perf_counter()

        def job(table: PlanTable) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                async with self.pool.acquire() as con:
                    await con.execute(f"ANALYZE {pg_ident(table.name)}")

            return run

        await _bounded([job(t) for t in self.plan.tables], parallel)
        async with self.pool.acquire() as con:
            await state.mark_step(con, self.run_id, "analyze")
        self.outcomes.append(StepOutcome("analyze", True, time.perf_counter() - started))


async def _bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], parallel: int) -> None:
    gate = asyncio.Semaphore(max(1, parallel))

    async def run(job: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(j) for j in jobs))


def _message(exc: asyncpg.PostgresError) -> str:
    message = getattr(exc, "message", None) or str(exc)
    detail = getattr(exc, "detail", None)
    return " ".join(f"{message}{f' ({detail})' if detail else ''}".split())


def _duplicates_sql(table: str, unique: _Unique) -> str:
    t = pg_ident(table)
    keys = ", ".join(unique.keys)
    # NULLs never collide under UNIQUE (SQLite and PostgreSQL agree): leave them out.
    conditions = [f"({k}) IS NOT NULL" for k in unique.keys]
    if unique.where:
        conditions.append(f"({unique.where})")
    return (
        f"DELETE FROM {t} AS d WHERE d.ctid IN ("  # noqa: S608 - every name is quoted
        f"SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY {keys} ORDER BY ctid) "
        f"AS n FROM {t} WHERE {' AND '.join(conditions)}) AS dup WHERE dup.n > 1) "
        "RETURNING to_jsonb(d)::text"
    )


def _orphans_sql(fk: PlanForeignKey) -> str:
    child, parent = pg_ident(fk.table), pg_ident(fk.ref_table)
    present = " AND ".join(f"d.{pg_ident(c)} IS NOT NULL" for c in fk.columns)
    match = " AND ".join(
        f"p.{pg_ident(r)} = d.{pg_ident(c)}"
        for c, r in zip(fk.columns, fk.ref_columns, strict=True)
    )
    return (
        f"DELETE FROM {child} AS d WHERE {present} AND NOT EXISTS ("  # noqa: S608
        f"SELECT 1 FROM {parent} AS p WHERE {match}) RETURNING to_jsonb(d)::text"
    )


def _orphan_reason(fk: PlanForeignKey) -> Callable[[dict[str, Any]], tuple[list[str], str]]:
    def reason(row: dict[str, Any]) -> tuple[list[str], str]:
        pairs = ", ".join(
            f"{r} = {json.dumps(row.get(c), default=str)}"
            for c, r in zip(fk.columns, fk.ref_columns, strict=True)
        )
        return list(fk.columns), (
            f"orphan: no row in {fk.ref_table} with {pairs} (foreign key "
            f"{', '.join(fk.columns)} -> {fk.ref_table})"
        )

    return reason
