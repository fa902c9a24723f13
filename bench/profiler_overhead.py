"""The slow-query log's cost: reference API throughput with the log on against off.

The API runs as its own process (``harness serve``, as ``harness run`` starts it) on a copy of
the reference dataset, with no cache in front of the database for the endpoints driven
(``/artifacts/{id}`` and ``/artifacts/{id}/citations``: four to five statements per request),
so every request pays the event hooks. Three settings, alternated round by round so drift
on a shared machine hits all of them alike:

- *off*: no slow-query log;
- *on*: the log at its default threshold (100 ms): every statement is timed, few are written;
- *on, 0 ms*: every statement is written (the worst case, for reference).

A closed loop of ``--clients`` asyncio clients (httpx) runs ``--seconds`` per round on
127.0.0.1. Two figures per setting: requests/s (best round) and the API process's CPU time
per request (median round, from psutil). On a shared 2-core machine the client competes with
the API for the CPU and throughput swings by 20% from round to round, so the verdict uses CPU
per request: when the API is CPU-bound, its throughput is the inverse of it. **Aim: the log
costs under 3%.**

    python bench/profiler_overhead.py [--rounds 3] [--seconds 8] [--clients 16] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import positive_int, verdict, write_json

AIM = 0.03
# /artifacts/{id}: the artifact, its topics, entities and two citation counts;
# /artifacts/{id}/citations: the rows and a count (half the traffic each).
STATEMENTS_PER_REQUEST = 4
SETTINGS = (("off", None), ("on", "100"), ("on, 0 ms", "0"))


async def drive(base: str, seconds: float, clients: int, max_id: int) -> int:
    done = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:

        async def client(seed: int) -> None:
            nonlocal done
            rng = np.random.default_rng(seed)
            while time.perf_counter() < deadline:
                i = int(rng.integers(1, max_id + 1))
                path = f"/artifacts/{i}" if rng.random() < 0.5 else f"/artifacts/{i}/citations"
                response = await http.get(path)
                if response.status_code == 200:
                    done += 1

        await asyncio.gather(*(client(s) for s in range(clients)))
    return done


def _api_cpu(port: str) -> float:
    """CPU seconds of the API process serving ``port`` (and its workers)."""
    import psutil

    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            if port in " ".join(proc.cmdline()):
                for p in [proc, *proc.children(recursive=True)]:
                    times = p.cpu_times()
                    total += times.user + times.system
        except psutil.Error:
            continue
    return total


def one_round(
    db: Path, threshold: str | None, seconds: float, clients: int, tmp: Path, max_id: int
) -> tuple[float, float]:
    from harness.target.process import reference_api

    saved = os.environ.get("HARNESS_API_SLOW_MS")
    if threshold is not None:
        os.environ["HARNESS_API_SLOW_MS"] = threshold
    try:
        log = tmp / f"slow-{time.monotonic_ns()}.jsonl" if threshold is not None else None
        with reference_api(str(db), redis_url=None, log=tmp / "api.log", slow_log=log) as base:
            asyncio.run(drive(base, 1.0, clients, max_id))  # warm-up
            port = base.rsplit(":", 1)[1]
            cpu0 = _api_cpu(port)
            served = asyncio.run(drive(base, seconds, clients, max_id))
            cpu = _api_cpu(port) - cpu0
    finally:
        if saved is None:
            os.environ.pop("HARNESS_API_SLOW_MS", None)
        else:
            os.environ["HARNESS_API_SLOW_MS"] = saved
    return served / seconds, cpu / max(served, 1) * 1e6


def hook_cost_us(repeat: int = 5, n: int = 20_000) -> float:
    """Median extra time per statement with the log's hooks attached (nothing written): the
    in-process measure, free of the client's noise."""
    import statistics

    from sqlalchemy import create_engine, text

    from harness.profiler.slowlog import SlowQueryLog

    def per_statement(attach: bool, folder: Path) -> float:
        engine = create_engine("sqlite://")
        if attach:
            SlowQueryLog(folder / "hook.jsonl", 100.0, "sqlite").attach(engine)
        with engine.connect() as conn:
            for _ in range(n // 10):
                conn.execute(text("SELECT 1"))
            started = time.perf_counter()
            for _ in range(n):
                conn.execute(text("SELECT 1"))
            return (time.perf_counter() - started) / n * 1e6

    with tempfile.TemporaryDirectory() as name:
        diffs = [
            per_statement(True, Path(name)) - per_statement(False, Path(name))
            for _ in range(repeat)
        ]
    return statistics.median(diffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=positive_int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console(width=110)

    import sqlite3

    from harness.target.launch import default_dataset

    dataset = default_dataset(console)
    with tempfile.TemporaryDirectory(prefix="bench-profiler-") as name:
        tmp = Path(name)
        db = tmp / "target.db"
        shutil.copyfile(dataset, db)
        with sqlite3.connect(db) as conn:
            max_id = int(conn.execute("SELECT max(id) FROM artifacts").fetchone()[0])
        rates: dict[str, list[float]] = {label: [] for label, _ in SETTINGS}
        cpu: dict[str, list[float]] = {label: [] for label, _ in SETTINGS}
        for r in range(args.rounds):
            order = SETTINGS if r % 2 == 0 else tuple(reversed(SETTINGS))
            for label, threshold in order:
                rate, us = one_round(db, threshold, args.seconds, args.clients, tmp, max_id)
                rates[label].append(rate)
                cpu[label].append(us)
                console.print(
                    f"round {r + 1} {label:>9}: {rate:,.0f} requests/s, {us:,.0f} us CPU/request"
                )
    import statistics

    best = {label: max(v) for label, v in rates.items()}
    per_request = {label: statistics.median(v) for label, v in cpu.items()}
    table = Table(title="reference API with the slow-query log on against off")
    for column in ("setting", "requests/s (best)", "CPU us/request", "cost", "aim", ""):
        table.add_column(column, justify="left" if column == "setting" else "right")
    results: dict[str, Any] = {"rates": rates, "cpu_us_per_request": cpu, "best": best}
    off = per_request["off"]
    for label, _ in SETTINGS:
        cost = per_request[label] / off - 1.0 if off else 0.0
        is_aim = label == "on"
        table.add_row(
            label,
            f"{best[label]:,.0f}",
            f"{per_request[label]:,.0f}",
            f"{cost:+.1%}",
            f"< {AIM:.0%}" if is_aim else "",
            verdict(cost < AIM) if is_aim else "",
        )
        results[f"cost_{label}"] = cost
    console.print(table)
    hook = hook_cost_us()
    share = hook * STATEMENTS_PER_REQUEST / per_request["off"] if per_request["off"] else 0.0
    results["hook_cost_us_per_statement"] = hook
    results["hook_share_of_request_cpu"] = share
    console.print(
        f"in-process: the hooks add {hook:.1f} us per statement; at {STATEMENTS_PER_REQUEST} "
        f"statements per request that is {share:.1%} of the API's {per_request['off']:,.0f} us "
        f"CPU per request ({verdict(share < AIM)} against the {AIM:.0%} aim)"
    )
    write_json(args.json, results)


if __name__ == "__main__":
    main()
