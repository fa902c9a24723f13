"""Running the copy on worker processes, with a progress bar per table.

Reading SQLite and converting values is Python work, so tables (and chunks of one large
table) are loaded by processes, not threads: one per core by default (see
:mod:`migrate.worker`). The parent shows a progress bar per table from the workers' events
and stops them all at the first failure.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from migrate.errors import CopyError, StrictStopError
from migrate.reader import Chunk
from migrate.worker import WorkerSetup, worker_main

_EVENT_WAIT_S = 0.2
_STOP_WAIT_S = 5.0


@dataclass
class CopyTotals:
    """What the copy did, per table: rows read, loaded, rejected; chunks done."""

    read: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    careful_chunks: int = 0

    def add(self, table: str, read: int, loaded: int, rejected: int, careful: bool) -> None:
        """Count one loaded chunk."""
        self.read[table] = self.read.get(table, 0) + read
        self.loaded[table] = self.loaded.get(table, 0) + loaded
        self.rejected[table] = self.rejected.get(table, 0) + rejected
        self.chunks += 1
        self.careful_chunks += int(careful)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")


@contextmanager
def _progress(console: Console | None, show: bool) -> Iterator[Progress | None]:
    if not show or console is None:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with bar:
        yield bar


class WorkerPool:
    """``workers`` processes, started early: they load their modules while the parent plans,
    then take the run's setup and its chunks (see :meth:`run`). Use as a context manager."""

    def __init__(self, workers: int) -> None:
        ctx = mp.get_context("spawn")
        self.setups = ctx.Queue()
        self.tasks = ctx.Queue()
        self.events = ctx.Queue()
        self.stop = ctx.Event()
        self.procs = [
            ctx.Process(
                target=worker_main,
                args=(self.setups, self.tasks, self.events, self.stop),
                daemon=True,
            )
            for _ in range(max(1, workers))
        ]
        for proc in self.procs:
            proc.start()
        self._fed = False

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (after their current chunk) and wait for them."""
        if not self._fed:
            for _ in self.procs:
                self.setups.put(None)
            self._fed = True
        self.stop.set()
        _stop(self.procs)

    def run(
        self,
        setup: WorkerSetup,
        chunks: Sequence[Chunk],
        *,
        table_rows: dict[str, int],
        done_rows: dict[str, int],
        console: Console | None = None,
        show_progress: bool = True,
    ) -> CopyTotals:
        """Load ``chunks``; return what was loaded. Once per pool.

        ``table_rows`` gives each table's row count (for the bars), ``done_rows`` the rows of
        chunks loaded before (a resume). Raises :class:`StrictStopError` at the first reject
        under ``--strict`` and :class:`CopyError` when a worker fails; in both cases every
        chunk already committed stays, and ``--resume`` carries on from there.
        """
        if self._fed:
            raise RuntimeError("a worker pool runs one copy")
        totals = CopyTotals()
        for _ in self.procs:
            self.setups.put(setup)
        # Largest chunks first: a big table starts at once and small ones fill the gaps.
        for chunk in sorted(chunks, key=lambda c: -c.estimated_rows):
            self.tasks.put(chunk.to_dict())
        for _ in self.procs:
            self.tasks.put(None)
        self._fed = True
        failure: BaseException | None = None
        try:
            with _progress(console, show_progress and bool(chunks)) as bar:
                ids = {}
                if bar is not None:
                    for table in table_rows:
                        ids[table] = bar.add_task(table[:40], total=table_rows[table] or 1)
                        bar.update(ids[table], completed=done_rows.get(table, 0))
                failure = _collect(self.procs, self.events, totals, bar, ids, done_rows)
        except KeyboardInterrupt:
            failure = CopyError(
                "interrupted: the chunks committed so far are kept; run `harness migrate run "
                "--resume` to finish, or `harness migrate rollback` to undo"
            )
        finally:
            self.close()
        if failure is not None:
            raise failure
        return totals


def _collect(
    procs: list[Any],
    events: Any,
    totals: CopyTotals,
    bar: Progress | None,
    ids: dict[str, Any],
    done_rows: dict[str, int],
) -> BaseException | None:
    in_flight: dict[tuple[str, int], int] = {}
    loaded_rows = dict(done_rows)
    while True:
        dead = [p for p in procs if p.exitcode not in (0, None)]
        if dead:
            return CopyError(
                f"a copy worker died (exit code {dead[0].exitcode}); the chunks committed "
                "so far are kept: run `harness migrate run --resume`"
            )
        try:
            event = events.get(timeout=_EVENT_WAIT_S)
        except queue.Empty:
            if all(not p.is_alive() for p in procs):
                # Drain what the last workers sent before they exited.
                try:
                    event = events.get(timeout=_EVENT_WAIT_S)
                except queue.Empty:
                    failed = [p.exitcode for p in procs if p.exitcode != 0]
                    if failed:
                        return CopyError(
                            f"a copy worker exited with code {failed[0]}; the chunks committed "
                            "so far are kept: run `harness migrate run --resume`"
                        )
                    break
            else:
                continue
        kind = event[0]
        if kind == "progress":
            _, table, index, rows = event
            in_flight[(table, index)] = rows
        elif kind == "chunk":
            _, table, index, read, loaded, rejected, careful = event
            in_flight.pop((table, index), None)
            loaded_rows[table] = loaded_rows.get(table, 0) + read
            totals.add(table, read, loaded, rejected, careful)
        elif kind == "strict":
            return StrictStopError(event[1])
        elif kind == "superseded":
            return CopyError("another `harness migrate` process took this run over")
        elif kind == "error":
            return CopyError(
                f"the copy stopped: {event[1]}; the chunks committed so far are kept: fix the "
                "cause and run `harness migrate run --resume`"
            )
        if bar is not None and kind in ("progress", "chunk"):
            table = event[1]
            current = loaded_rows.get(table, 0) + sum(
                rows for (t, _), rows in in_flight.items() if t == table
            )
            bar.update(ids[table], completed=current)
    return None


def _stop(procs: list[Any]) -> None:
    deadline = time.monotonic() + _STOP_WAIT_S
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=_STOP_WAIT_S)
