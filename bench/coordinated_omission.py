"""Coordinated omission: the open model against Locust's closed model and the exact truth,
side by side, on a target that stalls.

What it measures, against what, and the aim:

* The target answers every request about 1 ms after it arrives, except that it holds
  everything for ``--stall`` seconds (default 2) out of every ``--period`` (default 10): a
  request that would finish inside a stall finishes when the stall ends. It is a raw
  ``asyncio.Protocol`` responder in its own process (``bench/recorder_overhead.py``), on
  127.0.0.1.
* **(a) open model**: this harness at ``--rate`` (default 100) iterations per second for
  ``--duration`` seconds (default 30; at least 30 so three stalls fall inside), evenly
  spaced, each a ``GET /``, latency from each request's intended start (the default of every
  harness report). Its service time (from the actual send) is shown beside it.
* **(b) closed model**: plain Locust users paced to the same rate (``constant_throughput``):
  ``--rate`` users at 1 request/s each, and a tenth as many at 10/s each, for the same time,
  recorded by the same recorder (exact latencies, not Locust's buckets).
* **(c) truth**, computed exactly from the schedule: the same arrivals (intended at
  ``t_k = origin + (k + 1/2) / rate``), each taking the target's 1 ms, or until the end of
  the stall it would finish in.

p50, p90, p95, p99 (numpy's linear definition) and the mean of each, side by side.
**Aim: (a) within 5% of (c) on p90, p95, p99 and the mean**; how far (b) is is printed too.

With ``--processes N`` the open model runs on N Locust worker processes (the rate split
between them); the closed model always runs in one process, as Locust users run it.

    python bench/coordinated_omission.py [--rate 100] [--duration 30] [--stall 2]
                                         [--period 10] [--processes 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._common import positive_int, verdict, write_json
from bench._open_model import FloatArray, percentiles, run_locust, write_files
from bench.recorder_overhead import App, Reply, free_port, loopback_target

AIM = 0.05
BASE_S = 0.001  # the target's answer time outside stalls
AIMED = ("p90", "p95", "p99", "mean")
METRICS = ("p50", "p90", "p95", "p99", "mean")


class StallingApp(App):
    """Answers ``BASE_S`` after a request arrives, or when the stall it would finish in ends."""

    def __init__(self, first: float, period: float, stall: float) -> None:
        self.first, self.period, self.stall = first, period, stall

    def handle(self, method: bytes, target: bytes, headers: Mapping[bytes, bytes]) -> Reply:
        now = time.time()
        done = now + BASE_S
        end = stall_end(done, self.first, self.period, self.stall)
        return (end if end is not None else done) - now, self.answer


def stall_end(t: float, first: float, period: float, stall: float) -> float | None:
    """The end of the stall holding time ``t``, or None outside every stall."""
    if t < first:
        return None
    start = first + math.floor((t - first) / period) * period
    return start + stall if t < start + stall else None


def truth(
    origin: float, rate: float, duration: float, first: float, period: float, stall: float
) -> FloatArray:
    """Exact latencies (ms) of the schedule's arrivals against the stalling target."""
    count = round(rate * duration)
    out = np.empty(count)
    for k in range(count):
        t = origin + (k + 0.5) / rate
        end = stall_end(t + BASE_S, first, period, stall)
        out[k] = ((end if end is not None else t + BASE_S) - t) * 1000.0
    return out


