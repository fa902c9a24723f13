"""Percentile accuracy: p50/p95/p99/p99.9 from the recorder and from Locust's own statistics,
against a target whose latency distribution is known exactly.

What it measures, against what, and the target:

* The target (a raw ``asyncio.Protocol`` server from ``bench/recorder_overhead.py``, in its
  own process, on 127.0.0.1) answers each request after sleeping a time drawn from a seeded
  lognormal distribution (median ``--median-ms`` 40, ``--sigma`` 0.8: a heavy tail, clipped
  to ``[--min-ms, --max-ms]``). Sleeps are timers on one event loop, so concurrent requests
  do not queue. It logs every drawn sleep with the request id the client sent (echoed in a
  header), and how long it actually held the request (``served``: the sleep plus the timer's
  lateness).
* A locustfile (``FastHttpUser``, ``--users`` 10, ``constant(0)``, importing
  ``harness.locust_hooks``) runs for ``--duration`` 30 s. Its request listener notes each
  request's ``start_time`` (the same float the recorder stores) with the echoed id, so every
  recorded sample is paired with its own drawn sleep.
* Compared, on the same requests: **(a) the true values**, the drawn sleeps of the requests
  the run recorded (numpy percentile, linear, the harness's definition), with the analytical
  percentiles of the distribution beside them; **(b) the recorder** (``read_samples`` ->
  ``latency_ms``); **(c) Locust's** ``--csv`` ``_stats.csv`` Aggregated percentiles (response
  times rounded into buckets, then truncated to whole ms).
* **Target: the recorder's error is the network/loopback overhead only**: each percentile's
  error lies within the p1..p99 range of the per-request overhead ``recorder - drawn``
  (whose median is split into the server's timer lateness and the client + loopback), about
  its median. Locust's bucket error is shown beside it.

    python bench/percentile_accuracy.py [--users 10] [--duration 30] [--median-ms 40]
                                        [--sigma 0.8] [--seed 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._common import positive_int, verdict, write_json
from bench.recorder_overhead import (
    App,
    LocustRun,
    Reply,
    http_response,
    loopback_target,
    run_locust,
    write_locustfile,
)
from harness.recorder import read_samples

PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p99.9": 99.9}
LOCUST_COLUMNS = {"p50": "50%", "p95": "95%", "p99": "99%", "p99.9": "99.9%"}
# The recorder passes when every percentile's error lies within this central range of the
# per-request overhead (recorder - drawn): the error is then the overhead and nothing else.
OVERHEAD_RANGE = (1.0, 99.0)

LOCUSTFILE = """
    import itertools
    import os

    import harness.locust_hooks  # noqa: F401  (the recorder under test)
    from locust import FastHttpUser, constant, events, task

    _ids = itertools.count()
    _pairs = open(os.environ["BENCH_PAIRS"], "w")


    @events.request.add_listener
    def _pair(start_time=None, response=None, **_kw):
        rid = response.headers.get("X-Req-Id") if response is not None else None
        _pairs.write(f"{start_time!r},{rid}\\n")


    @events.quitting.add_listener
    def _close(**_kw):
        _pairs.close()


    class Waiter(FastHttpUser):
        wait_time = constant(0)

        @task
        def sleepy(self) -> None:
            self.client.get("/", headers={"X-Req-Id": str(next(_ids))})
