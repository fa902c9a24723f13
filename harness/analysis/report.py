"""``harness report RUN``: report.html, report.md and summary.json for one run.

The HTML is one self-contained file (inline CSS and SVG, no scripts, no fonts or anything
else from a network). It holds the run's metadata and how it was measured, the SLA verdicts,
latency percentiles over time with the stages and user count, throughput and errors over
time, the latency distribution, per-endpoint and per-endpoint x per-stage tables, error kinds
and every warning met while reading the run. report.md has the same tables as text.

summary.json (schema ``harness.summary/1``)
--------------------------------------------
A JSON object; times are epoch seconds (floats) unless named ``*_iso``; latencies in ms;
missing figures are ``null``. Consumers must ignore keys they do not know; a change that
removes or redefines a key bumps the version.

``schema``        ``"harness.summary/1"``
``generated_at``  ISO 8601 UTC time the summary was written; ``generator``: ``"harness X.Y"``
``run``           ``name`` (directory name), ``path``, ``scenario``, ``target``, ``backend``,
                  ``start``, ``end``, ``start_iso``, ``end_iso``, ``duration_s``, ``samples``
                  (requests read), ``harness_version``, ``locust_version``, ``git_commit``,
                  ``host`` (as in run.json), ``slas`` (expressions)
``method``        ``exact`` (bool: every request's own latency), ``approximate`` (bool: from
                  Locust's bucketed aggregates), ``source`` (``"samples"``,
                  ``"locust-csv"`` or ``"locust-json"``), ``percentile_definition``,
                  ``window_s``, ``latency_unit`` (``"ms"``), ``failed_included`` (true)
``verdict``       ``source`` (``"verdict.json"``, ``"re-evaluated"`` or null when the run had
                  no SLAs), ``passed`` (bool or null), ``partial``, ``stop_reason``,
                  ``broken_step``, ``outcomes``: list of ``{sla, scope, stage, metric,
                  measured, threshold, op, passed, count, note}`` (harness.sla.Outcome)
``overall``       a *stats row* for all requests
``endpoints``     stats rows with ``endpoint`` ("GET /x"), whole run, sorted by endpoint
``stages``        stats rows with ``stage``, ``start``, ``end`` (its span), in time order
``stage_endpoints``  stats rows with ``stage`` and ``endpoint``
``errors``        ``{endpoint, kind, count, share, example}``, per endpoint, most frequent
                  first (``share`` of that endpoint's failures)
``windows``       one per ``window_s`` window: ``{t, start, stage, count, failures, rps,
                  error_rate, p50, p95, p99, users}`` (``t``: seconds since the run's start)
``warnings``      list of strings (truncated or unreadable sample files, approximations...)
``open_model``    null for a closed-model run; else ``response_time`` and ``service_time``
                  (what each measures), ``gap_flag`` (0.10), ``endpoints`` and
                  ``stage_endpoints``: ``{endpoint, [stage], count, response_p50/p95/p99,
                  service_p50/p95/p99, gap_p99, flagged}``, and ``generator``: per stage
                  ``target_rate``, ``achieved_rate``, ``started``, ``dropped``,
                  ``unfinished``, scheduler lag percentiles, each process's CPU,
                  ``generator_limited`` and its ``reasons`` (harness.generator_health)
``closed_model_note``  for a closed-model run, the line on latency under stalls; else null

A *stats row* is ``{count, failures, error_rate, rps, seconds, latency_ms: {mean, min, p50,
p75, p90, p95, p99, p99.9, max}}`` plus its keys; ``rps`` is ``count / seconds`` over the
stage's span for stage rows, else over the run. For an approximate run, ``stages``,
``stage_endpoints``, ``errors`` and ``windows`` are empty and the latency figures are
Locust's bucketed ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import __version__
from harness.analysis import charts
from harness.analysis.html import escape, page, table_html
from harness.analysis.load import Run
from harness.analysis.open_model import (
    OpenModelFigures,
    as_summary,
    closed_model_note,
    open_model_figures,
)
from harness.analysis.stats import (
    PERCENTILE_DEFINITION,
    QUANTILES,
    Grouped,
    categorize,
    error_kinds,
    summarize,
)
from harness.sla import (
    LATENCY_METRICS,
    Outcome,
    SampleView,
    Sla,
    SlaError,
    evaluate,
    format_value,
    parse_slas,
)

SUMMARY_SCHEMA = "harness.summary/1"
LATENCY_KEYS = ("mean", "min", *QUANTILES, "max")

EXTRA_STYLE = """
.banner { display: inline-block; padding: .35rem .9rem; border-radius: 6px; font-weight: 700;
          font-size: 1rem; margin: .2rem 0 .6rem; }
