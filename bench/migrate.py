"""Migration copy speed and memory: ``harness migrate run`` against a plain binary COPY.

What it measures, against what, and the target (the issue's figures):

1. **Rows/s and MB/s of the copy** on the reference dataset (default ``--artifacts 150000``,
   about 1,715,000 rows, 163 MB of SQLite). The comparison is measured in the same run, on
   the same server, side by side:

   * *limit*: every table's rows are read and converted first (the same conversions the
     migration makes: ISO text to timestamps, 0/1 to booleans; not timed), then the timed
     part sends them with asyncpg's ``copy_records_to_table``, one binary COPY per table on
     one connection, into the same bare tables the migration creates (NOT NULL, CHECK and
     defaults, keys after the data). That is the ceiling: the rows already in memory.
   * *harness*: the ``harness migrate run`` command itself, in a child process, with its
     default workers (one per core). Its copy phase (read SQLite, convert, COPY, commit each
     chunk with its state) is compared with the limit; **target: at least 0.7x** (pgloader
     reaches about 0.23x of the same limit). MB/s is the SQLite file's size over the time.

   The whole command is also timed end to end (plan, copy, keys, indexes, foreign keys,
   views, statistics, count proof) next to the limit plus the same keys, indexes and
   foreign keys built the same way, one after the other.

2. **Peak RSS** of the command: the sum over its process tree (the command and its
   workers), sampled every 20 ms. **Target: under 250 MB** (pgloader needed about 1 GB).

Rounds alternate which side goes first (``--repeat``, default 2) and the best of each is
compared: on a shared, noisy machine the ratio holds, an absolute time does not. Only a
loopback PostgreSQL is used (``--pg``, else the embedded server); each side gets a fresh
database, dropped at the end.

    python bench/migrate.py [--artifacts N] [--repeat R] [--workers N] [--pg URL]
                            [--dataset PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import psutil
from rich.console import Console
from rich.table import Table

from bench._common import (
    drop_database,
    fmt_int,
    fresh_database,
    positive_int,
    rate,
    require_loopback,
    verdict,
    write_json,
)
from harness.dataset import DatasetSpec, write_dataset
from harness.services import postgres_url
from migrate.convert import fast_converter
from migrate.names import pg_ident
from migrate.plan import Plan, make_plan
from migrate.reader import Chunk, read_fast
from migrate.run import default_workers, table_specs
from migrate.sqlite_file import open_source

TARGET_RATIO = 0.7
TARGET_RSS_MB = 250.0
RSS_SAMPLE_S = 0.02


@dataclass
class Limit:
    """The plain binary COPY of rows already in memory."""

    rows: int
    copy_s: float
    finish_s: float


@dataclass
class Harness:
    """One ``harness migrate run``."""

    rows: int
    copy_s: float
    total_s: float
    after_copy_s: float
    peak_rss_mb: float
    largest_process_mb: float
    workers: int


# -- databases ------------------------------------------------------------------------------


# -- the limit ------------------------------------------------------------------------------


def rows_in_memory(plan: Plan, source: Path) -> dict[str, list[Any]]:
    """Every table's rows, converted as the migration converts them."""
    specs = table_specs(plan)
    conn = open_source(source)
    try:
        out: dict[str, list[Any]] = {}
        for table in plan.tables:
            spec = specs[table.name]
            convert = fast_converter(spec)
            whole = Chunk(table.name, 0, None, None, table.rows or 0)
            out[table.name] = [
                row for batch in read_fast(conn, spec, whole) for row in convert(batch)
            ]
        return out
    finally:
        conn.close()


async def plain_copy(plan: Plan, url: str, data: dict[str, list[Any]]) -> Limit:
    specs = table_specs(plan)
    con = await asyncpg.connect(url)
    try:
        for table in plan.tables:
            await con.execute(table.create_sql_for_copy)
        started = time.perf_counter()
        for table in plan.tables:
            await con.copy_records_to_table(
                table.name, records=data[table.name], columns=specs[table.name].column_names
            )
        copy_s = time.perf_counter() - started
        started = time.perf_counter()
        for table in plan.tables:
            t = pg_ident(table.name)
            keys = [", ".join(map(pg_ident, table.primary_key))] if table.primary_key else []
            statements = [f"ALTER TABLE {t} ADD PRIMARY KEY ({k})" for k in keys]
            statements += [
                f"ALTER TABLE {t} ADD UNIQUE ({', '.join(map(pg_ident, u))})" for u in table.uniques
            ]
            for statement in statements:
                await con.execute(statement)
        for phase in ("indexes", "foreign_keys"):
            for statement in plan.statements(phase):
                await con.execute(statement)
        finish_s = time.perf_counter() - started
    finally:
        await con.close()
    return Limit(sum(len(v) for v in data.values()), copy_s, finish_s)


# -- the command ----------------------------------------------------------------------------