"""


class SleepyApp(App):
    """Answers after a seeded lognormal sleep; logs ``id,drawn_ms,served_ms`` per request."""

    def __init__(
        self, median_ms: float, sigma: float, low_ms: float, high_ms: float, seed: int, log: str
    ) -> None:
        self.median_ms, self.sigma = median_ms, sigma
        self.low_ms, self.high_ms = low_ms, high_ms
        self.rng = np.random.default_rng(seed)
        self.log: TextIO = Path(log).open("w")  # noqa: SIM115  (closed in close())

    def handle(self, method: bytes, target: bytes, headers: Mapping[bytes, bytes]) -> Reply:
        drawn = self.median_ms * float(np.exp(self.sigma * self.rng.standard_normal()))
        drawn = min(max(drawn, self.low_ms), self.high_ms)
        rid = headers.get(b"x-req-id", b"-").decode()
        received = time.perf_counter()

        def answer() -> bytes:
            served = (time.perf_counter() - received) * 1000.0
            self.log.write(f"{rid},{drawn!r},{served!r}\n")
            return http_response(200, b"{}", [("X-Req-Id", rid)])

        return drawn / 1000.0, answer

    def close(self) -> None:
        self.log.close()


def analytical(args: argparse.Namespace) -> dict[str, float]:
    """Percentiles of the clipped lognormal itself."""
    normal = statistics.NormalDist()
    return {
        k: min(
            max(args.median_ms * float(np.exp(args.sigma * normal.inv_cdf(q / 100))), args.min_ms),
            args.max_ms,
        )
        for k, q in PERCENTILES.items()
    }


def pair(run: LocustRun, pairs: Path, served_log: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Each recorded sample with its own drawn sleep and server-side time."""
    by_start: dict[float, str] = {}
    duplicates: set[float] = set()
    for line in pairs.read_text().splitlines():
        start, _, rid = line.partition(",")
        key = float(start)
        if key in by_start:
            duplicates.add(key)
        by_start[key] = rid
    server: dict[str, tuple[float, float]] = {}
    for line in served_log.read_text().splitlines():
        rid, drawn, served = line.split(",")
        server[rid] = (float(drawn), float(served))
    table = read_samples(run.run_dir).table
    starts = table.column("start_time").to_pylist()
    latency = table.column("latency_ms").to_pylist()
    rec, drawn_ms, served_ms = [], [], []
    for start, lat in zip(starts, latency, strict=True):
        found = by_start.get(start) if start not in duplicates else None
        if found is not None and found in server:
            rec.append(lat)
            drawn_ms.append(server[found][0])
            served_ms.append(server[found][1])
    return {
        "recorder": np.asarray(rec),
        "drawn": np.asarray(drawn_ms),
        "served": np.asarray(served_ms),
        "all_recorded": np.asarray(latency),
        "all_drawn": np.asarray([d for d, _ in server.values()]),
    }


