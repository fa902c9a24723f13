"""The report's open-model section: two latencies per endpoint and stage, target against
achieved rate, dropped iterations and the generator's health.

For a sample of an open-model run (``intended_start`` set), ``latency_ms`` is the **response
time**, from when the request was meant to be sent: what a user waits, queueing included.
It is the latency every table, SLA and chart of the report uses. The **service time** runs
from the actual send: ``latency_ms - 1000 * (start_time - intended_start)``. They differ by
how late the generator started the iteration; where their p99s differ by more than
:data:`GAP_FLAG` (and :data:`GAP_FLAG_MIN_MS`) the report flags the row: the server, or the
generator, fell behind there.

A closed-model run gets one line instead (:func:`closed_model_note`): its latencies leave
out the requests its users never sent while they waited, so a stall is understated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.load import Run
from harness.generator_health import GeneratorHealth, plan_from_meta, summarize
from harness.recorder import ITERATION_SCHEMA, read_iterations

# Response and service time p99s further apart than this share of the service p99 are
# flagged: the server, or the generator, fell behind there ...
GAP_FLAG = 0.10
# ... unless the gap is below the scheduler's own resolution (gevent's timers wake to the
# millisecond), which a 1 ms service time would otherwise turn into a +50% "finding".
GAP_FLAG_MIN_MS = 1.0
TIMES = ("p50", "p95", "p99")


@dataclass
class OpenModelFigures:
    """What the report shows about an open-model run."""

    health: GeneratorHealth | None
    endpoints: pd.DataFrame  # endpoint, count, response_*, service_*, gap_p99, flagged
    cells: pd.DataFrame  # stage, endpoint, ... (the same columns)

    @property
    def flagged(self) -> int:
        return int(self.cells["flagged"].sum()) if len(self.cells) else 0


def _times(samples: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Response and service time percentiles (numpy's linear definition) per group."""
    rows: list[dict[str, Any]] = []
    for key, group in samples.groupby(keys, sort=True, observed=True):
        values = key if isinstance(key, tuple) else (key,)
        response = group["latency_ms"].to_numpy(dtype=np.float64)
        service = group["service_ms"].to_numpy(dtype=np.float64)
        row: dict[str, Any] = dict(zip(keys, map(str, values), strict=True))
        row["count"] = len(group)
        for q in TIMES:
            row[f"response_{q}"] = float(np.percentile(response, float(q[1:])))
            row[f"service_{q}"] = float(np.percentile(service, float(q[1:])))
        base = row["service_p99"]
        gap = (row["response_p99"] - base) / base if base > 0 else 0.0
        row["gap_p99"] = gap
        row["flagged"] = bool(gap > GAP_FLAG and row["response_p99"] - base > GAP_FLAG_MIN_MS)
        rows.append(row)
    columns = [*keys, "count", *(f"{k}_{q}" for k in ("response", "service") for q in TIMES)]
    return pd.DataFrame(rows, columns=[*columns, "gap_p99", "flagged"])


def service_ms(samples: pd.DataFrame) -> pd.Series:
    """Each open-model sample's service time (from the actual send), in ms."""
    return samples["latency_ms"] - (samples["start_time"] - samples["intended_start"]) * 1000.0


def open_model_figures(run: Run) -> OpenModelFigures | None:
    """The open-model figures of ``run``; None for a closed-model (or approximate) run."""
    if run.approximate or "intended_start" not in run.samples:
        return None
    samples = run.samples[run.samples["intended_start"].notna()]
    plan = plan_from_meta(run.meta, run.path)
    if samples.empty and plan is None:
        return None
    samples = samples.assign(service_ms=service_ms(samples))
    health = None
    if plan is not None:
        result = read_iterations(run.path)
        table = result.table if result is not None else ITERATION_SCHEMA.empty_table()
        facts = run.meta.get("open_model") or {}
        cpu = {
            str(process): [(float(t), float(pct)) for t, pct in readings]
            for process, readings in (facts.get("cpu") or {}).items()
        }
        health = summarize(table, plan, facts, cpu)
        if result is not None:
            run.warnings.extend(result.warnings)
    return OpenModelFigures(
        health=health,
        endpoints=_times(samples, ["endpoint"]),
        cells=_times(samples, ["stage", "endpoint"]),
    )


def closed_model_note(run: Run, rps: float | None) -> str:
    """The one line a closed-model report carries about latency under stalls."""
    scenario = run.meta.get("scenario")
    name = scenario.get("name") if isinstance(scenario, dict) else None
    rate = f"{rps:.0f}" if rps and rps >= 1 else "R"
    return (
        f"Closed model: each user waits for its response before sending the next, so "
        f"requests users would have sent during a stall were never sent or timed, and "
        f"latency under stalls is understated by design (coordinated omission). For what "
        f"users see at this arrival rate, run the open model: "
        f"harness run constant_rate --rate {rate}" + (f" (this run: {name})" if name else "")
    )


def as_summary(figures: OpenModelFigures) -> dict[str, Any]:
    """The ``open_model`` object of summary.json."""

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in frame.to_dict("records")
        ]

    return {
        "response_time": "from each request's intended start (latency_ms; the report's default)",
        "service_time": "from each request's actual send",
        "gap_flag": GAP_FLAG,
        "endpoints": records(figures.endpoints),
        "stage_endpoints": records(figures.cells),
        "generator": figures.health.as_dict() if figures.health is not None else None,
    }