.banner.pass { background: #dafbe1; color: #1a7f37; } .banner.fail { background: #ffebe9; }
.banner.none { background: #f6f8fa; color: #57606a; }
.approx { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem .8rem;
          border-radius: 6px; }
.warnings li { color: #9a6700; margin: .2rem 0; }
.kpis { display: flex; flex-wrap: wrap; gap: .6rem; margin: .6rem 0; }
.kpi { border: 1px solid #d0d7de; border-radius: 6px; padding: .45rem .8rem; min-width: 7rem; }
.kpi b { display: block; font-size: 1.15rem; } .kpi span { color: #57606a; font-size: .78rem; }
table.meta td { text-align: left; } table.meta td:first-child { color: #57606a; }
nav { font-size: .85rem; color: #57606a; } nav a { margin-right: .7rem; color: #0969da; }
tr.sep td { border-top: 2px solid #8c959f; }
"""


@dataclass
class Analysis:
    """Everything a report shows, computed once."""

    exact: bool
    source: str
    window_s: float
    spans: list[tuple[str, float, float]]
    start: float
    end: float
    overall: pd.DataFrame
    endpoints: pd.DataFrame
    stages: pd.DataFrame = field(default_factory=pd.DataFrame)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)
    error_totals: pd.DataFrame = field(default_factory=pd.DataFrame)
    windows: pd.DataFrame = field(default_factory=pd.DataFrame)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    verdict_source: str | None = None
    figures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    open_model: OpenModelFigures | None = None
    closed_note: str | None = None

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 0.0)


# -- computing ---------------------------------------------------------------------------------


def analyse(run: Run, window_s: float = 10.0, draw: bool = True) -> Analysis:
    """Compute the report's tables (and, with ``draw``, its charts) for ``run``."""
    if run.approximate:
        return _analyse_approximate(run, window_s, draw)
    samples = categorize(run.samples, ("endpoint", "stage"))
    spans = run.stage_spans
    span_map = {name: (s, e) for name, s, e in spans}
    start, end = run.start, run.end
    duration = max(end - start, 0.0)
    tables = summarize(
        samples,
        [["stage", "endpoint"], ["endpoint"], ["stage"], []],
        seconds=duration,
        spans=span_map,
        window_s=window_s,
        origin=start,
        end=end,
    )
    errors = error_kinds(samples, ["endpoint"])
    a = Analysis(
        exact=True,
        source="samples",
        window_s=window_s,
        spans=spans,
        start=start,
        end=end,
        overall=tables.stats[()],
        endpoints=tables.stats[("endpoint",)],
        stages=tables.stats[("stage",)],
        cells=tables.stats[("stage", "endpoint")],
        errors=errors,
        error_totals=_error_totals(errors),
        windows=tables.windows if tables.windows is not None else pd.DataFrame(),
        warnings=list(run.warnings),
    )
    a.outcomes, a.verdict_source = _verdict(run, a, samples)
    known = len(run.warnings)
    a.open_model = open_model_figures(run)
    a.warnings.extend(run.warnings[known:])
    if a.open_model is None:
        rps = float(a.overall.iloc[0]["rps"]) if len(a.overall) else None
        a.closed_note = closed_model_note(run, rps)
    if draw:
        a.figures = _exact_figures(run, a, tables.groups[("endpoint",)])
    return a


def _error_totals(errors: pd.DataFrame) -> pd.DataFrame:
    """Per-endpoint error kinds summed over endpoints (example: the first endpoint's)."""
    if errors.empty:
        return pd.DataFrame(columns=["kind", "count", "share", "example"])
    totals = errors.groupby("kind", sort=False).agg(
        count=("count", "sum"), example=("example", "first")
    )
    totals = totals.reset_index()
    totals["share"] = totals["count"] / totals["count"].sum()
    totals = totals.sort_values(["count", "kind"], ascending=[False, True])
    return totals[["kind", "count", "share", "example"]].reset_index(drop=True)


def _exact_figures(run: Run, a: Analysis, by_endpoint: Grouped) -> list[str]:
    figures = [
        charts.latency_over_time(a.windows, a.spans, a.start, a.duration, a.window_s),
        charts.throughput_over_time(a.windows, a.spans, a.start, a.duration, a.window_s),
    ]
    labels = [str(e) for e in by_endpoint.keys["endpoint"]]
    overall = a.overall.iloc[0]
    edges = charts.log_bins(float(overall["min"]), float(overall["max"]))
    counts = charts.histogram_sorted(
        by_endpoint.sorted_latency, by_endpoint.starts, by_endpoint.counts, edges
    )
    marks = {q: float(overall[q]) for q in ("p50", "p95", "p99")}
    figures.append(charts.latency_distribution(edges, counts, labels, marks))
    threshold, label = _bar_threshold(run)
    figures.append(charts.endpoint_percentiles(a.endpoints, False, threshold, label))
    if len(a.stages) > 1:
        figures.append(charts.stage_endpoint_heatmap(a.cells))
    return figures


def _bar_threshold(run: Run) -> tuple[float | None, str]:
    """An all-endpoint p95 SLA to draw on the per-endpoint chart, if the run had one."""
    try:
        slas = parse_slas(run.meta.get("slas") or [])
    except SlaError:
        return None, ""
    for sla in slas:
        if sla.metric == "p95" and sla.stage is None and sla.scope in {None, "*"}:
            return sla.threshold, f"SLA {sla.text}"
    return None, ""


def _verdict(
    run: Run, a: Analysis, samples: pd.DataFrame
) -> tuple[list[dict[str, Any]], str | None]:
    """The run's own verdict.json outcomes, else the SLAs of run.json judged here."""
    if run.verdict and isinstance(run.verdict.get("outcomes"), list):
        return list(run.verdict["outcomes"]), "verdict.json"
    texts = run.meta.get("slas") or []
    if not texts:
        return [], None
    try:
        slas = parse_slas(texts)
    except SlaError as exc:
        a.warnings.append(f"run.json SLAs not judged: {exc}")
        return [], None
    return [o.as_dict() for o in judge(slas, a, samples)], "re-evaluated"


def _metric(row: Mapping[str, Any], metric: str) -> float | None:
    key = {"errors": "error_rate"}.get(metric, metric)
    value = row.get(key)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def judge(slas: Sequence[Sla], a: Analysis, samples: pd.DataFrame) -> list[Outcome]:
    """SLAs judged from the exact samples, by the same rules as the run's own verdict."""
    view = SampleView(
        endpoint=samples["endpoint"].astype(str).to_numpy(dtype=object),
        name=samples["name"].astype(str).to_numpy(dtype=object),
        stage=samples["stage"].astype(str).to_numpy(dtype=object),
        latency_ms=samples["latency_ms"].to_numpy(dtype=np.float64),
        ok=samples["ok"].to_numpy(dtype=bool),
        start=samples["start_time"].to_numpy(dtype=np.float64),
    )
    spans = {name: (start, end) for name, start, end in a.spans}
    return evaluate(slas, view, spans, (a.start, a.start + a.duration))


def locust_percentile(buckets: Mapping[Any, int], percent: float) -> float | None:
    """Locust's own percentile from its response-time buckets (``calculate_response_time_
    percentile``): the bucket at which the requests above it fall within ``1 - percent``."""
    total = sum(int(v) for v in buckets.values())
    if total == 0:
        return None
    wanted = int(total * percent)
    seen = 0
    for key in sorted(buckets, key=float, reverse=True):
        seen += int(buckets[key])
        if total - seen <= wanted:
            return float(key)
    return float(min(buckets, key=float))


def _analyse_approximate(run: Run, window_s: float, draw: bool) -> Analysis:
    agg = (run.aggregates if run.aggregates is not None else pd.DataFrame()).copy()
    for col in ("request_type", "name"):
        if col not in agg:
            agg[col] = ""
    agg["request_type"] = agg["request_type"].fillna("").astype(str)
    agg["name"] = agg["name"].fillna("").astype(str)
    buckets: dict[str, Mapping[Any, int]] = {}
    if "response_times" in agg:
        computed: dict[str, list[float | None]] = {q: [] for q in QUANTILES}
        for rec in agg.to_dict("records"):
            hist = rec["response_times"] if isinstance(rec["response_times"], dict) else {}
            buckets[f"{rec['request_type']} {rec['name']}".strip()] = hist
            for q, p in QUANTILES.items():
                given = rec.get(q)
                known = given is not None and not _isna(given)
                computed[q].append(given if known else locust_percentile(hist, p / 100))
        for q, values in computed.items():
            agg[q] = values
    is_total = (agg["name"] == "Aggregated") & (agg["request_type"].isin(["", "nan"]))
    rows = agg.loc[~is_total].copy()
    rows["endpoint"] = (rows["request_type"] + " " + rows["name"]).str.strip()
    stat_cols = ["count", "failures", "rps", *LATENCY_KEYS]
    for col in stat_cols:
        rows[col] = pd.to_numeric(rows[col], errors="coerce") if col in rows else np.nan
    rows["error_rate"] = rows["failures"] / rows["count"].where(rows["count"] > 0)
    rows["seconds"] = np.nan
    endpoints = rows[["endpoint", *_stat_order()]].sort_values("endpoint").reset_index(drop=True)
    if is_total.any():
        total = agg.loc[is_total].iloc[[0]].copy()
        for col in stat_cols:
            total[col] = pd.to_numeric(total[col], errors="coerce") if col in total else np.nan
        total["error_rate"] = total["failures"] / total["count"].where(total["count"] > 0)
        total["seconds"] = np.nan
        overall = total[_stat_order()].reset_index(drop=True)
    else:
        count = float(rows["count"].sum())
        failures = float(rows["failures"].sum())
        overall = pd.DataFrame(
            [
                {
                    **dict.fromkeys(_stat_order(), np.nan),
                    "count": count,
                    "failures": failures,
                    "error_rate": failures / count if count else np.nan,
                    "rps": float(rows["rps"].sum()) if rows["rps"].notna().any() else np.nan,
                    "min": rows["min"].min(),
                    "max": rows["max"].max(),
                }
            ]
        )
    a = Analysis(
        exact=False,
        source="locust-json" if run.path.suffix == ".json" else "locust-csv",
        window_s=window_s,
        spans=[],
        start=0.0,
        end=0.0,
        overall=overall,
        endpoints=endpoints,
        warnings=list(run.warnings),
    )
    if draw:
        a.figures = [charts.endpoint_percentiles(endpoints, approximate=True)]
        dist = charts.bucket_distribution(buckets)
        if dist is not None:
            a.figures.append(dist)
    return a


def _stat_order() -> list[str]:
    return ["count", "failures", "error_rate", "seconds", "rps", *LATENCY_KEYS]


# -- summary.json -----------------------------------------------------------------------------


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _stats_rows(frame: pd.DataFrame, keys: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict("records"):
        row: dict[str, Any] = {k: (None if _isna(rec.get(k)) else str(rec[k])) for k in keys}
        count = _num(rec.get("count"))
        row.update(
            {
                "count": int(count) if count is not None else None,
                "failures": _int_or_none(rec.get("failures")),
                "error_rate": _num(rec.get("error_rate")),
                "rps": _num(rec.get("rps")),
                "seconds": _num(rec.get("seconds")),
                "latency_ms": {k: _num(rec.get(k)) for k in LATENCY_KEYS},
            }
        )
        out.append(row)
    return out


def _int_or_none(value: Any) -> int | None:
    n = _num(value)
    return None if n is None else int(n)


def _isna(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _iso(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def summary(run: Run, a: Analysis) -> dict[str, Any]:
    """The summary.json document (see the module docstring)."""
    meta = run.meta
    scenario = meta.get("scenario")
    verdict = run.verdict or {}
    passed: bool | None
    if a.verdict_source == "verdict.json":
        passed = bool(verdict.get("passed"))
    elif a.outcomes:
        passed = all(o["passed"] for o in a.outcomes)
    else:
        passed = None
    spans = {name: (s, e) for name, s, e in a.spans}
    stages = _stats_rows(a.stages, ["stage"])
    for row in stages:
        s, e = spans.get(row["stage"], (None, None))
        row["start"], row["end"] = s, e
    win_rows = []
    if not a.windows.empty:
        for rec in a.windows.to_dict("records"):
            win_rows.append(
                {
                    "t": _num(rec["t"]),
                    "start": _num(rec["start"]),
                    "stage": None if _isna(rec.get("stage")) else str(rec["stage"]),
                    "count": int(rec["count"]),
                    "failures": int(rec["failures"]),
                    "rps": _num(rec["rps"]),
                    "error_rate": _num(rec["error_rate"]),
                    "p50": _num(rec["p50"]),
                    "p95": _num(rec["p95"]),
                    "p99": _num(rec["p99"]),
                    "users": _int_or_none(rec.get("users")),
                }
            )
    errors = [
        {
            "endpoint": str(r["endpoint"]),
            "kind": str(r["kind"]),
            "count": int(r["count"]),
            "share": _num(r["share"]),
            "example": str(r["example"]),
        }
        for r in a.errors.to_dict("records")
    ]
    return {
        "schema": SUMMARY_SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "generator": f"harness {__version__}",
        "run": {
            "name": run.name,
            "path": str(run.path),
            "scenario": scenario.get("name") if isinstance(scenario, dict) else scenario,
            "target": meta.get("target"),
            "backend": meta.get("backend"),
            "start": a.start or None,
            "end": a.end or None,
            "start_iso": _iso(a.start),
            "end_iso": _iso(a.end),
            "duration_s": a.duration if a.exact else None,
            "samples": len(run.samples) if a.exact else None,
            "harness_version": meta.get("harness_version"),
            "locust_version": meta.get("locust_version"),
            "git_commit": meta.get("git_commit"),
            "host": meta.get("host"),
            "slas": list(meta.get("slas") or []),
        },
        "method": {
            "exact": a.exact,
            "approximate": not a.exact,
            "source": a.source,
            "percentile_definition": (
                PERCENTILE_DEFINITION if a.exact else "Locust's response-time buckets"
            ),
            "window_s": a.window_s,
            "latency_unit": "ms",
            "failed_included": True,
        },
        "verdict": {
            "source": a.verdict_source,
            "passed": passed,
            "partial": verdict.get("partial"),
            "stop_reason": verdict.get("stop_reason"),
            "broken_step": verdict.get("broken_step"),
            "outcomes": [_clean(o) for o in a.outcomes],
        },
        "overall": next(iter(_stats_rows(a.overall, [])), None),
        "endpoints": _stats_rows(a.endpoints, ["endpoint"]),
        "stages": stages,
        "stage_endpoints": _stats_rows(a.cells, ["stage", "endpoint"]),
        "errors": errors,
        "windows": win_rows,
        "warnings": list(a.warnings),
        "open_model": _clean(as_summary(a.open_model)) if a.open_model is not None else None,
        "closed_model_note": a.closed_note,
    }


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


# -- formatting -------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    n = _num(value)
    return "-" if n is None else f"{n:,.2f}"


def _count(value: Any) -> str:
    n = _num(value)
    return "-" if n is None else f"{n:,.0f}"


def _rps(value: Any) -> str:
    n = _num(value)
    return "-" if n is None else f"{n:,.1f}"


def _pct(value: Any) -> str:
    n = _num(value)
    return "-" if n is None else f"{n * 100:.2f}%"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


STAT_HEAD = ["requests", "rps", "errors", "mean", "min", *QUANTILES, "max"]


def _stat_cells(rec: Mapping[str, Any]) -> list[str]:
    return [
        _count(rec.get("count")),
        _rps(rec.get("rps")),
        _pct(rec.get("error_rate")),
        *(_ms(rec.get(k)) for k in LATENCY_KEYS),
    ]


def _table_rows(frame: pd.DataFrame, keys: Sequence[str]) -> list[list[str]]:
    return [[*(str(rec[k]) for k in keys), *_stat_cells(rec)] for rec in frame.to_dict("records")]


def _meta_rows(run: Run, a: Analysis) -> list[tuple[str, str]]:
    meta = run.meta
    scenario = meta.get("scenario")
    rows: list[tuple[str, str]] = [("run", run.name)]
    if isinstance(scenario, dict):
        text = str(scenario.get("name", "-"))
        if scenario.get("description"):
            text += f" - {scenario['description']}"
        rows.append(("scenario", text))
    elif scenario:
        rows.append(("scenario", str(scenario)))
    for key in ("target", "backend", "command"):
        if meta.get(key):
            rows.append((key, str(meta[key])))
    if a.exact:
        rows.append(("start", _iso(a.start) or "-"))
        rows.append(("end", _iso(a.end) or "-"))
        rows.append(("duration", _duration(a.duration)))
        files = len({str(w) for w in meta.get("workers", [])}) or None
        extra = f" from {files} Locust processes" if files and files > 1 else ""
        rows.append(("samples", f"{len(run.samples):,} requests{extra}"))
    else:
        rows.append(("source", str(meta.get("file", run.path))))
    versions = []
    if meta.get("harness_version"):
        versions.append(f"harness {meta['harness_version']}")
    if meta.get("locust_version"):
        versions.append(f"locust {meta['locust_version']}")
    if versions:
        rows.append(("versions", ", ".join(versions)))
    if meta.get("git_commit"):
        rows.append(("git commit", str(meta["git_commit"])))
    host = meta.get("host")
    if isinstance(host, dict):
        parts = [str(host[k]) for k in ("hostname", "platform") if host.get(k)]
        if host.get("python"):
            parts.append(f"Python {host['python']}")
        if host.get("cpus"):
            parts.append(f"{host['cpus']} CPUs")
        rows.append(("host", ", ".join(parts)))
    locust = meta.get("locust")
    if isinstance(locust, dict):
        opts = [f"{k}={v}" for k, v in locust.items() if v not in (None, "", 1.0)]
        if opts:
            rows.append(("locust options", ", ".join(opts)))
    if meta.get("slas"):
        rows.append(("SLAs", ", ".join(str(s) for s in meta["slas"])))
    if a.exact:
        rows.append(
            (
                "how measured",
                "exact: every request's own latency from the recorder's samples "
                "(failed requests included), never bucketed",
            )
        )
        rows.append(("percentiles", PERCENTILE_DEFINITION))
        rows.append(("time windows", f"{a.window_s:g} s, by the time each request was sent"))
    else:
        rows.append(
            (
                "how measured",
                f"{charts.APPROXIMATE}: Locust's aggregates, percentiles rounded into "
                "buckets (2 significant digits above 100 ms)",
            )
        )
    return rows


def _outcome_rows(outcomes: Iterable[Mapping[str, Any]]) -> tuple[list[list[str]], list[str]]:
    rows, classes = [], []
    for o in outcomes:
        metric = str(o.get("metric", ""))
        unit_metric = metric if metric in (*LATENCY_METRICS, "errors", "rps") else ""
        rows.append(
            [
                str(o.get("sla", "")),
                str(o.get("scope", "")),
                str(o.get("stage", "")),
                format_value(unit_metric, _num(o.get("measured"))),
                f"{o.get('op', '')} {format_value(unit_metric, _num(o.get('threshold')))}",
                f"{o.get('count', 0):,}" if isinstance(o.get("count"), int) else "-",
                "pass" if o.get("passed") else "FAIL",
                str(o.get("note") or ""),
            ]
        )
        classes.append("" if o.get("passed") else "fail")
    return rows, classes


OUTCOME_HEAD = ["SLA", "scope", "stage", "measured", "threshold", "requests", "result", "note"]


# -- HTML -------------------------------------------------------------------------------------


def _kpis(a: Analysis) -> str:
    rec = a.overall.iloc[0].to_dict() if len(a.overall) else {}
    items = [
        (_count(rec.get("count")), "requests"),
        (_rps(rec.get("rps")), "requests/s"),
        (_pct(rec.get("error_rate")), "failed"),
        (_ms(rec.get("p50")) + " ms", "p50"),
        (_ms(rec.get("p95")) + " ms", "p95"),
        (_ms(rec.get("p99")) + " ms", "p99"),
        (_ms(rec.get("max")) + " ms", "max"),
    ]
    cells = "".join(
        f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in items
    )
    return f'<div class="kpis">{cells}</div>'


def _banner(run: Run, a: Analysis) -> str:
    verdict = run.verdict or {}
    if a.verdict_source is None:
        return '<div class="banner none">no SLAs given: no verdict</div>'
    if a.verdict_source == "verdict.json":
        passed = bool(verdict.get("passed"))
        extra = []
        if verdict.get("partial"):
            extra.append("partial run (interrupted)")
        if verdict.get("broken_step"):
            extra.append(f"broke at step {verdict['broken_step']}")
        if verdict.get("stop_reason"):
            extra.append(f"stopped: {verdict['stop_reason']}")
    else:
        passed = all(o["passed"] for o in a.outcomes)
        extra = ["judged by the report from run.json's SLAs"]
    failed = sum(1 for o in a.outcomes if not o.get("passed"))
    text = "PASS" if passed else f"FAIL ({failed} of {len(a.outcomes)} SLA checks failed)"
    note = f' <span class="note">{escape("; ".join(extra))}</span>' if extra else ""
    cls = "pass" if passed else "fail"
    return f'<div class="banner {cls}">{escape(text)}</div>{note}'


def render_html(run: Run, a: Analysis) -> str:
    """The report as one self-contained HTML document."""
    sections: list[str] = [f"<style>{EXTRA_STYLE}</style>"]
    links = [("verdict", "SLA verdicts"), ("charts", "charts"), ("endpoints", "per endpoint")]
    if a.exact:
        links += [("stages", "per stage"), ("cells", "endpoint x stage"), ("errors", "errors")]
    if a.open_model is not None:
        links.append(("open-model", "open model"))
    links.append(("run", "run"))
    sections.append(
        "<nav>" + "".join(f'<a href="#{k}">{escape(v)}</a>' for k, v in links) + "</nav>"
    )
    if not a.exact:
        sections.append(
            f'<p class="approx"><b>{escape(charts.APPROXIMATE)}.</b> This report was made '
            "from Locust's own statistics, not the harness recorder's samples: its "
            "percentiles are Locust's bucketed values (2 significant digits above 100 ms), "
            "and there are no per-stage, per-window or error-kind figures.</p>"
        )
    sections.append(_banner(run, a))
    if a.open_model is not None and a.open_model.health is not None:
        health = a.open_model.health
        if health.generator_limited:
            sections.append(
                '<p class="approx"><b>Generator-limited run: latencies are not trustworthy.'
                f"</b> {escape('; '.join(health.reasons))}</p>"
            )
    if a.closed_note:
        sections.append(f'<p class="note">{escape(a.closed_note)}.</p>')
    sections.append(_kpis(a))
    if a.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in a.warnings)
        sections.append(f'<h2 id="warnings">Warnings</h2><ul class="warnings">{items}</ul>')
    sections.append('<h2 id="verdict">SLA verdicts</h2>')
    if a.outcomes:
        rows, classes = _outcome_rows(a.outcomes)
        sections.append(table_html(OUTCOME_HEAD, rows, left=3, classes=classes))
        src = (
            "from the run's verdict.json"
            if a.verdict_source == "verdict.json"
            else "judged by this report on the exact samples, from the SLAs in run.json"
        )
        sections.append(f'<p class="note">Verdicts {escape(src)}.</p>')
    else:
        sections.append('<p class="note">The run had no SLAs to judge.</p>')
    sections.append('<h2 id="charts">Charts</h2>')
    sections.extend(a.figures)
    approx = f" - {charts.APPROXIMATE}" if not a.exact else ""
    sections.append(f'<h2 id="endpoints">Per endpoint, whole run{escape(approx)}</h2>')
    sections.append('<p class="note">Latencies in milliseconds.</p>')
    head = ["endpoint", *STAT_HEAD]
    rows = _table_rows(a.endpoints, ["endpoint"])
    rows.append(["all requests", *_stat_cells(a.overall.iloc[0].to_dict())])
    classes = [""] * (len(rows) - 1) + ["sep"]
    sections.append(table_html(head, rows, classes=classes))
    if a.exact:
        sections.append('<h2 id="stages">Per stage</h2>')
        spans = {name: (s, e) for name, s, e in a.spans}
        stage_rows = []
        for rec in a.stages.to_dict("records"):
            s, e = spans.get(str(rec["stage"]), (None, None))
            when = (
                f"{(s - a.start):,.0f}-{(e - a.start):,.0f} s"
                if s is not None and e is not None
                else "-"
            )
            stage_rows.append([str(rec["stage"]), when, *_stat_cells(rec)])
        sections.append(table_html(["stage", "span", *STAT_HEAD], stage_rows, left=2))
        sections.append(
            '<p class="note">rps is over each stage\'s span; a request belongs to the stage '
            "it was sent in.</p>"
        )
        sections.append('<h2 id="cells">Per endpoint and stage</h2>')
        cell_rows, cell_classes, last = [], [], None
        for rec in a.cells.to_dict("records"):
            stage = str(rec["stage"])
            cell_classes.append("sep" if last is not None and stage != last else "")
            last = stage
            cell_rows.append([stage, str(rec["endpoint"]), *_stat_cells(rec)])
        sections.append(
            table_html(["stage", "endpoint", *STAT_HEAD], cell_rows, left=2, classes=cell_classes)
        )
        sections.append('<h2 id="errors">Errors by kind</h2>')
        if a.error_totals.empty:
            sections.append('<p class="note">No request failed.</p>')
        else:
            total_rows = [
                [str(r["kind"]), _count(r["count"]), _pct(r["share"]), str(r["example"])]
                for r in a.error_totals.to_dict("records")
            ]
            sections.append(
                table_html(["kind", "failures", "share", "example"], total_rows, left=1)
            )
            ep_rows = [
                [
                    str(r["endpoint"]),
                    str(r["kind"]),
                    _count(r["count"]),
                    _pct(r["share"]),
                    str(r["example"]),
                ]
                for r in a.errors.to_dict("records")
            ]
            sections.append("<h3>Per endpoint</h3>")
            sections.append(
                table_html(["endpoint", "kind", "failures", "share", "example"], ep_rows, left=2)
            )
    if a.open_model is not None:
        sections.extend(_open_model_html(a.open_model))
    sections.append('<h2 id="run">Run</h2>')
    meta_rows = "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in _meta_rows(run, a)
    )
    sections.append(f'<table class="meta"><tbody>{meta_rows}</tbody></table>')
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    sections.append(
        f'<p class="note">Generated by harness {escape(__version__)} at {escape(generated)}; '
        "the same figures are in report.md and summary.json (schema "
        f"{escape(SUMMARY_SCHEMA)}).</p>"
    )
    return page(f"Run report: {run.name}", sections)


# -- Markdown ---------------------------------------------------------------------------------


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
    align = [":--" if i < left else "--:" for i in range(len(head))]
    lines = [
        "| " + " | ".join(_md_cell(h) for h in head) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(run: Run, a: Analysis) -> str:
    """The report's tables as Markdown (charts are in report.html)."""
    out = [f"# Run report: {run.name}", ""]
    if not a.exact:
        out += [f"> **{charts.APPROXIMATE}**: from Locust's own statistics.", ""]
    if a.outcomes:
        failed = sum(1 for o in a.outcomes if not o.get("passed"))
        passed = (
            bool((run.verdict or {}).get("passed"))
            if a.verdict_source == "verdict.json"
            else failed == 0
        )
        out += [f"**Verdict: {'PASS' if passed else 'FAIL'}** ({a.verdict_source})", ""]
    out += [_md_table(["", ""], _meta_rows(run, a)), ""]
    if a.closed_note:
        out += [f"> {a.closed_note}.", ""]
    if a.warnings:
        out += ["## Warnings", "", *(f"- {w}" for w in a.warnings), ""]
    if a.outcomes:
        rows, _ = _outcome_rows(a.outcomes)
        out += ["## SLA verdicts", "", _md_table(OUTCOME_HEAD, rows, left=3), ""]
    out += ["## Per endpoint, whole run (latency in ms)", ""]
    rows = _table_rows(a.endpoints, ["endpoint"])
    rows.append(["**all requests**", *_stat_cells(a.overall.iloc[0].to_dict())])
    out += [_md_table(["endpoint", *STAT_HEAD], rows), ""]
    if a.exact:
        out += [
            "## Per stage",
            "",
            _md_table(["stage", *STAT_HEAD], _table_rows(a.stages, ["stage"])),
        ]
        out += ["", "## Per endpoint and stage", ""]
        out += [
            _md_table(
                ["stage", "endpoint", *STAT_HEAD],
                _table_rows(a.cells, ["stage", "endpoint"]),
                left=2,
            ),
            "",
        ]
        out += ["## Errors by kind", ""]
        if a.errors.empty:
            out += ["No request failed.", ""]
        else:
            ep_rows = [
                [
                    str(r["endpoint"]),
                    str(r["kind"]),
                    _count(r["count"]),
                    _pct(r["share"]),
                    str(r["example"]),
                ]
                for r in a.errors.to_dict("records")
            ]
            out += [
                _md_table(["endpoint", "kind", "failures", "share", "example"], ep_rows, left=2),
                "",
            ]
    if a.open_model is not None:
        out += _open_model_md(a.open_model)
    out += ["Charts: see report.html. Machine-readable figures: summary.json.", ""]
    return "\n".join(out)


# -- entry point ------------------------------------------------------------------------------


def _default_folder(run: Run) -> Path:
    """The run directory; for Locust's own files, the run directory holding ``locust/``
    when there is one, else the folder of the file."""
    if run.path.is_dir():
        return run.path
    parent = run.path.parent
    if parent.name == "locust" and (parent.parent / "run.json").is_file():
        return parent.parent
    return parent


# Charts over time need enough windows to show a shape; a short run gets shorter windows.
MIN_WINDOWS = 30


def auto_window(run: Run, preferred: float = 10.0) -> float:
    """``preferred`` seconds, or less for a run too short to fill ``MIN_WINDOWS`` of them."""
    duration = max(run.end - run.start, 0.0)
    if duration <= 0 or duration / preferred >= MIN_WINDOWS:
        return preferred
    return max(0.25, round(duration / MIN_WINDOWS, 2))


def write_report(
    run: Run, out_dir: Path | None = None, window_s: float | None = None
) -> dict[str, Path]:
    """Write report.html, report.md and summary.json; return their paths by kind.

    ``out_dir`` defaults to the run directory (for plain Locust output: the folder holding
    its file).
    """
    folder = out_dir or _default_folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    a = analyse(run, window_s if window_s is not None else auto_window(run))
    paths = {
        "html": folder / "report.html",
        "markdown": folder / "report.md",
        "summary": folder / "summary.json",
    }
    paths["html"].write_text(render_html(run, a), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(run, a), encoding="utf-8")
    paths["summary"].write_text(
        json.dumps(_clean(summary(run, a)), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return paths


# -- open model -----------------------------------------------------------------------------

OPEN_STAGE_HEAD = [
    "stage",
    "target/s",
    "achieved/s",
    "started",
    "dropped",
    "unfinished",
    "lag p50 ms",
    "lag p99 ms",
    "lag max ms",
]
TIMES_HEAD = [
    "requests",
    "response p50",
    "p95",
    "p99",
    "service p50",
    "p95",
    "p99",
    "p99 gap",
]


def _open_stage_rows(figures: OpenModelFigures) -> list[list[str]]:
    if figures.health is None:
        return []
    return [
        [
            s.stage,
            f"{s.target_rate:,.2f}",
            f"{s.achieved_rate:,.2f}",
            _count(s.started),
            _count(s.dropped),
            _count(s.unfinished),
            _ms(s.lag_p50_ms),
            _ms(s.lag_p99_ms),
            _ms(s.lag_max_ms),
        ]
        for s in figures.health.stages
    ]


def _times_rows(frame: pd.DataFrame, keys: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    rows, classes = [], []
    for rec in frame.to_dict("records"):
        flag = " (flag)" if rec["flagged"] else ""
        rows.append(
            [
                *(str(rec[k]) for k in keys),
                _count(rec["count"]),
                *(_ms(rec[f"response_{q}"]) for q in ("p50", "p95", "p99")),
                *(_ms(rec[f"service_{q}"]) for q in ("p50", "p95", "p99")),
                f"{rec['gap_p99']:+.0%}{flag}",
            ]
        )
        classes.append("fail" if rec["flagged"] else "")
    return rows, classes


def _open_model_text(figures: OpenModelFigures) -> list[str]:
    lines = [
        "Response time runs from each request's intended start (what a user waits, queueing "
        "included): it is the latency of every other table, SLA and chart in this report. "
        "Service time runs from the actual send. A p99 gap above "
        f"{GAP_FLAG_TEXT} is flagged: the server, or the generator, fell behind there.",
    ]
    health = figures.health
    if health is not None:
        cpu = ", ".join(
            f"{c.process} mean {c.mean:.0f}% max {c.max:.0f}%"
            for c in health.cpu
            if c.mean is not None and c.max is not None
        )
        lines.append(
            f"{health.arrivals.capitalize()} arrivals, at most {health.max_inflight} iterations "
            f"in flight, {health.processes or 1} process(es). Scheduler lag (actual minus "
            f"intended start, iterations that found a free slot): p50 "
            f"{_ms(health.lag_p50_ms)} ms, p99 {_ms(health.lag_p99_ms)} ms, max "
            f"{_ms(health.lag_max_ms)} ms"
            + (f"; CPU {cpu}" if cpu else "")
            + ". "
            + (
                "Generator-limited: " + "; ".join(health.reasons)
                if health.generator_limited
                else "The generator kept its schedule."
            )
        )
    return lines


GAP_FLAG_TEXT = "10%"


def _open_model_html(figures: OpenModelFigures) -> list[str]:
    out = ['<h2 id="open-model">Open model: response and service time, rates</h2>']
    out += [f'<p class="note">{escape(line)}</p>' for line in _open_model_text(figures)]
    stage_rows = _open_stage_rows(figures)
    if stage_rows:
        out.append("<h3>Target and achieved rate per stage (iterations/s)</h3>")
        out.append(table_html(OPEN_STAGE_HEAD, stage_rows))
    rows, classes = _times_rows(figures.endpoints, ["endpoint"])
    out.append("<h3>Per endpoint (ms)</h3>")
    out.append(table_html(["endpoint", *TIMES_HEAD], rows, classes=classes))
    rows, classes = _times_rows(figures.cells, ["stage", "endpoint"])
    out.append("<h3>Per endpoint and stage (ms)</h3>")
    out.append(table_html(["stage", "endpoint", *TIMES_HEAD], rows, left=2, classes=classes))
    return out


def _open_model_md(figures: OpenModelFigures) -> list[str]:
    out = ["## Open model: response and service time, rates", ""]
    for line in _open_model_text(figures):
        out += [line, ""]
    stage_rows = _open_stage_rows(figures)
    if stage_rows:
        out += ["Target and achieved rate per stage (iterations/s):", ""]
        out += [_md_table(OPEN_STAGE_HEAD, stage_rows), ""]
    rows, _ = _times_rows(figures.endpoints, ["endpoint"])
    out += ["Per endpoint (ms):", "", _md_table(["endpoint", *TIMES_HEAD], rows), ""]
    rows, _ = _times_rows(figures.cells, ["stage", "endpoint"])
    out += [
        "Per endpoint and stage (ms):",
        "",
        _md_table(["stage", "endpoint", *TIMES_HEAD], rows, left=2),
        "",
    ]
    return out