def processes_args(n: int) -> list[str]:
    """``--processes n`` on a free master port (Locust's default may be taken)."""
    if n < 2:
        return []
    port = str(free_port())
    return ["--processes", str(n), "--master-bind-port", port, "--master-port", port]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=positive_int, default=100, help="requests per second")
    parser.add_argument("--duration", type=positive_int, default=30, help="seconds per run")
    parser.add_argument("--stall", type=float, default=2.0, help="seconds the target holds")
    parser.add_argument("--period", type=float, default=10.0, help="seconds between stalls")
    parser.add_argument("--processes", type=positive_int, default=1, help="for (a)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    if args.duration < 30:
        sys.exit("--duration must be at least 30 s (three stalls inside the run)")
    console = Console(width=170)
    rate, duration = float(args.rate), float(args.duration)
    first = time.time() + 1.0
    app = functools.partial(StallingApp, first, args.period, args.stall)
    # Enough slots for every request a stall holds, and then some: nothing is dropped.
    inflight = math.ceil(rate * (args.stall + 1.0)) + 50
    pace_users = [(args.rate, 1.0), (max(1, args.rate // 10), 10.0)]
    with (
        tempfile.TemporaryDirectory(prefix="bench-co-") as tmp,
        loopback_target(app) as target,
    ):
        work = Path(tmp)
        locustfile, scenario = write_files(work, duration, rate)
        console.log(
            f"(a) open model: {rate:g}/s for {duration:g} s, max in flight {inflight}, "
            f"{args.processes} process(es)"
        )
        open_run = run_locust(
            "open",
            [locustfile, scenario],
            target.url,
            work,
            ["--max-inflight", str(inflight), *processes_args(args.processes), "Probe"],
        )
        closed_runs = []
        for users, pace in pace_users:
            console.log(f"(b) closed model: {users} users x {pace:g}/s for {duration:g} s")
            closed_runs.append(
                (
                    f"(b) closed, {users} users x {pace:g}/s",
                    run_locust(
                        f"closed-{users}",
                        [locustfile],
                        target.url,
                        work,
                        ["-u", str(users), "-r", str(users), "-t", f"{duration:g}s", "Paced"],
                        env={"BENCH_PACE": str(pace)},
                    ),
                )
            )
        origin = float(open_run.meta()["open_model"]["origin"])
        columns: dict[str, dict[str, float]] = {
            "(a) open: response": percentiles(open_run.latencies()),
            "(a) open: service": percentiles(open_run.service_times()),
        }
        counts = {k: len(open_run.latencies()) for k in columns}
        for label, run in closed_runs:
            columns[label] = percentiles(run.latencies())
            counts[label] = len(run.latencies())
        exact = truth(origin, rate, duration, first, args.period, args.stall)
        columns["(c) truth"] = percentiles(exact)
        counts["(c) truth"] = len(exact)
        outcomes = open_run.iteration_outcomes()
        health = open_run.verdict().get("open_model", {})

    truth_col = columns["(c) truth"]
    table = Table(
        "metric",
        *columns,
        "(a) vs (c)",
        *(f"{label.split(',')[1].strip()} vs (c)" for label, _ in closed_runs),
        title=f"Latency (ms) at {rate:g} requests/s, target stalls {args.stall:g} s of every "
        f"{args.period:g} s ({duration:g} s per run; numpy linear percentiles)",
    )
    ok = True
    for metric in METRICS:
        a = columns["(a) open: response"][metric]
        c = truth_col[metric]
        gap = a / c - 1.0
        within = abs(gap) <= AIM
        if metric in AIMED:
            ok = ok and within
        cells = [f"{columns[k][metric]:,.1f}" for k in columns]
        closed_vs = [f"{columns[label][metric] / c:.3f}x" for label, _ in closed_runs]
        mark = (" " + verdict(within)) if metric in AIMED else ""
        table.add_row(metric, *cells, f"{gap:+.1%}{mark}", *closed_vs)
    table.add_row("requests", *(f"{counts.get(k, 0):,}" for k in columns), "", "", "")
    console.print(table)
    console.print(
        f"(a) iterations: {outcomes}; scheduler lag p99 "
        f"{health.get('lag_p99_ms') or float('nan'):.2f} ms; generator-limited: "
        f"{health.get('generator_limited')}"
    )
    console.print(
        f"Aim: (a) within {AIM:.0%} of (c) on {', '.join(AIMED)}: {verdict(ok)}. "
        "(b) is the closed model Locust users write for the same rate: its users wait out "
        "a stall instead of sending, so the stall's requests are never timed."
    )
    write_json(
        args.json,
        {
            "rate": rate,
            "duration_s": duration,
            "stall_s": args.stall,
            "period_s": args.period,
            "figures": columns,
            "counts": counts,
            "open_iterations": outcomes,
            "aim_met": ok,
            "open_processes": args.processes,
        },
    )


if __name__ == "__main__":
    main()
