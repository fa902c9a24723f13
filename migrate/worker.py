"""One copy worker process: takes chunks from the shared queue and loads them.

It reports progress, loaded chunks and failures to the parent as events on a queue, and
stops when the parent says so or is gone, so a ``kill -9`` of the command leaves no process
loading behind it (the run's owner token stops one that is mid-chunk). It imports only what
loading needs: no SQL translator, no progress bars.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from migrate import rejects
from migrate.convert import TableSpec
from migrate.errors import StrictStopError
from migrate.reader import Chunk
from migrate.state import SupersededError


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs; sent to it through a pipe, never on a command line."""

    url: str
    schema: str
    source: Path
    specs: dict[str, TableSpec]
    run_id: str
    owner: str
    strict: bool
    rejects_dir: Path
    parent_pid: int


def worker_main(setups: Any, tasks: Any, events: Any, stop: Event) -> None:
    """Entry point of a worker process: it waits for its :class:`WorkerSetup` (the pool starts
    while the run is still planning; None means no copy), then loads chunks until None."""
    # Ctrl-C reaches the whole process group: the parent decides, and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup = setups.get()
    if setup is None:
        return
    try:
        asyncio.run(_work(setup, tasks, events, stop))
    except HarnessError as exc:
        events.put(("error", str(exc)))
    except Exception as exc:  # a worker must report, never die silently
        events.put(("error", f"{type(exc).__name__}: {exc}"))


async def _work(setup: WorkerSetup, tasks: Any, events: Any, stop: Event) -> None:
    from migrate.loader import ChunkLoader
    from migrate.target import connect

    con = await connect(setup.url, setup.schema, bulk=True)

    def progress(chunk: Chunk, rows: int) -> None:
        events.put(("progress", chunk.table, chunk.index, rows))

    loader = ChunkLoader(
        con,
        setup.source,
        setup.specs,
        run_id=setup.run_id,
        owner=setup.owner,
        strict=setup.strict,
        progress=progress,
    )
    try:
        while not stop.is_set() and os.getppid() == setup.parent_pid:
            item = tasks.get()
            if item is None:
                break
            chunk = Chunk.from_dict(item)
            try:
                result = await loader.load(chunk)
            except SupersededError:
                events.put(("superseded",))
                return
            except StrictStopError as exc:
                events.put(("strict", exc.record))
                return
            rejects.append(setup.rejects_dir, chunk.table, result.rejects)
            events.put(
                (
                    "chunk",
                    chunk.table,
                    chunk.index,
                    result.read,
                    result.loaded,
                    len(result.rejects),
                    result.careful,
                )
            )
    finally:
        loader.close()
        await con.close()
