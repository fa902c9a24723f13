"""The asyncpg driver: asyncpg's pool shared by one asyncio task per client.

This is how an async application (FastAPI on asyncpg, an aiohttp service) uses a pool. The
monitor samples from a thread, so the event loop runs only the clients.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import numpy as np
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from harness.errors import DatabaseError
from harness.pools.activity import POOL_APPLICATION, Monitor
from harness.pools.cell import ERROR, OK, TIMEOUT, CellSamples, Recorder
from harness.pools.mix import Mix
from harness.pools.timing import (
    FILL_TIMEOUT_S,
    JOIN_GRACE_S,
    CellRun,
    CellTiming,
    OnCell,
    error_line,
)
from harness.workload import DatasetFacts

DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


def run_pool(
    url: str,
    pool_size: int,
    concurrencies: tuple[int, ...],
    *,
    facts: DatasetFacts,
    write_share: float,
    timing: CellTiming,
    monitor: Monitor,
    on_cell: OnCell,
) -> None:
    """Open one pool of ``pool_size`` and measure a cell per concurrency with it."""
    asyncio.run(
        _run_pool(url, pool_size, concurrencies, facts, write_share, timing, monitor, on_cell)
    )


async def _run_pool(
    url: str,
    pool_size: int,
    concurrencies: tuple[int, ...],
    facts: DatasetFacts,
    write_share: float,
    timing: CellTiming,
    monitor: Monitor,
    on_cell: OnCell,
) -> None:
    mix = Mix(DIALECT, facts, write_share, timing.seed)
    try:
        pool = await asyncio.wait_for(
            asyncpg.create_pool(
                url,
                min_size=pool_size,
                max_size=pool_size,
                server_settings={"application_name": POOL_APPLICATION},
            ),
            FILL_TIMEOUT_S,
        )
    except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
        raise DatabaseError(
            f"cannot fill an asyncpg pool of {pool_size} connections: {error_line(exc)}"
        ) from None
    try:
        for concurrency in concurrencies:
            on_cell(await _measure(pool, pool_size, concurrency, mix, timing, monitor))
    finally:
        await asyncio.wait_for(pool.close(), 10)


async def _measure(
    pool: asyncpg.Pool,
    pool_size: int,
    concurrency: int,
    mix: Mix,
    timing: CellTiming,
    monitor: Monitor,
) -> CellRun:
    stopping = False
    recorders = [Recorder() for _ in range(concurrency)]
    write_index = mix.write_index
    write = mix.write
    queries = [mix.queries.get(name) for name in mix.names]

    async def client(index: int) -> None:
        rec = recorders[index]
        rng = np.random.default_rng([timing.seed, pool_size, concurrency, index])
        clock = time.perf_counter
        while not stopping:
            op, params = mix.draw(rng)
            t0 = clock()
            t1 = t0
            try:
                async with pool.acquire(timeout=timing.acquire_timeout_s) as conn:
                    t1 = clock()
                    if op == write_index:
                        async with conn.transaction():
                            artifact_id = await conn.fetchval(
                                write.artifact.sql, *write.artifact.positional(params)
                            )
                            params["artifact_id"] = artifact_id
                            await conn.execute(write.score.sql, *write.score.positional(params))
                            await conn.execute(write.topic.sql, *write.topic.positional(params))
                    else:
                        query = queries[op]
                        assert query is not None
                        await conn.fetch(query.sql, *query.positional(params))
                rec.add(t0, t1, clock(), op, OK)
            except TimeoutError:
                if t1 > t0:  # not the pool's wait: the statement itself timed out
                    t2 = clock()
                    rec.add(t0, t1, t2, op, ERROR)
                    rec.errors["TimeoutError: statement"] += 1
                else:
                    rec.add(t0, clock(), clock(), op, TIMEOUT)
            except Exception as exc:  # any failure is the cell's error, counted and shown
                t2 = clock()
                rec.add(t0, t1 if t1 > t0 else t2, t2, op, ERROR)
                rec.errors[error_line(exc)] += 1

    tasks = [asyncio.create_task(client(i)) for i in range(concurrency)]
    try:
        await asyncio.sleep(timing.warmup_s)
        cpu0 = time.process_time()
        window_start = time.perf_counter()
        with monitor.window() as activity:
            await asyncio.sleep(timing.duration_s)
            window_end = time.perf_counter()
        client_cpu = time.process_time() - cpu0
    finally:
        stopping = True
        _done, pending = await asyncio.wait(tasks, timeout=timing.acquire_timeout_s + JOIN_GRACE_S)
        for task in pending:
            task.cancel()
    samples = CellSamples.gather(recorders, window_start, window_end)
    return CellRun(
        driver="asyncpg",
        pool_size=pool_size,
        concurrency=concurrency,
        samples=samples,
        activity=activity,
        window_s=window_end - window_start,
        client_cpu_s=client_cpu,
    )
