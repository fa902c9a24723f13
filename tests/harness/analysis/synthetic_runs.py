"""Synthetic run directories for analysis tests: real sample files (SampleWriter) + run.json.

Nothing here runs Locust: requests are drawn from seeded distributions so tests know the truth
(latency distributions, throughput per stage, user counts) the analysis must find.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.recorder import SampleWriter, file_name

START = 1_700_000_000.0
FloatArray = npt.NDArray[np.float64]

# (rng, endpoint, stage, how many) -> latencies in ms
LatencyFn = Callable[[np.random.Generator, str, "StageSpec", int], FloatArray]
# (endpoint, stage) -> requests per second
RateFn = Callable[[str, "StageSpec"], float]


@dataclass(frozen=True)
class StageSpec:
    name: str
    duration: float
    users: int
    spawn_rate: float = 1000.0


def lognormal(median_ms: float, sigma: float = 0.5) -> LatencyFn:
    """Latencies with the given median and log-spread, the same in every stage."""

    def draw(rng: np.random.Generator, endpoint: str, stage: StageSpec, n: int) -> FloatArray:
        return rng.lognormal(np.log(median_ms), sigma, n)

    return draw


def write_run(
    run_dir: Path,
    stages: Sequence[StageSpec],
    rates: RateFn,
    latency: Mapping[str, LatencyFn],
    *,
    seed: int,
    scenario: str = "steady",
    target: str = "http://127.0.0.1:8000",
    error_rate: float = 0.0,
    start: float = START,
    stress: bool = False,
    exact_counts: bool = False,
    extra_meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``run_dir`` with samples of every endpoint in ``latency`` for every stage.

    Requests arrive uniformly at ``rates(endpoint, stage)`` per second (a Poisson count),
    latencies come from ``latency[endpoint]``, a share ``error_rate`` fails with HTTP 500.
    ``exact_counts`` sends exactly rate x duration requests, evenly spread (no count noise).
    """
    rng = np.random.default_rng(seed)
    writer = SampleWriter(run_dir / "samples" / file_name("local"))
    spans: list[dict[str, Any]] = []
    t = start
    for stage in stages:
        rows: list[tuple[Any, ...]] = []
        for endpoint, draw in latency.items():
            expected = rates(endpoint, stage) * stage.duration
            if exact_counts:
                n = round(expected)
                times = t + (np.arange(n) + rng.random(n)) * (stage.duration / max(n, 1))
            else:
                n = int(rng.poisson(expected))
                times = np.sort(rng.uniform(t, t + stage.duration, n))
            lat = draw(rng, endpoint, stage, n)
            ok = rng.random(n) >= error_rate
            method, name = endpoint.split(" ", 1)
            rows.extend(
                (
                    float(ts),
                    None,
                    name,
                    method,
                    float(ms),
                    bool(good),
                    200 if good else 500,
                    512,
                    stage.name,
                    stage.users,
                    "local",
                    None if good else "HTTPError('500 Server Error')",
                )
                for ts, ms, good in zip(times.tolist(), lat.tolist(), ok.tolist(), strict=True)
            )
        rows.sort(key=lambda r: r[0])
        for i in range(0, len(rows), 5000):
            writer.write(rows[i : i + 5000])
        spans.append({"name": stage.name, "start": t, "end": t + stage.duration})
        t += stage.duration
    writer.close()
    meta: dict[str, Any] = {
        "schema": "harness.run/1",
        "scenario": {"name": scenario, "file": f"scenarios/{scenario}.py"},
        "target": target,
        "locust": {"users": None},
        "planned_stages": [
            {"name": s.name, "duration": s.duration, "users": s.users, "spawn_rate": s.spawn_rate}
            for s in stages
        ],
        "stages": spans,
        "start_epoch": start,
        "end_epoch": t,
        "stress": {"step_users": 1} if stress else None,
    }
    meta.update(extra_meta or {})
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    return run_dir
