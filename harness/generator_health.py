"""Open-model runs: target against achieved rate, dropped iterations, and whether the load
generator (not the target) was the bottleneck.

An open-model run logs every scheduled iteration (``iterations/``, see
:data:`harness.recorder.ITERATION_SCHEMA`) with how late it started; each Locust process also
records its CPU once a second. From those:

* per stage, the **target rate** (iterations the schedule planned, per second of the stage)
  beside the **achieved rate** (iterations that started), with dropped and unfinished counts,
  so no report shows a rate that was not reached;
* the **scheduler lag** (actual start minus intended start of every iteration that found a
  free slot) and the processes' **CPU**: when the lag's p99 passes
  :data:`GENERATOR_LAG_P99_MS`, or a process was at or above :data:`CPU_LIMIT_PERCENT` for
  :data:`CPU_BUSY_SHARE` of its readings, the run is **generator-limited**: its latencies
  describe the generator's own delays, and the run exits with
  :data:`harness.errors.EXIT_GENERATOR_LIMITED`;
* a verdict row for **dropped iterations** (every in-flight slot was busy at the intended
  start), which fails when any iteration was dropped: a dropped iteration is a request a
  user would have sent and waited for, so latencies that leave it out are too low.

No Locust here: the hooks judge a run with it, and ``harness report`` reads it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from harness.arrivals import planned_count
from harness.recorder import (
    ITERATION_DONE,
    ITERATION_DROPPED,
    ITERATION_UNFINISHED,
    read_iterations,
)
from harness.scenario import Scenario, parse_duration
from harness.sla import Outcome

# A scheduler that keeps time starts iterations within a millisecond or two of their
# intended start (gevent's timers have millisecond resolution); 10 ms late at p99 means the
# generator itself sets the pace, and latencies from the intended start carry its delays.
GENERATOR_LAG_P99_MS = 10.0
# Locust's own CPU warning threshold (locust.runners.CPU_WARNING_THRESHOLD).
CPU_LIMIT_PERCENT = 90.0
# Readings at or above the limit that make a process "busy": a quarter of the run, at least
# this many readings (a single busy second at start-up is not a saturated generator).
CPU_BUSY_SHARE = 0.25
CPU_BUSY_MIN_READINGS = 3
DROPPED_SLA = "no dropped iterations"


def planned(scenario: Scenario, options: Any) -> Scenario:
    """The scenario as this run plays it: ``--time-scale`` / ``--users-scale``, then
    ``--rate`` / ``--duration`` (the options Locust parsed; any may be missing)."""
    out = scenario.scaled(
        getattr(options, "time_scale", None) or 1.0, getattr(options, "users_scale", None) or 1.0
    )
    rate = getattr(options, "rate", None)
    duration = getattr(options, "duration", None)
    seconds = None
    if duration not in (None, ""):
        text = str(duration).strip()
        # Plain seconds ("90", "6.0") or with units ("90s", "10m").
        number = text.replace(".", "", 1).isdigit()
        seconds = parse_duration(float(text) if number else text, "--duration")
    if rate is None and seconds is None:
        return out
    return out.overridden(rate=rate, duration=seconds)


def _percentile(values: np.ndarray[Any, np.dtype[np.float64]], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


@dataclass
class StageHealth:
    """One stage of an open-model run: what was planned and what happened."""

    stage: str
    seconds: float
    target_rate: float  # planned iterations / seconds
    planned: float
    scheduled: int  # iterations in the log (started + dropped)
    started: int
    dropped: int
    unfinished: int
    achieved_rate: float  # started / seconds
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None


@dataclass
class CpuHealth:
    """One Locust process's CPU over the run (one reading a second, in percent of a core)."""

    process: str
    readings: int
    mean: float | None
    max: float | None
    busy_share: float  # share of readings at or above CPU_LIMIT_PERCENT


