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
127.0.0.1. The figure is requests/s, best round of each setting; **aim: on within 3% of off.**

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


def one_round(
    db: Path, threshold: str | None, seconds: float, clients: int, tmp: Path, max_id: int
) -> float:
    from harness.target.process import reference_api

    saved = os.environ.get("HARNESS_API_SLOW_MS")
    if threshold is not None:
        os.environ["HARNESS_API_SLOW_MS"] = threshold
    try:
        log = tmp / f"slow-{time.monotonic_ns()}.jsonl" if threshold is not None else None
        with reference_api(str(db), redis_url=None, log=tmp / "api.log", slow_log=log) as base:
            asyncio.run(drive(base, 1.0, clients, max_id))  # warm-up
            served = asyncio.run(drive(base, seconds, clients, max_id))
    finally:
        if saved is None:
            os.environ.pop("HARNESS_API_SLOW_MS", None)
        else:
            os.environ["HARNESS_API_SLOW_MS"] = saved
    return served / seconds


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
        for r in range(args.rounds):
            order = SETTINGS if r % 2 == 0 else tuple(reversed(SETTINGS))
            for label, threshold in order:
                rate = one_round(db, threshold, args.seconds, args.clients, tmp, max_id)
                rates[label].append(rate)
                console.print(f"round {r + 1} {label:>9}: {rate:,.0f} requests/s")
    best = {label: max(v) for label, v in rates.items()}
    off = best["off"]
    table = Table(title="reference API throughput, slow-query log on against off (best round)")
    for column in ("setting", "requests/s", "vs off", "aim", ""):
        table.add_column(column, justify="left" if column == "setting" else "right")
    results: dict[str, Any] = {"rates": rates, "best": best}
    for label, _ in SETTINGS:
        cost = 1.0 - best[label] / off if off else 0.0
        is_aim = label == "on"
        table.add_row(
            label,
            f"{best[label]:,.0f}",
            f"{-cost:+.1%}",
            f"< {AIM:.0%} cost" if is_aim else "",
            verdict(cost < AIM) if is_aim else "",
        )
        results[f"cost_{label}"] = cost
    console.print(table)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
