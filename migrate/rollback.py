"""``harness migrate rollback``: drop exactly what a migration created, nothing else.

The run's state lists the objects it created (its schema when it made one, its tables, its
views); indexes, keys, sequences and constraints go with their tables. Everything is dropped
in one transaction without CASCADE: when something the migration did not create depends on
a migrated table (a view a person added since), PostgreSQL refuses, nothing is dropped, and
the error says what is in the way.
"""

from __future__ import annotations

import asyncpg

from migrate import state
from migrate.errors import TargetError
from migrate.names import pg_ident
from migrate.target import connect, run_guarded


async def drop_run(con: asyncpg.Connection, run: state.RunRecord) -> list[tuple[str, str]]:
    """Drop what ``run`` created, and its state, in one transaction; return (kind, name) of
    what it created. Any process still loading for the run stops at its next chunk."""
    async with con.transaction():
        await state.claim(con, run.id, state.new_owner())
        created = await state.objects(con, run.id)
        schema = pg_ident(run.target_schema)
        views = [n for k, n in created if k == "view"]
        tables = [n for k, n in created if k == "table"]
        try:
            for name in reversed(views):
                await con.execute(f"DROP VIEW IF EXISTS {schema}.{pg_ident(name)}")
            if tables:
                names = ", ".join(f"{schema}.{pg_ident(n)}" for n in tables)
                await con.execute(f"DROP TABLE IF EXISTS {names}")
            if ("schema", run.target_schema) in created:
                await con.execute(f"DROP SCHEMA IF EXISTS {schema}")
        except asyncpg.DependentObjectsStillExistError as exc:
            detail = " ".join((exc.detail or str(exc)).split())
            raise TargetError(
                f"rollback of {run.id} stopped, nothing was dropped: objects the migration did "
                f"not create depend on its tables ({detail}); drop those first"
            ) from None
        await state.forget(con, run.id)
    return created


def rollback_migration(
    url: str, run_id: str | None = None
) -> tuple[state.RunRecord, list[tuple[str, str]]]:
    """Roll back ``run_id`` (default: the newest run) in the database at ``url``."""
    return run_guarded(_rollback(url, run_id))


async def _rollback(url: str, run_id: str | None) -> tuple[state.RunRecord, list[tuple[str, str]]]:
    con = await connect(url)
    try:
        runs = await state.runs(con)
        if not runs:
            raise TargetError("nothing to roll back: no migration is recorded in this database")
        if run_id is None:
            run = runs[0]
        else:
            matches = [r for r in runs if r.id == run_id]
            if not matches:
                known = ", ".join(r.id for r in runs[:5])
                raise TargetError(f"no migration {run_id!r} in this database (known: {known})")
            run = matches[0]
        return run, await drop_run(con, run)
    finally:
        await con.close()