def _tree_rss(proc: psutil.Process) -> tuple[float, float]:
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    sizes = []
    for p in procs:
        try:
            sizes.append(p.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return sum(sizes) / 1e6, max(sizes, default=0) / 1e6


def harness_run(source: Path, url: str, workers: int, runs_dir: Path) -> Harness:
    command = [
        sys.executable, "-m", "harness.cli", "migrate", "run", str(source), "--pg", url,
        "--workers", str(workers), "--no-progress", "--runs-dir", str(runs_dir),
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak, largest = 0.0, 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, largest
        proc = psutil.Process(child.pid)
        while not done.is_set():
            total, one = _tree_rss(proc)
            peak, largest = max(peak, total), max(largest, one)
            time.sleep(RSS_SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    total_s = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        sys.exit(f"harness migrate run failed ({child.returncode}):\n{output.decode()[-2000:]}")
    (summary_path,) = runs_dir.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    shutil.rmtree(runs_dir)
    seconds = summary["seconds"]
    after = sum(seconds.get(k, 0.0) for k in ("keys", "foreign_keys", "views", "identities"))
    return Harness(
        rows=summary["rows"]["loaded"],
        copy_s=seconds["copy"],
        total_s=total_s,
        after_copy_s=after,
        peak_rss_mb=peak,
        largest_process_mb=largest,
        workers=summary["workers"],
    )


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artifacts", type=positive_int, default=150_000)
    parser.add_argument("--repeat", type=positive_int, default=2)
    parser.add_argument("--workers", type=positive_int, default=default_workers())
    parser.add_argument("--pg", help="PostgreSQL server URL (loopback only; default embedded)")
    parser.add_argument("--dataset", type=Path, help="Reuse this SQLite file instead")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args()
    console = Console()
    server = postgres_url(args.pg)
    require_loopback(server)

    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as tmp:
        source = args.dataset
        if source is None:
            source = Path(tmp) / "reference.db"
            console.print(f"writing the reference dataset ({args.artifacts:,} artifacts)...")
            write_dataset(source, DatasetSpec(artifacts=args.artifacts, seed=42))
        size_mb = source.stat().st_size / 1e6
        plan = make_plan(source)
        rows = sum(t.rows or 0 for t in plan.tables)
        console.print(
            f"{rows:,} rows, {size_mb:,.0f} MB; reading them into memory for the limit..."
        )
        data = rows_in_memory(plan, source)
        limits: list[Limit] = []
        runs: list[Harness] = []
        for round_ in range(args.repeat):
            order = ("limit", "harness") if round_ % 2 == 0 else ("harness", "limit")
            for side in order:
                name, url = fresh_database(server, "bench_migrate")
                try:
                    if side == "limit":
                        limits.append(asyncio.run(plain_copy(plan, url, data)))
                    else:
                        runs.append(harness_run(source, url, args.workers, Path(tmp) / "runs"))
                finally:
                    drop_database(server, name)
            console.print(
                f"round {round_ + 1}: limit copy {limits[-1].copy_s:.2f} s, "
                f"harness copy {runs[-1].copy_s:.2f} s (total {runs[-1].total_s:.2f} s, "
                f"peak RSS {runs[-1].peak_rss_mb:,.0f} MB)"
            )
        del data

    limit = min(limits, key=lambda x: x.copy_s)
    best = min(runs, key=lambda x: x.copy_s)
    ratio = limit.copy_s / best.copy_s
    limit_rps, best_rps = rate(limit.rows, limit.copy_s), rate(best.rows, best.copy_s)
    peak = max(r.peak_rss_mb for r in runs)
    finish_ratio = (limit.copy_s + limit.finish_s) / min(r.copy_s + r.after_copy_s for r in runs)

    grid = Table(
        title=f"harness migrate run vs plain binary COPY ({rows:,} rows, {size_mb:,.0f} MB)"
    )
    for col in ("figure", "plain COPY (limit)", "harness", "ratio", "target", ""):
        grid.add_column(col, justify="left" if col == "figure" else "right")
    grid.add_row(
        "copy rows/s",
        fmt_int(limit_rps),
        fmt_int(best_rps),
        f"{ratio:.2f}x",
        f">= {TARGET_RATIO}x",
        verdict(ratio >= TARGET_RATIO),
    )
    grid.add_row(
        "copy MB/s",
        f"{size_mb / limit.copy_s:,.1f}",
        f"{size_mb / best.copy_s:,.1f}",
        f"{ratio:.2f}x",
        "",
        "",
    )
    grid.add_row(
        "copy + keys, indexes, FKs (s)",
        f"{limit.copy_s + limit.finish_s:.2f}",
        f"{min(r.copy_s + r.after_copy_s for r in runs):.2f}",
        f"{finish_ratio:.2f}x",
        "",
        "",
    )
    grid.add_row("whole command (s)", "", f"{best.total_s:.2f}", "", "", "")
    grid.add_row(
        "peak RSS, all processes (MB)",
        "",
        f"{peak:,.0f}",
        "",
        f"< {TARGET_RSS_MB:.0f}",
        verdict(peak < TARGET_RSS_MB),
    )
    grid.add_row(
        "largest single process (MB)",
        "",
        f"{max(r.largest_process_mb for r in runs):,.0f}",
        "",
        "",
        "",
    )
    console.print(grid)
    console.print(f"workers: {best.workers}; rounds: {args.repeat}; best of each side compared")
    write_json(
        args.json,
        {
            "rows": rows,
            "source_mb": size_mb,
            "limit": [asdict(x) for x in limits],
            "harness": [asdict(x) for x in runs],
            "ratio": ratio,
            "peak_rss_mb": peak,
            "targets": {"ratio": TARGET_RATIO, "rss_mb": TARGET_RSS_MB},
            "cpus": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
