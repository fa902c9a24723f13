"""Load-generator capacity: requests per second of ``ApiUser`` from one Locust process, and
from ``--processes 2``, against a trivial loopback endpoint.

What it measures, against what, and the target:

* **Requests per second** of ``locustfiles/api.py`` (``ApiUser``, ``HARNESS_THINK_TIME=0``,
  the recorder on, as ``harness run`` uses it) from one Locust process, and with
  ``--processes 2`` (a master and two workers). The two are measured side by side in the
  same run, rounds alternating which goes first (``--rounds``, default 2), in the steady
  window of each run (``--warmup`` seconds after the start to 1 s before the end, counted
  from the recorder's exact samples). **Aim: 2 processes give at least 1.8x one.**
* The **generator's CPU milliseconds per request** (master + workers, ``psutil`` snapshots
  over the same window), the capacity figure that does not depend on how many cores are
  free: ``2 x (CPU per request with 1 process / with 2)`` is what two processes give when
  each has a core of its own, shown beside the aim too.

The target must be faster than the generator, or the ratio measures the target: a raw
``asyncio.Protocol`` responder (``bench/recorder_overhead.py``; no framework, prebuilt
answers) in ``--target-processes`` processes sharing the port. It answers every path
``ApiUser`` requests: ``GET /meta`` with the reference API's id ranges, other GETs a small
200 JSON, POSTs 201. Its CPU use is printed beside the generator's.

**On a 2-core machine the raw ratio cannot reach 1.8x**: two generator processes, the
Locust master and the target then share two cores, so the output says how many cores were
busy; the CPU-per-request figure is the honest one there. Loopback (127.0.0.1) only; Locust
runs as a subprocess.

    python bench/generator_throughput.py [--users 40] [--duration 20] [--rounds 2]
                                         [--target-processes 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._common import REPO, fmt_int, positive_int, verdict, write_json
from bench.recorder_overhead import (
    App,
    LocustRun,
    Reply,
    http_response,
    loopback_target,
    run_locust,
)
from harness.recorder import read_samples

AIM = 1.8
LOCUSTFILE = REPO / "locustfiles" / "api.py"
IDS = {
    "artifacts": {"min_id": 1, "max_id": 100_000},
    "topics": {"min_id": 1, "max_id": 500},
    "entities": {"min_id": 1, "max_id": 20_000},
    "sources": {"min_id": 1, "max_id": 200},
}
META = {"dataset": {"artifacts": "100000", "seed": "7"}, "ids": IDS}
MODES = {"1 process": (), "--processes 2": ("--processes", "2")}


class ApiStub(App):
    """Every path ``ApiUser`` requests, answered at once with a prebuilt response."""

    def __init__(self) -> None:
        self.meta = http_response(200, json.dumps(META).encode())
        self.read = http_response(200, b'{"items":[],"total":0}')
        self.created = http_response(201, b'{"id":1}')

    def handle(self, method: bytes, target: bytes, headers: Mapping[bytes, bytes]) -> Reply:
        if method == b"POST":
            return 0.0, self.created
        return 0.0, self.meta if target == b"/meta" else self.read


def _in_window(run: LocustRun) -> int:
    """Requests the recorder saw sent inside the run's steady window."""
    start = read_samples(run.run_dir).table.column("start_time").to_numpy()
    return int(np.count_nonzero((start >= run.window["t0"]) & (start < run.window["t1"])))


