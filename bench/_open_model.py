"""What the open-model benchmarks share: locustfiles, a scenario file, a Locust runner, the
iteration log and the latencies of a run.

Locust runs as a subprocess (``python -m locust --headless``) against a loopback target from
``bench/recorder_overhead.py``; every run is bounded by its scenario or ``-t`` and a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from harness.recorder import read_iterations, read_samples

FloatArray = npt.NDArray[np.float64]

# One GET per task. ``Probe`` is what the open model drives (its think time is ignored);
# ``Paced`` is the closed model a Locust user writes for a target rate (constant_throughput
# per user); ``Flood`` sends back to back (closed-model capacity).
LOCUSTFILE = """
import os

from locust import FastHttpUser, constant, constant_throughput, task

import harness.users  # noqa: F401  (recorder, stages, open-model executor)


class Probe(FastHttpUser):
    @task
    def root(self) -> None:
        self.client.get("/", name="/")


class Paced(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("BENCH_PACE", "1")))

    @task
    def root(self) -> None:
        self.client.get("/", name="/")


class Flood(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self) -> None:
        self.client.get("/", name="/")
"""
SCENARIO = '''"""Benchmark: one constant-rate stage."""
from harness.shapes import ScenarioShape

STAGES = [{"name": "steady", "duration": %r, "rate": %r}]


class BenchRate(ScenarioShape):
    """Constant rate."""
'''
LOCUST_TIMEOUT_S = 600


def write_files(folder: Path, duration: float, rate: float) -> tuple[Path, Path]:
    """The benchmark locustfile and a constant-rate scenario in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    locustfile = folder / "bench_users.py"
    locustfile.write_text(LOCUSTFILE.lstrip())
    scenario = folder / "bench_rate.py"
    scenario.write_text(SCENARIO % (duration, rate))
    return locustfile, scenario


@dataclass
class Finished:
    """One Locust run: where it wrote, how it ended, what it cost."""

    label: str
    run_dir: Path
    exit_code: int
    wall_s: float
    cpu_s: float  # the Locust process tree's CPU seconds (user + system)
    log: Path

    def latencies(self) -> FloatArray:
        """Every recorded request's latency (ms): from the intended start in the open model."""
        table = read_samples(self.run_dir).table
        return np.asarray(table.column("latency_ms").to_numpy(), dtype=np.float64)

    def service_times(self) -> FloatArray:
        """Open model: each request's latency from its actual send (ms)."""
        t = read_samples(self.run_dir).table
        latency = np.asarray(t.column("latency_ms").to_numpy(), dtype=np.float64)
        sent = np.asarray(t.column("start_time").to_numpy(), dtype=np.float64)
        intended = np.asarray(
            t.column("intended_start").to_numpy(zero_copy_only=False), dtype=np.float64
        )
        out: FloatArray = latency - (sent - intended) * 1000.0
        return out

    def verdict(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data: dict[str, Any] = json.loads((self.run_dir / "verdict.json").read_text())
            return data
        return {}

    def meta(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data: dict[str, Any] = json.loads((self.run_dir / "run.json").read_text())
            return data
        return {}

    def iteration_outcomes(self) -> dict[str, int]:
        result = read_iterations(self.run_dir)
        if result is None:
            return {}
        outcomes = result.table.column("outcome").to_pylist()
        return {k: outcomes.count(k) for k in sorted(set(outcomes))}


def _tree_cpu(root: psutil.Process, seen: dict[int, float]) -> None:
    with contextlib.suppress(psutil.Error):
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                seen[p.pid] = float(t.user + t.system)


def run_locust(
    label: str,
    files: Sequence[Path],
    host: str,
    workdir: Path,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> Finished:
    """``locust -f FILES --headless --host HOST ARGS`` with a run directory; wait for it."""
    folder = workdir / label
    folder.mkdir(parents=True)
    run_dir, log = folder / "run", folder / "locust.log"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ",".join(str(f) for f in files),
        "--headless",
        "--host",
        host,
        "--run-dir",
        str(run_dir),
        "--only-summary",
        "--loglevel",
        "WARNING",
        *args,
    ]
    cpu: dict[int, float] = {}
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HARNESS_SLA": "", **(env or {})},
        )
        root = psutil.Process(proc.pid)
        deadline = time.monotonic() + LOCUST_TIMEOUT_S
        try:
            while proc.poll() is None:
                _tree_cpu(root, cpu)
                if time.monotonic() > deadline:
                    proc.kill()
                time.sleep(0.2)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    wall = time.perf_counter() - started
    if not (run_dir / "verdict.json").exists():
        sys.exit(f"Locust run {label!r} ended without a verdict; see {log}")
    return Finished(label, run_dir, proc.returncode, wall, sum(cpu.values()), log)


def percentiles(values: FloatArray) -> dict[str, float]:
    """p50, p90, p95, p99 (numpy's linear definition) and the mean."""
    if len(values) == 0:
        return {k: float("nan") for k in ("p50", "p90", "p95", "p99", "mean")}
    out = {f"p{q:g}": float(np.percentile(values, q)) for q in (50, 90, 95, 99)}
    out["mean"] = float(values.mean())
    return out