def percentiles(values: np.ndarray[Any, Any]) -> dict[str, float]:
    return {k: float(np.percentile(values, q)) for k, q in PERCENTILES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=positive_int, default=10)
    parser.add_argument("--duration", type=positive_int, default=30, help="seconds")
    parser.add_argument("--median-ms", type=float, default=40.0)
    parser.add_argument("--sigma", type=float, default=0.8, help="lognormal shape (tail)")
    parser.add_argument("--min-ms", type=float, default=1.0)
    parser.add_argument("--max-ms", type=float, default=2000.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    console = Console(width=140)

    with tempfile.TemporaryDirectory(prefix="bench-percentiles-") as tmp:
        work = Path(tmp)
        served_log, pairs = work / "served.csv", work / "pairs.csv"
        factory: Callable[[], App] = functools.partial(
            SleepyApp,
            args.median_ms,
            args.sigma,
            args.min_ms,
            args.max_ms,
            args.seed,
            str(served_log),
        )
        locustfile = write_locustfile(work, LOCUSTFILE)
        with loopback_target(factory) as target:
            console.log(f"{args.users} users for {args.duration} s against the sleeping target")
            run = run_locust(
                "run",
                locustfile,
                target,
                work,
                users=args.users,
                duration=args.duration,
                env={"BENCH_PAIRS": str(pairs)},
            )
        data = pair(run, pairs, served_log)

    recorded = len(data["all_recorded"])
    matched = len(data["recorder"])
    if matched == 0:
        sys.exit(f"no sample could be paired with a drawn sleep ({recorded} recorded)")
    truth = percentiles(data["drawn"])
    rows: dict[str, dict[str, float]] = {
        "analytical (the distribution itself)": analytical(args),
        "(a) true: drawn sleeps of these requests": truth,
        "served: the server's own time (sleep + timer lateness)": percentiles(data["served"]),
        "(b) recorder samples": percentiles(data["recorder"]),
        "(c) Locust --csv (Aggregated)": {
            k: float(run.csv_row[c]) for k, c in LOCUST_COLUMNS.items()
        },
    }
    overhead = data["recorder"] - data["drawn"]
    offset = float(np.median(overhead))
    low, high = (float(np.percentile(overhead, q)) for q in OVERHEAD_RANGE)
    lateness = float(np.median(data["served"] - data["drawn"]))
    network = float(np.median(data["recorder"] - data["served"]))
    lateness_p99 = float(np.percentile(data["served"] - data["drawn"], 99))
    network_p99 = float(np.percentile(data["recorder"] - data["served"], 99))

    table = Table(
        "source",
        *(f"{k} ms" for k in PERCENTILES),
        title=(
            f"latency percentiles: lognormal median {args.median_ms:g} ms, sigma {args.sigma:g}, "
            f"clipped [{args.min_ms:g}, {args.max_ms:g}] ms; {matched:,} requests, "
            f"{args.users} users, {args.duration} s"
        ),
    )
    for name, values in rows.items():
        table.add_row(name, *(f"{values[k]:.2f}" for k in PERCENTILES))
    for label, key in (
        ("(b) recorder", "(b) recorder samples"),
        ("(c) Locust", "(c) Locust --csv (Aggregated)"),
    ):
        table.add_row(
            f"{label} error vs (a)",
            *(
                f"{rows[key][k] - truth[k]:+.2f} ({(rows[key][k] - truth[k]) / truth[k]:+.1%})"
                for k in PERCENTILES
            ),
        )
    table.add_row(
        "(b) recorder error minus the offset",
        *(f"{rows['(b) recorder samples'][k] - truth[k] - offset:+.2f}" for k in PERCENTILES),
    )
    console.print(table)

    errors = {k: rows["(b) recorder samples"][k] - truth[k] for k in PERCENTILES}
    within = all(low <= e <= high for e in errors.values())
    spread = max(abs(e - offset) for e in errors.values())
    locust_worst = max(
        abs(rows["(c) Locust --csv (Aggregated)"][k] - truth[k]) for k in PERCENTILES
    )
    summary = Table("figure", "value", "target", "verdict")
    summary.add_row(
        "per-request overhead, recorder - drawn",
        f"median {offset:+.3f} ms; p{OVERHEAD_RANGE[0]:g} {low:+.3f}, "
        f"p{OVERHEAD_RANGE[1]:g} {high:+.3f}",
        "-",
        "-",
    )
    summary.add_row(
        "  of which: server timer lateness (served - drawn)",
        f"median {lateness:+.3f} ms, p99 {lateness_p99:+.3f}",
        "-",
        "-",
    )
    summary.add_row(
        "  of which: client + loopback (recorder - served)",
        f"median {network:+.3f} ms, p99 {network_p99:+.3f}",
        "-",
        "-",
    )
    summary.add_row(
        "recorder: percentile errors vs (a)",
        f"{min(errors.values()):+.3f} .. {max(errors.values()):+.3f} ms "
        f"({spread:.3f} ms at most from the median overhead)",
        f"within the overhead's p{OVERHEAD_RANGE[0]:g}..p{OVERHEAD_RANGE[1]:g}: network only",
        verdict(within),
    )
    summary.add_row(
        "Locust --csv: worst percentile error (buckets, rank rule)",
        f"{locust_worst:.2f} ms",
        "-",
        "-",
    )
    summary.add_row(
        "requests: recorded / Locust / paired / served by the target",
        f"{recorded:,} / {run.requests:,} / {matched:,} / {len(data['all_drawn']):,}",
        "recorded = Locust = paired",
        verdict(recorded == run.requests == matched),
    )
    console.print(summary)
    console.print(
        "Locust's CSV percentiles come from response times rounded to 1 ms under 100 ms, to "
        "10 ms under 1 s and to 100 ms above, then truncated to whole ms; the recorder keeps "
        "each latency as a float. Requests still in flight when the run stopped were served "
        "but never recorded, by either."
    )
    write_json(
        args.json,
        {
            "distribution": {
                "kind": "lognormal",
                "median_ms": args.median_ms,
                "sigma": args.sigma,
                "clip_ms": [args.min_ms, args.max_ms],
                "seed": args.seed,
            },
            "users": args.users,
            "duration_s": args.duration,
            "requests": {
                "recorded": recorded,
                "locust": run.requests,
                "paired": matched,
                "served": len(data["all_drawn"]),
            },
            "percentiles_ms": rows,
            "overhead_ms": {
                "median": offset,
                f"p{OVERHEAD_RANGE[0]:g}": low,
                f"p{OVERHEAD_RANGE[1]:g}": high,
                "timer_lateness": lateness,
                "timer_lateness_p99": lateness_p99,
                "network": network,
                "network_p99": network_p99,
            },
            "recorder_errors_ms": errors,
            "recorder_within_overhead": within,
            "recorder_error_beyond_median_overhead_ms": spread,
            "locust_worst_error_ms": locust_worst,
        },
    )


if __name__ == "__main__":
    main()
