"""The reference API's own SLAs at idle, on SQLite and PostgreSQL side by side.

Measures, over real HTTP on loopback, with one client and nothing else running:
  * GET /health mean (SLA: under 10 ms), beside a bare uvicorn/FastAPI app's /ping in the
    same process (what the framework alone costs, so the figure can be judged on a noisy box);
  * POST /artifacts, a single insert (SLA: under 50 ms);
  * POST /artifacts/batch with 100 artifacts in one transaction (SLA: under 500 ms).

Run: python bench/api_slas.py [--artifacts 20000] [--reps 300] [--pg URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import uvicorn
from fastapi import FastAPI
from psycopg import sql
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.dataset import DatasetSpec, write_dataset  # noqa: E402
from harness.services import postgres_url  # noqa: E402
from harness.target.seed import load_into_postgres  # noqa: E402
from harness.target.server import free_port, running_api  # noqa: E402
from harness.target.settings import ApiSettings  # noqa: E402
from harness.urls import plain_postgres_url  # noqa: E402

SLA_MS = {"health_mean": 10.0, "single_insert": 50.0, "batch_100": 500.0}


def _artifact(i: int) -> dict[str, Any]:
    return {
        "title": f"bench artifact {i}",
        "source_id": 1 + i % 50,
        "discovery_score": 0.5,
        "topic_ids": [1 + i % 20],
        "metadata": {"bench": True},
    }


def _timed(call: Callable[[], httpx.Response], reps: int, expect: int) -> list[float]:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - started) * 1000.0)
        if response.status_code != expect:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:200]}")
    return samples


@contextmanager
def _bare_app() -> Iterator[str]:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    import threading

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _summary(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples)
    return {
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "n": float(len(arr)),
    }


def measure(db: str, reps: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with running_api(ApiSettings(db=db)) as base, httpx.Client(base_url=base) as client:
        _timed(lambda: client.get("/health"), 50, 200)  # warm-up
        out["health_mean"] = _summary(_timed(lambda: client.get("/health"), reps, 200))
        counter = iter(range(10**9))
        out["single_insert"] = _summary(
            _timed(lambda: client.post("/artifacts", json=_artifact(next(counter))), reps, 201)
        )
        batch = {"artifacts": [_artifact(i) for i in range(100)]}
        out["batch_100"] = _summary(
            _timed(lambda: client.post("/artifacts/batch", json=batch), max(20, reps // 10), 201)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--pg", help="PostgreSQL URL (default: the embedded server)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    console = Console(width=140)

    with tempfile.TemporaryDirectory() as tmp:
        db_file = Path(tmp) / "bench.db"
        write_dataset(db_file, DatasetSpec(artifacts=args.artifacts, anchor=datetime(2026, 11, 1)))
        server = postgres_url(args.pg)
        name = f"bench_api_{uuid.uuid4().hex[:8]}"
        admin = plain_postgres_url(server)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        pg_db = server.rsplit("/", 1)[0] + f"/{name}"
        try:
            load_into_postgres(db_file, pg_db)
            with _bare_app() as bare, httpx.Client(base_url=bare) as client:
                _timed(lambda: client.get("/ping"), 50, 200)
                framework = _summary(_timed(lambda: client.get("/ping"), args.reps, 200))
            figures = {
                "sqlite": measure(str(db_file), args.reps),
                "postgresql": measure(pg_db, args.reps),
            }
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    table = Table(
        "figure",
        "backend",
        "mean ms",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "SLA",
        "verdict",
        title=f"reference API at idle ({args.artifacts:,} artifacts, {args.reps} reps)",
    )
    table.add_row(
        "bare FastAPI /ping (comparison)",
        "-",
        f"{framework['mean']:.2f}",
        f"{framework['p50']:.2f}",
        f"{framework['p95']:.2f}",
        f"{framework['p99']:.2f}",
        "-",
        "-",
    )
    for backend, results in figures.items():
        for name_, s in results.items():
            limit = SLA_MS[name_]
            value = s["mean"] if name_ == "health_mean" else s["p95"]
            label = "mean" if name_ == "health_mean" else "p95"
            table.add_row(
                name_,
                backend,
                f"{s['mean']:.2f}",
                f"{s['p50']:.2f}",
                f"{s['p95']:.2f}",
                f"{s['p99']:.2f}",
                f"{label} < {limit:g} ms",
                "[green]pass" if value < limit else "[red]FAIL",
            )
    console.print(table)
    h = figures["sqlite"]["health_mean"]["mean"]
    console.print(
        f"/health costs {h / framework['mean']:.2f}x a bare FastAPI endpoint "
        f"(metrics middleware included)"
    )
    if args.json:
        args.json.write_text(json.dumps({"framework": framework, **figures}, indent=2))


if __name__ == "__main__":
    main()
