"""The psycopg driver: ``psycopg_pool.ConnectionPool`` shared by one thread per client.

This is how a threaded application (a WSGI server's workers, a job runner) uses a pool:
each thread asks for a connection, runs its statements, gives it back.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

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

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


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
    mix = Mix(DIALECT, facts, write_share, timing.seed)
    pool = ConnectionPool(
        url,
        min_size=pool_size,
        max_size=pool_size,
        timeout=timing.acquire_timeout_s,
        kwargs={"autocommit": True, "application_name": POOL_APPLICATION},
        open=False,
        name="harness-pools",
    )
    try:
        try:
            pool.open(wait=True, timeout=FILL_TIMEOUT_S)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot fill a psycopg pool of {pool_size} connections: {error_line(exc)}"
            ) from None
        for concurrency in concurrencies:
            on_cell(_measure(pool, pool_size, concurrency, mix, timing, monitor))
    finally:
        pool.close(timeout=5.0)


def _measure(
    pool: ConnectionPool,
    pool_size: int,
    concurrency: int,
    mix: Mix,
    timing: CellTiming,
    monitor: Monitor,
) -> CellRun:
    stop = threading.Event()
    recorders = [Recorder() for _ in range(concurrency)]
    write_index = mix.write_index
    write = mix.write
    queries = [mix.queries.get(name) for name in mix.names]

    def worker(index: int) -> None:
        rec = recorders[index]
        rng = np.random.default_rng([timing.seed, pool_size, concurrency, index])
        clock = time.perf_counter
        while not stop.is_set():
            op, params = mix.draw(rng)
            t0 = clock()
            t1 = t0
            try:
                with pool.connection(timeout=timing.acquire_timeout_s) as conn:
                    t1 = clock()
                    if op == write_index:
                        with conn.transaction():
                            row = conn.execute(
                                write.artifact.sql, write.artifact.named(params)
                            ).fetchone()
                            assert row is not None
                            params["artifact_id"] = row[0]
                            conn.execute(write.score.sql, write.score.named(params))
                            conn.execute(write.topic.sql, write.topic.named(params))
                    else:
                        query = queries[op]
                        assert query is not None
                        conn.execute(query.sql, params).fetchall()
                rec.add(t0, t1, clock(), op, OK)
            except PoolTimeout:
                rec.add(t0, clock(), clock(), op, TIMEOUT)
            except Exception as exc:  # any failure is the cell's error, counted and shown
                t2 = clock()
                rec.add(t0, t1 if t1 > t0 else t2, t2, op, ERROR)
                rec.errors[error_line(exc)] += 1

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"pools-client-{i}", daemon=True)
        for i in range(concurrency)
    ]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        # Event.wait, not sleep: Ctrl-C interrupts it at once.
        stop.wait(max(0.0, begin + timing.warmup_s - time.perf_counter()))
        cpu0 = time.process_time()
        window_start = time.perf_counter()
        with monitor.window() as activity:
            stop.wait(timing.duration_s)
            window_end = time.perf_counter()
        client_cpu = time.process_time() - cpu0
    finally:
        stop.set()
        deadline = time.perf_counter() + timing.acquire_timeout_s + JOIN_GRACE_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.perf_counter()))
    samples = CellSamples.gather(recorders, window_start, window_end)
    return CellRun(
        driver="psycopg",
        pool_size=pool_size,
        concurrency=concurrency,
        samples=samples,
        activity=activity,
        window_s=window_end - window_start,
        client_cpu_s=client_cpu,
    )