def measure(
    users: int, duration: int, rounds: int, warmup: float, target_processes: int, console: Console
) -> list[tuple[str, LocustRun, int]]:
    env = {"HARNESS_THINK_TIME": "0", "HARNESS_SEED": "7"}
    runs: list[tuple[str, LocustRun, int]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-generator-") as tmp,
        loopback_target(ApiStub, target_processes) as target,
    ):
        for r in range(rounds):
            order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
            for mode in order:
                console.log(f"round {r + 1}/{rounds}: {mode}, {users} users, {duration} s")
                label = f"{'p2' if MODES[mode] else 'p1'}-{r + 1}"
                run = run_locust(
                    label,
                    LOCUSTFILE,
                    target,
                    Path(tmp),
                    users=users,
                    duration=duration,
                    extra=MODES[mode],
                    env=env,
                    window=(warmup, 1.0),
                )
                if not run.window:
                    sys.exit(f"run {label}: no start time in run.json; see {run.log}")
                run.recorded = run.samples()
                runs.append((mode, run, _in_window(run)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=positive_int, default=40)
    parser.add_argument("--duration", type=positive_int, default=20, help="seconds per run")
    parser.add_argument("--rounds", type=positive_int, default=2)
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds left out at start")
    parser.add_argument("--target-processes", type=positive_int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.duration < args.warmup + 3:
        parser.error("--duration must leave at least 3 s after --warmup")
    console = Console(width=140)
    cores = len(os.sched_getaffinity(0))

    runs = measure(
        args.users, args.duration, args.rounds, args.warmup, args.target_processes, console
    )

    table = Table(
        "run",
        "procs",
        "requests",
        "failures",
        "samples",
        "window rps",
        "Locust rps",
        "gen CPU ms/req",
        "master cores",
        "worker cores",
        "target cores",
        "others' cores",
        title=(
            f"ApiUser throughput: {args.users} users, think time 0, {args.duration} s per run "
            f"(window {args.warmup:g} s .. end-1 s), raw asyncio target x{args.target_processes}"
            f", {cores} cores"
        ),
    )
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for mode, run, counted in runs:
        w = run.window
        span = w["t1"] - w["t0"]
        gen_cpu = w["master_cpu_s"] + w["workers_cpu_s"]
        figures = {
            "rps": counted / span,
            "locust_rps": run.rps,
            "cpu_ms_per_request": 1000 * gen_cpu / max(counted, 1),
            "master_cores": w["master_cpu_s"] / span,
            "worker_cores": w["workers_cpu_s"] / span,
            "target_cores": w["target_cpu_s"] / span,
            "others_cores": max(0.0, w["machine_cpu_s"] - gen_cpu - w["target_cpu_s"]) / span,
            "requests": run.requests,
            "failures": run.failures,
            "samples": run.recorded or 0,
        }
        rows[mode].append(figures)
        exact = run.recorded == run.requests
        table.add_row(
            run.label,
            "2" if MODES[mode] else "1",
            fmt_int(run.requests),
            fmt_int(run.failures),
            f"{run.recorded:,}" if exact else f"[red]{run.recorded:,}",
            f"{figures['rps']:,.0f}",
            f"{run.rps:,.0f}",
            f"{figures['cpu_ms_per_request']:.3f}",
            f"{figures['master_cores']:.2f}",
            f"{figures['worker_cores']:.2f}" if MODES[mode] else "-",
            f"{figures['target_cores']:.2f}",
            f"{figures['others_cores']:.2f}",
        )
    console.print(table)
    if any(run.recorded != run.requests for _, run, _ in runs):
        console.print(
            "[yellow]samples != Locust's count[/yellow]: at the end of a --processes run "
            "Locust's master waits 0.5 s for the workers' final reports (its count misses a "
            "late one) and the recorder needs each worker's final batch; the window figures "
            "end 1 s before the run does and are not affected."
        )

    def mean(mode: str, key: str) -> float:
        return statistics.fmean(f[key] for f in rows[mode])

    one, two = MODES
    ratio = mean(two, "rps") / mean(one, "rps")
    cpu_one, cpu_two = mean(one, "cpu_ms_per_request"), mean(two, "cpu_ms_per_request")
    capacity = 2 * cpu_one / cpu_two
    summary = Table("figure", "1 process", "--processes 2", "ratio", "aim", "verdict")
    summary.add_row(
        "requests/s (steady window, mean of rounds)",
        f"{mean(one, 'rps'):,.0f}",
        f"{mean(two, 'rps'):,.0f}",
        f"{ratio:.2f}x",
        f">= {AIM}x",
        verdict(ratio >= AIM),
    )
    summary.add_row(
        "generator CPU ms per request (master + workers)",
        f"{cpu_one:.3f}",
        f"{cpu_two:.3f}",
        f"{capacity:.2f}x with a core per process",
        f">= {AIM}x",
        verdict(capacity >= AIM),
    )
    console.print(summary)
    console.print(
        f"This machine has {cores} cores. With --processes 2 the master and workers used "
        f"{mean(two, 'master_cores') + mean(two, 'worker_cores'):.2f} cores, the target "
        f"{mean(two, 'target_cores'):.2f}, other processes on the machine "
        f"{mean(two, 'others_cores'):.2f}"
        + (
            ": the raw ratio is capped by the cores left to the generator, not by Locust; "
            "the CPU-per-request ratio is what two processes give with a core each."
            if cores <= 2
            else "."
        )
    )
    write_json(
        args.json,
        {
            "users": args.users,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "target_processes": args.target_processes,
            "cores": cores,
            "rps": {one: mean(one, "rps"), two: mean(two, "rps")},
            "ratio": ratio,
            "cpu_ms_per_request": {one: cpu_one, two: cpu_two},
            "ratio_with_a_core_each": capacity,
            "aim": AIM,
            "runs": [
                {"mode": mode, "window_requests": counted, **run.figures()}
                for mode, run, counted in runs
            ],
        },
    )


if __name__ == "__main__":
    main()