@dataclass
class GeneratorHealth:
    """Everything the verdict and the report say about an open-model run's generator."""

    arrivals: str
    max_inflight: int | None
    processes: int | None
    stages: list[StageHealth]
    cpu: list[CpuHealth]
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    scheduled: int
    started: int
    dropped: int
    unfinished: int
    generator_limited: bool
    reasons: list[str] = field(default_factory=list)
    measured: str = (
        "every scheduled iteration (iterations/); lag = actual start - intended start of "
        "iterations that found a free slot; CPU of each Locust process once a second"
    )

    def dropped_outcome(self) -> Outcome:
        """The verdict row for dropped iterations (fails when any was dropped)."""
        share = self.dropped / self.scheduled if self.scheduled else 0.0
        stages = [f"{s.stage} {s.dropped:,}" for s in self.stages if s.dropped]
        note = ""
        if self.dropped:
            note = (
                f"{self.dropped:,} of {self.scheduled:,} iterations dropped at max-inflight "
                f"{self.max_inflight} ({', '.join(stages)}): raise --max-inflight, or the "
                "target cannot keep up with this rate"
            )
        return Outcome(
            DROPPED_SLA,
            "all",
            "whole run",
            "errors",
            share,
            0.0,
            "<=",
            self.dropped == 0,
            self.scheduled,
            note,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu(process: str, readings: list[tuple[float, float]]) -> CpuHealth:
    values = np.array([p for _, p in readings], dtype=np.float64)
    busy = float((values >= CPU_LIMIT_PERCENT).mean()) if len(values) else 0.0
    return CpuHealth(
        process,
        len(values),
        float(values.mean()) if len(values) else None,
        float(values.max()) if len(values) else None,
        busy,
    )


def summarize(
    iterations: pa.Table,
    plan: Scenario,
    facts: Mapping[str, Any] | None,
    cpu: Mapping[str, list[tuple[float, float]]],
) -> GeneratorHealth:
    """Judge an open-model run from its iteration log, its plan and its CPU readings."""
    facts = facts or {}
    mode = str(facts.get("arrivals") or plan.arrivals)
    plans = planned_count(plan.rate_stages(), mode)
    stage_col = np.array(iterations.column("stage").to_pylist(), dtype=object)
    outcome = np.array(iterations.column("outcome").to_pylist(), dtype=object)
    lag = iterations.column("lag_ms").to_numpy(zero_copy_only=False).astype(np.float64)
    started_mask = (outcome == ITERATION_DONE) | (outcome == ITERATION_UNFINISHED)
    stages: list[StageHealth] = []
    for st in plan.stages:
        mask = stage_col == st.name
        started = int((mask & started_mask).sum())
        lags = lag[mask & started_mask]
        lags = lags[~np.isnan(lags)]
        seconds = st.duration
        stages.append(
            StageHealth(
                stage=st.name,
                seconds=seconds,
                target_rate=plans.get(st.name, 0.0) / seconds if seconds > 0 else 0.0,
                planned=plans.get(st.name, 0.0),
                scheduled=int(mask.sum()),
                started=started,
                dropped=int((mask & (outcome == ITERATION_DROPPED)).sum()),
                unfinished=int((mask & (outcome == ITERATION_UNFINISHED)).sum()),
                achieved_rate=started / seconds if seconds > 0 else 0.0,
                lag_p50_ms=_percentile(lags, 50),
                lag_p99_ms=_percentile(lags, 99),
                lag_max_ms=float(lags.max()) if len(lags) else None,
            )
        )
    all_lags = lag[started_mask]
    all_lags = all_lags[~np.isnan(all_lags)]
    cpus = [_cpu(p, list(r)) for p, r in sorted(cpu.items())]
    reasons: list[str] = []
    lag_p99 = _percentile(all_lags, 99)
    if lag_p99 is not None and lag_p99 > GENERATOR_LAG_P99_MS:
        reasons.append(
            f"scheduler lag p99 {lag_p99:,.1f} ms > {GENERATOR_LAG_P99_MS:g} ms: iterations "
            "started late because the generator was busy"
        )
    for c in cpus:
        busy_readings = round(c.busy_share * c.readings)
        if c.busy_share >= CPU_BUSY_SHARE and busy_readings >= CPU_BUSY_MIN_READINGS:
            reasons.append(
                f"process {c.process} at >= {CPU_LIMIT_PERCENT:g}% CPU for "
                f"{c.busy_share:.0%} of the run"
            )
    max_inflight = facts.get("max_inflight")
    processes = facts.get("processes")
    return GeneratorHealth(
        arrivals=mode,
        max_inflight=int(max_inflight) if max_inflight is not None else None,
        processes=int(processes) if processes is not None else None,
        stages=stages,
        cpu=cpus,
        lag_p50_ms=_percentile(all_lags, 50),
        lag_p99_ms=lag_p99,
        lag_max_ms=float(all_lags.max()) if len(all_lags) else None,
        scheduled=iterations.num_rows,
        started=int(started_mask.sum()),
        dropped=int((outcome == ITERATION_DROPPED).sum()),
        unfinished=int((outcome == ITERATION_UNFINISHED).sum()),
        generator_limited=bool(reasons),
        reasons=reasons,
    )


def judge_run(
    run_dir: Path,
    plan: Scenario | None,
    facts: Mapping[str, Any] | None,
    cpu: Mapping[str, list[tuple[float, float]]],
) -> GeneratorHealth | None:
    """The generator's health for a run that just ended; None unless it was open-model."""
    if plan is None or not plan.open_model:
        return None
    result = read_iterations(run_dir)
    if result is None:
        from harness.recorder import ITERATION_SCHEMA

        table = ITERATION_SCHEMA.empty_table()
    else:
        table = result.table
    return summarize(table, plan, facts, cpu)


def plan_from_meta(meta: Mapping[str, Any], source: Path) -> Scenario | None:
    """Rebuild an open-model run's plan from run.json (``planned_stages``, ``open_model``)."""
    from harness.scenario import Stage

    stages = meta.get("planned_stages") or []
    if not stages or stages[0].get("rate") is None:
        return None
    facts = meta.get("open_model") or {}
    return Scenario(
        name=str((meta.get("scenario") or {}).get("name", source.name)),
        source=source,
        stages=tuple(
            Stage(
                str(s["name"]),
                float(s["duration"]),
                0,
                1.0,
                float(s["rate"]),
                float(s.get("ramp") or 0.0),
            )
            for s in stages
        ),
        arrivals=str(facts.get("arrivals") or "even"),
    )
