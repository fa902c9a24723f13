"""``harness pools``: run the grid on a private copy of the reference dataset, cell by cell,
saving each cell as soon as it is measured, then analyse and report.

The database is a clone of the seeded reference database (``harness_reference``), dropped at
the end, so the experiment's writes never reach the dataset other runs read. ``pools.json``
is rewritten after every cell: Ctrl-C (or a crash) keeps every cell already measured.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from harness import __version__
from harness.analysis.pools import PoolsAnalysis, analyze
from harness.errors import ConfigError, DatabaseError, DatasetError
from harness.pools import asyncio_driver, threaded
from harness.pools.activity import Monitor
from harness.pools.cell import cell_figures
from harness.pools.grid import (
    DEFAULT_ACQUIRE_TIMEOUT_S,
    DEFAULT_DURATION_S,
    DEFAULT_WARMUP_S,
    DEFAULT_WRITE_SHARE,
    DRIVERS,
    QUICK_DURATION_S,
    QUICK_WARMUP_S,
    Grid,
    ServerLimits,
    build_grid,
    hikari_formula,
    rule_of_thumb,
)
from harness.pools.timing import CellRun, CellTiming, cell_progress
from harness.run_dirs import new_run_dir
from harness.sla import EXIT_PARTIAL
from harness.urls import mask_url, plain_postgres_url
from harness.workload import DatasetFacts, read_facts

SCHEMA = "harness.pools/1"
RULE = "(2 x cores) + 5"
HIKARI = "HikariCP"


@dataclass
class PoolsOptions:
    """Everything ``harness pools`` takes; ``None`` means the default (or the quick preset's)."""

    pg: str | None = None
    dataset: Path | None = None
    drivers: tuple[str, ...] = DRIVERS
    pool_sizes: tuple[int, ...] | None = None
    concurrencies: tuple[int, ...] | None = None
    quick: bool = False
    warmup_s: float | None = None
    duration_s: float | None = None
    acquire_timeout_s: float = DEFAULT_ACQUIRE_TIMEOUT_S
    write_share: float = DEFAULT_WRITE_SHARE
    server_cores: int | None = None
    spindles: int = 1
    seed: int = 42
    runs_dir: Path = Path("runs")
    out_dir: Path | None = None
    home: Path | None = None
    progress: bool = True
    #: Sweep the reference API's SQLAlchemy pool under a Locust load instead of the drivers.
    api: bool = False
    scenario: str = "steady"
    redis: str | None = None

    def timing(self) -> CellTiming:
        warmup = (
            self.warmup_s
            if self.warmup_s is not None
            else (QUICK_WARMUP_S if self.quick else DEFAULT_WARMUP_S)
        )
        duration = (
            self.duration_s
            if self.duration_s is not None
            else (QUICK_DURATION_S if self.quick else DEFAULT_DURATION_S)
        )
        return CellTiming(warmup, duration, self.acquire_timeout_s, self.seed)

    def check(self) -> None:
        """Reject impossible values before any server is touched."""
        timing = self.timing()
        if timing.duration_s <= 0:
            raise ConfigError(f"--duration {timing.duration_s}: give a positive number of seconds")
        if timing.warmup_s < 0:
            raise ConfigError(f"--warmup {timing.warmup_s}: give zero or more seconds")
        if self.acquire_timeout_s <= 0:
            raise ConfigError(
                f"--acquire-timeout {self.acquire_timeout_s}: give a positive number of seconds"
            )
        if not 0.0 <= self.write_share <= 1.0:
            raise ConfigError(f"--write-share {self.write_share}: give a share between 0 and 1")
        if self.server_cores is not None and self.server_cores < 1:
            raise ConfigError(f"--server-cores {self.server_cores}: give at least 1")
        if self.spindles < 0:
            raise ConfigError(f"--spindles {self.spindles}: give zero or more")
        if self.pool_sizes is not None:
            for size in self.pool_sizes:
                if size < 1:
                    raise ConfigError(
                        f"--pool-sizes {size}: a pool needs at least 1 connection "
                        "(sizes are capped by the server's max_connections)"
                    )
        if self.concurrencies is not None:
            for c in self.concurrencies:
                if c < 1:
                    raise ConfigError(f"--concurrency {c}: each value must be at least 1")


@dataclass
class PoolsResult:
    run_dir: Path
    data: dict[str, Any]
    analysis: PoolsAnalysis
    interrupted: bool
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.interrupted else 0


def server_limits(conn: psycopg.Connection[Any]) -> ServerLimits:
    """``max_connections``, the reserved slots and the connections in use now."""
    max_connections = int(_setting(conn, "max_connections") or 100)
    reserved = int(_setting(conn, "superuser_reserved_connections") or 0)
    reserved += int(_setting(conn, "reserved_connections") or 0)  # PostgreSQL 16+
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
    ).fetchone()
    in_use = int(row[0]) if row else 0
    return ServerLimits(max_connections, reserved, in_use)


