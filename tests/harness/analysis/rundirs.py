"""Synthetic run directories for the report tests, written the way the recorder writes them.

Samples come from seeded lognormal latencies per endpoint, a few Locust processes each with
its own ``samples/*.arrows`` file (batches appended with :class:`SampleWriter`), stages with
their spans in ``run.json``, and a known mix of failures. The generated rows are returned
too, so tests compare the analysis with numpy on exactly the same values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.recorder import COLUMNS, SampleWriter, file_name

START = 1_750_000_000.0
STAGES: tuple[tuple[str, float, int], ...] = (  # name, duration s, users
    ("warmup", 20.0, 5),
    ("spike", 20.0, 25),
    ("recovery", 20.0, 10),
)
ENDPOINTS: Mapping[str, tuple[float, float]] = {  # endpoint -> median ms, sigma
    "GET /discoveries": (40.0, 0.5),
    "GET /entities/[id]": (20.0, 0.4),
    "GET /health": (2.0, 0.3),
    "POST /artifacts": (90.0, 0.6),
}
FAILURES = (  # status, error text
    (500, "HTTPError: 500 Server Error: Internal Server Error for url: /discoveries"),
    (503, "CatchResponseError: 503 Service Unavailable"),
    (None, "ConnectionRefusedError: [Errno 111] Connection refused"),
)


def make_run(
    run_dir: Path,
    *,
    seed: int = 7,
    rate: float = 6.0,
    stages: Sequence[tuple[str, float, int]] = STAGES,
    endpoints: Mapping[str, tuple[float, float]] = ENDPOINTS,
    error_rate: float = 0.03,
    workers: int = 2,
    batch: int = 400,
    slas: Sequence[str] = ("*:p95<200ms", "errors<5%", "GET /health:mean<10ms"),
    verdict: Mapping[str, Any] | None = None,
    extra_rows: Sequence[tuple[Any, ...]] = (),
) -> pd.DataFrame:
    """Write a run directory; return every sample written (recorder columns + endpoint).

    ``rate`` is requests per second per user and endpoint, so a stage with more users sends
    more. ``extra_rows`` are appended as they are (e.g. samples exactly on a boundary).
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[Any, ...]] = []
    t = START
    spans = []
    for stage, duration, users in stages:
        for endpoint, (median, sigma) in endpoints.items():
            method, name = endpoint.split(" ", 1)
            n = int(rng.poisson(rate * users * duration / len(endpoints)))
            starts = np.sort(rng.uniform(t, t + duration, n))
            latency = rng.lognormal(np.log(median) + 0.3 * (users > 20), sigma, n)
            failed = rng.random(n) < error_rate
            kinds = rng.integers(0, len(FAILURES), n)
            for i in range(n):
                status, error = FAILURES[kinds[i]] if failed[i] else (200, None)
                worker = f"worker-{i % workers}"
                rows.append(
                    (
                        float(starts[i]),
                        None,
                        name,
                        method,
                        float(latency[i]),
                        not failed[i],
                        status,
                        int(rng.integers(100, 5000)),
                        stage,
                        users,
                        worker,
                        error,
                    )
                )
        spans.append({"name": stage, "start": t, "end": t + duration})
        t += duration
    rows.extend(extra_rows)
    rows.sort(key=lambda r: r[0])
    by_worker: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_worker.setdefault(row[10], []).append(row)
    for worker, mine in sorted(by_worker.items()):
        writer = SampleWriter(run_dir / "samples" / file_name(worker))
        for i in range(0, len(mine), batch):
            writer.write(mine[i : i + batch])
        writer.close()
    meta = {
        "schema": "harness.run/1",
        "scenario": {"name": "synthetic", "file": "tests", "description": "seeded test run"},
        "target": "http://127.0.0.1:8000",
        "backend": "sqlite",
        "harness_version": "0.test",
        "locust_version": "2.40.0",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "host": {"hostname": "testhost", "platform": "Linux", "python": "3.11", "cpus": 2},
        "slas": list(slas),
        "start": "2025-06-15T15:06:40Z",
        "start_epoch": START,
        "end_epoch": t,
        "stages": spans,
        "workers": sorted(by_worker),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    if verdict is not None:
        (run_dir / "verdict.json").write_text(json.dumps(verdict, indent=2))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["endpoint"] = frame["request_type"] + " " + frame["name"]
    return frame


LOCUST_STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def write_locust_csv(prefix: Path) -> Path:
    """A small Locust ``--csv`` stats file (``<prefix>_stats.csv``) as Locust 2.x writes it."""
    lines = [
        LOCUST_STATS_HEADER,
        "GET,/discoveries,1200,12,41,47.3,3.1,830.2,2048.0,20.0,0.2,"
        "41,49,56,61,78,99,130,170,420,830,830",
        "GET,/entities/[id],900,0,20,22.8,1.9,310.0,1024.0,15.0,0.0,"
        "20,23,26,28,35,42,55,68,190,310,310",
        "POST,/artifacts,150,3,88,101.4,12.0,1500.0,256.0,2.5,0.05,"
        "88,100,110,120,160,210,320,480,1500,1500,1500",
        ",Aggregated,2250,15,32,41.2,1.9,1500.0,1500.1,37.5,0.25,"
        "32,40,47,52,68,90,130,190,460,1500,1500",
    ]
    path = Path(f"{prefix}_stats.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_locust_json(path: Path) -> Path:
    """A small Locust ``--json-file`` output: per-endpoint stats with response-time buckets."""
    data = [
        {
            "name": "/discoveries",
            "method": "GET",
            "num_requests": 100,
            "num_failures": 2,
            "total_response_time": 5000.0,
            "min_response_time": 10.0,
            "max_response_time": 400.0,
            "response_times": {"10": 20, "40": 50, "90": 25, "400": 5},
        },
        {
            "name": "/health",
            "method": "GET",
            "num_requests": 50,
            "num_failures": 0,
            "total_response_time": 100.0,
            "min_response_time": 1.0,
            "max_response_time": 5.0,
            "response_times": {"1": 30, "2": 15, "5": 5},
        },
    ]
    path.write_text(json.dumps(data))
    return path
