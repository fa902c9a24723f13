"""Open-model capacity of one generator process, beside the closed model's throughput.

What it measures, against what, and the aim:

* **Closed model**: requests per second of one Locust process running ``FastHttpUser``
  users back to back (``wait_time = constant(0)``, ``--users``, default 20) against a
  trivial loopback endpoint, the recorder on, counted over the run's steady part (the
  recorder's exact samples, ``--warmup`` s after the first request to 1 s before the last).
* **Open model**: the highest constant rate one process sustains with this harness against
  the same endpoint: every scheduled iteration started (none dropped or unfinished) and the
  scheduler lag p99 under :data:`LAG_AIM_MS`. The first trial is at the aim (0.8x the closed
  model's rate); then bisection over ``--trials`` runs in all (default 6) of ``--duration``
  seconds, between 10% and 150% of the closed model's rate.
* Beside it, the highest trial rate at which every iteration started, whatever the lag
  (the rate was delivered, but not necessarily on time).
* **Closed model, paced**: the same ``FastHttpUser`` paced with ``constant_throughput`` (20
  requests/s per user) to the aim's rate: what Locust's own model achieves when it must
  spread requests in time instead of sending them back to back.
* The **CPU microseconds per request** of each (the Locust process tree, psutil, start-up
  included), the figure that depends least on how busy the machine is.

**Aim: the open model sustains at least 0.8x the closed model's requests per second.** The
endpoint is a raw ``asyncio.Protocol`` responder in ``--target-processes`` processes
(``bench/recorder_overhead.py``) on 127.0.0.1; its CPU is printed too, as on a 2-core
machine the target, the generator and everything else share the cores.

    python bench/arrival_capacity.py [--users 20] [--duration 12] [--trials 6]
                                     [--warmup 2] [--target-processes 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._common import fmt_int, positive_int, verdict, write_json
from bench._open_model import Finished, run_locust, write_files
from bench.recorder_overhead import App, loopback_target
from harness.recorder import read_samples

AIM = 0.8
LAG_AIM_MS = 5.0
# In-flight slots for a trial: a millisecond-fast target needs few, but a generator that
# stalls for a moment (another process took the core) must not run out; idle users cost
# only memory, and the most recently idle are reused first. Enough for 250 ms of arrivals.
INFLIGHT_S = 0.25
PACE_PER_USER = 20.0


def steady_rps(run: Finished, warmup: float) -> float:
    """Requests per second between ``warmup`` s after the first request and 1 s before the
    last (exact samples)."""
    start = np.sort(read_samples(run.run_dir).table.column("start_time").to_numpy())
    if len(start) < 2:
        return 0.0
    t0, t1 = start[0] + warmup, start[-1] - 1.0
    n = np.count_nonzero((start >= t0) & (start < t1))
    return float(n / (t1 - t0)) if t1 > t0 else 0.0


def trial(rate: float, work: Path, url: str, duration: float, n: int) -> dict[str, Any]:
    """One open-model run at ``rate``; whether the generator kept up."""
    locustfile, scenario = write_files(work / f"files-{n}", duration, rate)
    inflight = max(50, int(rate * INFLIGHT_S))
    run = run_locust(
        f"open-{n}-{rate:.0f}",
        [locustfile, scenario],
        url,
        work,
        ["--max-inflight", str(inflight), "Probe"],
    )
    health = run.verdict().get("open_model", {})
    outcomes = run.iteration_outcomes()
    scheduled = sum(outcomes.values())
    lag = health.get("lag_p99_ms")
    kept = (
        scheduled > 0
        and outcomes.get("done", 0) == scheduled
        and lag is not None
        and lag < LAG_AIM_MS
    )
    samples = outcomes.get("done", 0)
    return {
        "rate": rate,
        "kept_up": kept,
        "all_started": scheduled > 0 and samples == scheduled,
        "scheduled": scheduled,
        "outcomes": outcomes,
        "lag_p99_ms": lag,
        "cpu_us_per_request": run.cpu_s / samples * 1e6 if samples else None,
        "generator_limited": health.get("generator_limited"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=positive_int, default=20, help="closed-model users")
    parser.add_argument("--duration", type=positive_int, default=12, help="seconds per run")
    parser.add_argument("--trials", type=positive_int, default=6, help="open-model runs")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds left out at start")
    parser.add_argument("--target-processes", type=positive_int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    console = Console(width=170)
    trials: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp,
        loopback_target(App, args.target_processes) as target,
    ):
        work = Path(tmp)
        locustfile, _ = write_files(work / "closed-files", args.duration, 1.0)
        console.log(f"closed model: {args.users} FastHttpUser users back to back")
        target_cpu0 = target.cpu_seconds()
        closed = run_locust(
            "closed",
            [locustfile],
            target.url,
            work,
            ["-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s", "Flood"],
        )
        closed_target_cpu = target.cpu_seconds() - target_cpu0
        closed_rps = steady_rps(closed, args.warmup)
        closed_requests = read_samples(closed.run_dir).table.num_rows
        aim_rate = round(AIM * closed_rps)
        pace_users = max(1, round(aim_rate / PACE_PER_USER))
        console.log(f"closed model, paced: {pace_users} users x {PACE_PER_USER:g}/s")
        paced = run_locust(
            "paced",
            [locustfile],
            target.url,
            work,
            ["-u", str(pace_users), "-r", str(pace_users), "-t", f"{args.duration}s", "Paced"],
            env={"BENCH_PACE": str(PACE_PER_USER)},
        )
        paced_rps = steady_rps(paced, args.warmup)
        paced_requests = read_samples(paced.run_dir).table.num_rows
        lo, hi = 0.1 * closed_rps, 1.5 * closed_rps
        best: dict[str, Any] | None = None
        for n in range(args.trials):
            rate = aim_rate if n == 0 else round((lo + hi) / 2)
            console.log(f"open model trial {n + 1}/{args.trials}: {rate}/s")
            result = trial(float(rate), work, target.url, float(args.duration), n)
            trials.append(result)
            if result["kept_up"]:
                lo = rate
                if best is None or rate > best["rate"]:
                    best = result
            else:
                hi = rate
    closed_cpu_us = closed.cpu_s / closed_requests * 1e6 if closed_requests else float("nan")
    table = Table(
        "rate/s",
        "kept up",
        "scheduled",
        "dropped",
        "lag p99 ms",
        "CPU us/request",
        title=f"Open-model trials ({args.duration} s each): kept up = every iteration started "
        f"and scheduler lag p99 < {LAG_AIM_MS:g} ms",
    )
    for t in trials:
        table.add_row(
            fmt_int(t["rate"]),
            verdict(bool(t["kept_up"])),
            fmt_int(t["scheduled"]),
            fmt_int(t["outcomes"].get("dropped", 0)),
            "-" if t["lag_p99_ms"] is None else f"{t['lag_p99_ms']:.2f}",
            "-" if t["cpu_us_per_request"] is None else f"{t['cpu_us_per_request']:.0f}",
        )
    console.print(table)
    sustained = float(best["rate"]) if best else 0.0
    delivered = max((float(t["rate"]) for t in trials if t["all_started"]), default=0.0)
    ratio = sustained / closed_rps if closed_rps else 0.0
    summary = Table(
        "model",
        "requests/s",
        "CPU us/request",
        title="One generator process against a trivial loopback endpoint",
    )
    summary.add_row(
        f"closed: FastHttpUser x {args.users}, no wait (steady part)",
        fmt_int(closed_rps),
        f"{closed_cpu_us:.0f}",
    )
    summary.add_row(
        f"closed: paced to {fmt_int(pace_users * PACE_PER_USER)}/s "
        f"({pace_users} users x {PACE_PER_USER:g}/s)",
        fmt_int(paced_rps),
        f"{paced.cpu_s / paced_requests * 1e6:.0f}" if paced_requests else "-",
    )
    best_cpu = best["cpu_us_per_request"] if best else None
    summary.add_row(
        "open: highest rate kept up (lag p99 < 5 ms, no drops)",
        fmt_int(sustained),
        "-" if best_cpu is None else f"{best_cpu:.0f}",
    )
    summary.add_row(
        "open: highest trial rate with every iteration started (any lag)",
        fmt_int(delivered),
        "-",
    )
    console.print(summary)
    console.print(
        f"open / closed = {ratio:.2f} (aim >= {AIM}): {verdict(ratio >= AIM)}; target CPU "
        f"during the closed run {closed_target_cpu:.1f} s of {closed.wall_s:.0f} s"
    )
    write_json(
        args.json,
        {
            "closed_rps": closed_rps,
            "closed_cpu_us_per_request": closed_cpu_us,
            "paced_target_rps": pace_users * PACE_PER_USER,
            "paced_rps": paced_rps,
            "open_sustained_rate": sustained,
            "open_delivered_rate": delivered,
            "ratio": ratio,
            "aim": AIM,
            "trials": trials,
        },
    )


if __name__ == "__main__":
    main()