def _setting(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


def _server_version(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def _facts(url: str) -> DatasetFacts:
    dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:

        def fetch(sql: str, params: Any) -> Any:
            return conn.execute(sql, params).fetchall()

        return read_facts(fetch, dialect)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


@contextmanager
def _private_database(server: str, dataset: Path, console: Console | None) -> Iterator[str]:
    """A clone of the seeded reference database, dropped on the way out."""
    from harness.target.seed import REFERENCE_DATABASE, clone_database, drop_database, ensure_seeded

    if console is not None:
        console.print("seeding PostgreSQL with the reference dataset (once per dataset)")
    try:
        ensure_seeded(dataset, server)
        name = f"harness_pools_{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"
        url = clone_database(server, REFERENCE_DATABASE, name)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(
            f"cannot prepare the experiment's database on {mask_url(server)}: {first} "
            "(the user needs the CREATEDB right)"
        ) from None
    try:
        yield url
    finally:
        try:
            drop_database(server, name)
        except psycopg.Error:
            if console is not None:
                console.print(
                    f"[yellow]warning:[/] could not drop database {name}; drop it by hand"
                )


def _cell_file(run: CellRun) -> str:
    return f"{run.driver}-pool{run.pool_size:03d}-c{run.concurrency:04d}.parquet"


def run_pools(options: PoolsOptions, console: Console | None = None) -> PoolsResult:
    """Run the experiment and write ``pools.json``, ``pools.md`` and ``pools.html``."""
    from harness.services import check_postgres, postgres_url
    from harness.target.launch import default_dataset

    options.check()
    if options.api:
        from harness.pools.api_sweep import check_scenario

        check_scenario(options.scenario)  # a typo fails before any server is touched
    timing = options.timing()
    dataset = options.dataset or default_dataset(console)
    if not dataset.is_file():
        raise DatasetError(f"--dataset {dataset} does not exist; create it with harness dataset")
    server = postgres_url(options.pg, root=options.home)
    check_postgres(server)
    if options.api:
        return _api_experiment(options, timing, dataset, server, console)
    with _private_database(server, dataset, console) as db_url:
        url = plain_postgres_url(db_url)
        monitor = Monitor(url)
        try:
            return _experiment(options, timing, dataset, server, url, monitor, console)
        finally:
            monitor.close()


def _experiment(
    options: PoolsOptions,
    timing: CellTiming,
    dataset: Path,
    server: str,
    url: str,
    monitor: Monitor,
    console: Console | None,
) -> PoolsResult:
    local = monitor.postmaster is not None
    cores = options.server_cores or os.cpu_count() or 1
    limits = server_limits(monitor.conn)
    grid = build_grid(
        limits,
        cores,
        drivers=options.drivers,
        pool_sizes=options.pool_sizes,
        concurrencies=options.concurrencies,
        quick=options.quick,
    )
    formulas = {RULE: rule_of_thumb(cores), HIKARI: hikari_formula(cores, options.spindles)}
    facts = _facts(url)
    run_dir = options.out_dir or new_run_dir(options.runs_dir, "pools")
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    (run_dir / "activity").mkdir(exist_ok=True)
    data = _metadata(
        options, timing, grid, limits, cores, local, formulas, server, dataset, monitor
    )
    data["cells"] = []
    _write_json(run_dir / "pools.json", data)
    if console is not None:
        for line in _intro(grid, limits, cores, formulas, local, options):
            console.print(line, highlight=False)

    def save(run: CellRun) -> None:
        figures = cell_figures(
            run.samples,
            window_s=run.window_s,
            concurrency=run.concurrency,
            activity=run.activity,
            client_cpu_s=run.client_cpu_s,
            cores=os.cpu_count() or 1,
        )
        name = _cell_file(run)
        run.samples.frame(mix_names).to_parquet(run_dir / "samples" / name, index=False)
        run.activity.frame().to_parquet(run_dir / "activity" / name, index=False)
        cell = {
            "driver": run.driver,
            "pool_size": run.pool_size,
            "concurrency": run.concurrency,
            **figures,
            "samples_file": f"samples/{name}",
            "activity_file": f"activity/{name}",
        }
        data["cells"].append(cell)
        _write_json(run_dir / "pools.json", data)
        if progress is not None and task is not None:
            progress.update(
                task,
                advance=1,
                description=(
                    f"{run.driver} pool {run.pool_size} x {run.concurrency}: "
                    f"{cell['throughput']:,.0f}/s p99 {cell['p99'] or 0:.1f} ms"
                ),
            )

    from harness.pools.mix import WRITE
    from harness.workload import CRITICAL_WEIGHTS

    mix_names = (*CRITICAL_WEIGHTS, WRITE)
    interrupted = False
    progress: Progress | None = None
    if console is not None and options.progress:
        progress = cell_progress(console)
        progress.start()
    task = progress.add_task("cells", total=grid.cells) if progress is not None else None
    started = time.monotonic()
    try:
        for driver in grid.drivers:
            runner = threaded.run_pool if driver == "psycopg" else asyncio_driver.run_pool
            for size in grid.pool_sizes:
                runner(
                    url,
                    size,
                    grid.concurrencies,
                    facts=facts,
                    write_share=options.write_share,
                    timing=timing,
                    monitor=monitor,
                    on_cell=save,
                )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.stop()
    return _finish(data, run_dir, formulas, grid, interrupted, started)


def _metadata(
    options: PoolsOptions,
    timing: CellTiming,
    grid: Grid,
    limits: ServerLimits,
    cores: int,
    local: bool,
    formulas: dict[str, int],
    server: str,
    dataset: Path,
    monitor: Monitor,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "harness_version": __version__,
        "started": datetime.now(UTC).isoformat(),
        "target": mask_url(server),
        "dataset": str(dataset),
        "server": {
            "version": _server_version(monitor.conn),
            "max_connections": limits.max_connections,
            "reserved_connections": limits.reserved,
            "in_use_at_start": limits.in_use,
            "available_for_pool": limits.available,
            "local": local,
            "cores": cores,
            "cores_from": "--server-cores" if options.server_cores else "this machine",
        },
        "client": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        "grid": {
            "drivers": list(grid.drivers),
            "pool_sizes": list(grid.pool_sizes),
            "concurrencies": list(grid.concurrencies),
            "dropped_pool_sizes": list(grid.dropped),
            "warmup_s": timing.warmup_s,
            "duration_s": timing.duration_s,
            "acquire_timeout_s": timing.acquire_timeout_s,
            "write_share": options.write_share,
            "seed": options.seed,
            "quick": options.quick,
        },
        "formulas": formulas,
        "spindles": options.spindles,
        "definitions": {
            "acquire": "from asking the pool for a connection until holding one",
            "query": "from holding the connection until it is back in the pool",
            "latency": "acquire + query, what the application waits for",
            "throughput": "iterations completed without error per second of the window",
            "percentiles": "numpy linear interpolation over every sample of the window",
            "little_ratio": "iterations/s x mean latency / concurrency (1 when consistent)",
            "cpu": "share of all cores of the machine over the window (100% = every core busy)",
        },
    }


def _intro(
    grid: Grid,
    limits: ServerLimits,
    cores: int,
    formulas: dict[str, int],
    local: bool,
    options: PoolsOptions,
) -> list[str]:
    lines = [
        f"grid: {len(grid.drivers)} driver(s) x pool sizes {', '.join(map(str, grid.pool_sizes))}"
        f" x concurrency {', '.join(map(str, grid.concurrencies))} = {grid.cells} cells",
        f"server: max_connections {limits.max_connections}, {limits.available} free for the pool; "
        f"{cores} cores ({'--server-cores' if options.server_cores else 'this machine'}); "
        + ", ".join(f"{k} = {v}" for k, v in formulas.items()),
    ]
    if grid.dropped:
        lines.append(
            f"left out pool sizes {', '.join(map(str, grid.dropped))}: the server's "
            f"max_connections ({limits.max_connections}) leaves room for {limits.available}"
        )
    if not local:
        lines.append("server CPU is not measured: the server does not run on this machine")
    return lines


def _api_experiment(
    options: PoolsOptions,
    timing: CellTiming,
    dataset: Path,
    server: str,
    console: Console | None,
) -> PoolsResult:
    from harness.pools import api_sweep

    with psycopg.connect(plain_postgres_url(server), autocommit=True, connect_timeout=10) as conn:
        limits = server_limits(conn)
        version = _server_version(conn)
    cores = options.server_cores or os.cpu_count() or 1
    sizes = options.pool_sizes or tuple(
        sorted({*api_sweep.DEFAULT_API_SIZES, rule_of_thumb(cores)})
    )
    users = options.concurrencies or (
        api_sweep.QUICK_USERS if options.quick else api_sweep.DEFAULT_USERS
    )
    grid = build_grid(limits, cores, drivers=("api",), pool_sizes=sizes, concurrencies=users)
    duration = options.duration_s or (
        api_sweep.QUICK_API_DURATION_S if options.quick else api_sweep.DEFAULT_API_DURATION_S
    )
    formulas = {RULE: rule_of_thumb(cores), HIKARI: hikari_formula(cores, options.spindles)}
    run_dir = options.out_dir or new_run_dir(options.runs_dir, "pools-api")
    run_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "harness_version": __version__,
        "mode": "api",
        "started": datetime.now(UTC).isoformat(),
        "target": mask_url(server),
        "dataset": str(dataset),
        "server": {
            "version": version,
            "max_connections": limits.max_connections,
            "reserved_connections": limits.reserved,
            "in_use_at_start": limits.in_use,
            "available_for_pool": limits.available,
            "local": None,
            "cores": cores,
            "cores_from": "--server-cores" if options.server_cores else "this machine",
        },
        "grid": {
            "drivers": ["api"],
            "pool_sizes": list(grid.pool_sizes),
            "concurrencies": list(grid.concurrencies),
            "dropped_pool_sizes": [],
            "warmup_s": 0.0,
            "duration_s": duration,
            "acquire_timeout_s": timing.acquire_timeout_s,
            "write_share": None,
            "seed": options.seed,
            "quick": options.quick,
            "scenario": options.scenario,
        },
        "formulas": formulas,
        "spindles": options.spindles,
        "definitions": {
            "latency": "Locust's response time of each request, exact, in the scenario's last "
            "stage (the ramp is left out)",
            "throughput": "requests answered without error per second of that stage",
            "concurrency": "Locust users (with the scenario's think time)",
            "pool": "the API's SQLAlchemy pool_size, max_overflow 0",
            "percentiles": "numpy linear interpolation over every sample of the stage",
        },
        "cells": [],
    }
    _write_json(run_dir / "pools.json", data)
    if console is not None:
        console.print(
            f"API sweep: pool sizes {', '.join(map(str, grid.pool_sizes))} x users "
            f"{', '.join(map(str, grid.concurrencies))}, {duration:g} s of {options.scenario} "
            "each, against the reference API on PostgreSQL",
            highlight=False,
        )

    def save(cell: dict[str, Any]) -> None:
        data["cells"].append(cell)
        _write_json(run_dir / "pools.json", data)

    interrupted = False
    started = time.monotonic()
    try:
        api_sweep.run_api_sweep(
            sizes=grid.pool_sizes,
            users=grid.concurrencies,
            duration_s=duration,
            acquire_timeout_s=timing.acquire_timeout_s,
            scenario=options.scenario,
            pg=options.pg,
            redis=options.redis,
            dataset=dataset,
            out_dir=run_dir,
            console=console if options.progress else None,
            on_cell=save,
        )
    except KeyboardInterrupt:
        interrupted = True
    return _finish(data, run_dir, formulas, grid, interrupted, started)


def _finish(
    data: dict[str, Any],
    run_dir: Path,
    formulas: dict[str, int],
    grid: Grid,
    interrupted: bool,
    started: float,
) -> PoolsResult:
    """Analyse the cells measured, write pools.json, pools.md and pools.html."""
    from harness.analysis.pools_report import write_reports

    data["ended"] = datetime.now(UTC).isoformat()
    data["elapsed_s"] = round(time.monotonic() - started, 3)
    data["interrupted"] = interrupted
    data["complete"] = not interrupted and len(data["cells"]) == grid.cells
    analysis = analyze(data["cells"], formulas)
    data["analysis"] = analysis.to_dict()
    _write_json(run_dir / "pools.json", data)
    result = PoolsResult(run_dir, data, analysis, interrupted)
    result.files = write_reports(result.data, analysis, run_dir)
    result.files["json"] = run_dir / "pools.json"
    return result
