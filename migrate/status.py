"""``harness migrate status``: where each migration recorded in a database stands."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrate import state
from migrate.target import connect, run_guarded


@dataclass
class TableProgress:
    """One table of a run: chunks and rows copied so far, rows rejected."""

    name: str
    chunks_done: int
    chunks_total: int
    rows_read: int
    rows_planned: int
    rejected: int


@dataclass
class RunStatus:
    """One run: its record, its tables, the steps after the copy."""

    run: state.RunRecord
    tables: list[TableProgress]
    steps_done: list[str]
    steps_failed: list[tuple[str, str]]

    @property
    def rows_read(self) -> int:
        """Rows copied so far."""
        return sum(t.rows_read for t in self.tables)

    @property
    def rejected(self) -> int:
        """Rows rejected so far."""
        return sum(t.rejected for t in self.tables)


def migration_status(url: str) -> list[RunStatus]:
    """Every run recorded in the database at ``url``, newest first."""
    return run_guarded(_status(url))


async def _status(url: str) -> list[RunStatus]:
    con = await connect(url)
    try:
        out = []
        for run in await state.runs(con):
            done = await state.chunks_done(con, run.id)
            rejected = await state.reject_counts(con, run.id)
            steps = await state.steps(con, run.id)
            tables: dict[str, TableProgress] = {}
            for chunk in run.chunks:
                t = tables.setdefault(chunk.table, TableProgress(chunk.table, 0, 0, 0, 0, 0))
                t.chunks_total += 1
                t.rows_planned += chunk.estimated_rows
            for c in done:
                t = tables.setdefault(c.table, TableProgress(c.table, 0, 0, 0, 0, 0))
                t.chunks_done += 1
                t.rows_read += c.read
            for (table, _phase), n in rejected.items():
                tables.setdefault(table, TableProgress(table, 0, 0, 0, 0, 0)).rejected += n
            out.append(
                RunStatus(
                    run,
                    list(tables.values()),
                    sorted(s for s, (ok, _) in steps.items() if ok),
                    sorted((s, str(d)) for s, (ok, d) in steps.items() if not ok),
                )
            )
        return out
    finally:
        await con.close()


def render_status(statuses: list[RunStatus], console: Console) -> None:
    """Print each run, and the newest one's tables."""
    if not statuses:
        console.print("no migration is recorded in this database")
        return
    runs = Table(title="migrations", title_justify="left")
    for name in ("run", "source", "schema", "status", "phase", "chunks", "rows", "rejected"):
        runs.add_column(name, justify="right" if name in ("chunks", "rows", "rejected") else "left")
    for s in statuses:
        done = sum(t.chunks_done for t in s.tables)
        total = sum(t.chunks_total for t in s.tables)
        runs.add_row(
            Text(s.run.id),
            Text(s.run.source),
            Text(s.run.target_schema),
            Text(s.run.status),
            Text(s.run.phase),
            f"{done}/{total}",
            f"{s.rows_read:,}",
            Text(f"{s.rejected:,}", style="bold red" if s.rejected else ""),
        )
    console.print(runs)
    newest = statuses[0]
    tables = Table(title=Text(f"tables of {newest.run.id}"), title_justify="left")
    for name in ("table", "chunks", "rows copied", "rejected"):
        tables.add_column(name, justify="left" if name == "table" else "right")
    for t in newest.tables:
        tables.add_row(
            Text(t.name), f"{t.chunks_done}/{t.chunks_total}", f"{t.rows_read:,}", f"{t.rejected:,}"
        )
    console.print(tables)
    for step, detail in newest.steps_failed:
        console.print(Text(f"failed: {step}: {detail}", style="red"))
