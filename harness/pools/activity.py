"""What the server does during a cell: ``pg_stat_activity`` of the pool's connections, and the
CPU time of the PostgreSQL processes when the server runs on this machine.

The monitor has a connection of its own (not one of the pool's) and tells the pool's
connections apart by their ``application_name``. "Waiting" means an active backend with a
wait event other than reading from its client (a lock, an LWLock, I/O...).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psutil
import psycopg

from harness.pools.cell import Activity

POOL_APPLICATION = "harness-pools"
MONITOR_APPLICATION = "harness-pools-monitor"
SAMPLE_EVERY_S = 0.1

_COUNTS = """
SELECT count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state = 'idle'),
       count(*) FILTER (WHERE state LIKE 'idle in transaction%%'),
       count(*) FILTER (WHERE state = 'active' AND wait_event_type IS NOT NULL
                        AND wait_event_type <> 'Client'),
       count(*)
FROM pg_stat_activity
WHERE application_name = %s AND pid <> pg_backend_pid()
"""


class Monitor:
    """A sampling connection; :meth:`window` samples in a thread while a cell is measured."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(
            url, autocommit=True, application_name=MONITOR_APPLICATION, connect_timeout=10
        )
        self.postmaster = self._local_postmaster()

    def _local_postmaster(self) -> psutil.Process | None:
        """The server's postmaster when it runs here (our backend's parent), else None."""
        row = self.conn.execute("SELECT pg_backend_pid(), inet_server_addr()").fetchone()
        if row is None:
            return None
        pid, addr = row
        # A server elsewhere can have a process with our backend's pid on this machine too.
        if addr is not None and str(addr) not in {"127.0.0.1", "::1"}:
            return None
        try:
            backend = psutil.Process(int(pid))
            parent = backend.parent()
            if parent is None or "postgres" not in parent.name():
                return None
            return parent
        except (psutil.Error, OSError):
            return None

    def server_cpu(self) -> dict[int, float] | None:
        """CPU seconds of the postmaster and each of its children, by pid."""
        if self.postmaster is None:
            return None
        out: dict[int, float] = {}
        try:
            procs = [self.postmaster, *self.postmaster.children()]
        except psutil.Error:
            return None
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
        return out

    def counts(self) -> tuple[int, int, int, int, int]:
        row = self.conn.execute(_COUNTS, (POOL_APPLICATION,)).fetchone()
        assert row is not None
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))

    @contextlib.contextmanager
    def window(self) -> Iterator[Activity]:
        """Sample until the ``with`` block ends; the activity is complete after it."""
        activity = Activity()
        stop = threading.Event()
        started = time.perf_counter()
        cpu_before = self.server_cpu()

        def sample() -> None:
            while not stop.is_set():
                try:
                    counts = self.counts()
                except psycopg.Error:
                    return  # the cell reports the server's errors; the monitor just stops
                activity.rows.append((time.perf_counter() - started, *counts))
                stop.wait(SAMPLE_EVERY_S)

        thread = threading.Thread(target=sample, name="pools-monitor", daemon=True)
        thread.start()
        try:
            yield activity
        finally:
            stop.set()
            thread.join(timeout=5)
            cpu_after = self.server_cpu()
            if cpu_before is not None and cpu_after is not None:
                # Backends that started during the window count from zero.
                activity.server_cpu_s = sum(
                    max(0.0, after - cpu_before.get(pid, 0.0)) for pid, after in cpu_after.items()
                )

    def close(self) -> None:
        self.conn.close()
