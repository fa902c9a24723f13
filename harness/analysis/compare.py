"""Run-to-run comparison: is NEW worse than BASE beyond noise?

For every endpoint x stage (plus every endpoint over all stages, every stage over all
endpoints, and the whole run) :func:`compare_runs` sets the change in p50, p95, p99,
throughput and error rate from BASE to NEW beside a confidence interval, and gives each a
verdict against a tolerance.

Point estimates are exact (:func:`harness.analysis.stats.exact_stats` via ``summarize``: every
sample, linear interpolation). Confidence intervals come from a **stratified block bootstrap
over time windows**: each stage's span is cut into consecutive windows of ``WINDOW_S`` seconds
(shorter when a stage is short, so it has at least ``MIN_BLOCKS`` windows), and a replicate
draws, per stage, as many windows as the stage has, with replacement, taking every request sent
in a drawn window. Whole windows are resampled rather than single requests because requests of
a load run are not independent: latency drifts with cache warm-up, garbage collection,
autovacuum and noisy neighbours, so neighbouring requests are alike. Resampling single requests
would ignore that and give intervals too narrow (false regressions), and it could not put an
interval on throughput at all (the request count would be fixed). Windows are drawn within
their own stage so every replicate keeps the run's plan (a ramp stays a ramp). BASE and NEW are
resampled independently; the interval of the relative change ``new/base - 1`` (absolute change
for error rates) is the percentile interval of the replicates' changes.

To stay fast a group's latencies used by the bootstrap are capped at
``MAX_BOOTSTRAP_SAMPLES`` (a seeded uniform subsample; request and failure counts per window
always use every request), and the weighted percentiles of all replicates are computed at once
with numpy.

Verdicts, with ``tolerance`` (default 10 %) and ``error_tolerance`` (default 1 point):

* latency: ``regression`` when the whole interval is above ``+tolerance``, ``improvement``
  when it is all below ``-tolerance``;
* throughput: ``regression`` when the whole interval is below ``-tolerance``, ``improvement``
  when all above ``+tolerance``;
* error rate (absolute change of the failed share): ``regression`` when the whole interval is
  above ``+error_tolerance``, ``improvement`` when all below ``-error_tolerance``;
* otherwise ``no significant change``; ``insufficient data`` when a group is missing from one
  run, or a percentile has fewer than ``MIN_TAIL`` samples beyond it in either run (a p99 needs
  500 requests) so no interval can be trusted.

:attr:`Comparison.exit_code` is :data:`EXIT_REGRESSION` (12) when any row is a regression,
else 0, so CI can gate on ``harness compare``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.analysis.html import escape, figure_svg, new_figure, page, table_html
from harness.analysis.load import Run
from harness.analysis.stats import PERCENTILE_DEFINITION, exact_stats, summarize
from harness.errors import ConfigError

EXIT_REGRESSION = 12  # any regression (harness run uses 10 and 11; a bad run directory 6)

ALL_ENDPOINTS = "all endpoints"
ALL_STAGES = "all stages"
LATENCY_METRICS: dict[str, float] = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
METRICS = (*LATENCY_METRICS, "throughput", "error_rate")
UNITS = {"p50": "ms", "p95": "ms", "p99": "ms", "throughput": "rps", "error_rate": "share"}

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no significant change"
INSUFFICIENT = "insufficient data"

WINDOW_S = 10.0  # bootstrap block length
MIN_BLOCKS = 20  # a stage shorter than WINDOW_S * MIN_BLOCKS gets shorter blocks
MAX_BOOTSTRAP_SAMPLES = 20_000  # latencies per group used by the bootstrap
MIN_TAIL = 5  # samples needed beyond a percentile (n * (1 - q) >= MIN_TAIL) to judge it
DURATION_RATIO_WARN = 1.5  # durations differing by more than this factor are not comparable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ROW_COLUMNS = (
    "endpoint",
    "stage",
    "metric",
    "unit",
    "base",
    "new",
    "change",
    "change_kind",
    "ci_low",
    "ci_high",
    "verdict",
    "base_count",
    "new_count",
    "base_ci_low",
    "base_ci_high",
    "new_ci_low",
    "new_ci_high",
    "note",
)


@dataclass
class Comparison:
    """The outcome of :func:`compare_runs`.

    ``rows`` has one row per endpoint x stage x metric with the columns of
    :data:`ROW_COLUMNS`: ``base``/``new`` values (ms, rps or failed share), ``change``
    (relative for latency and throughput, ``change_kind == "relative"``; absolute for error
    rate, ``"absolute"``), its interval ``ci_low``..``ci_high``, the ``verdict``, request
    counts, each run's own interval for the value (for charts) and a ``note``.
    """

    base: str
    new: str
    rows: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    tolerance: float = 0.10
    error_tolerance: float = 0.01
    confidence: float = 0.95
    resamples: int = 1000
    approximate: bool = False
    base_latency: FloatArray | None = None  # every latency of the run (for the CDF chart)
    new_latency: FloatArray | None = None

    def _lines(self, verdict: str) -> list[str]:
        picked = self.rows[self.rows["verdict"] == verdict]
        return [_describe(r) for r in picked.to_dict("records")]

    @property
    def regressions(self) -> list[str]:
        """One line per regressed row, e.g. ``GET /x @ spike: p95 +31.0% (95% CI ...)``."""
        return self._lines(REGRESSION)

    @property
    def improvements(self) -> list[str]:
        return self._lines(IMPROVEMENT)

    @property
    def exit_code(self) -> int:
        """:data:`EXIT_REGRESSION` when any row regressed, else 0."""
        return EXIT_REGRESSION if self.regressions else 0

    @property
    def counts(self) -> dict[str, int]:
        """How many rows got each verdict."""
        values = self.rows["verdict"].value_counts()
        return {
            v: int(values.get(v, 0)) for v in (REGRESSION, IMPROVEMENT, NO_CHANGE, INSUFFICIENT)
        }


# -- formatting ---------------------------------------------------------------------------------


def _fmt_value(metric: str, value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if metric == "error_rate":
        return f"{value * 100:.2f}%"
    if metric == "throughput":
        return f"{value:,.1f}/s"
    return f"{value:,.1f} ms"


def _fmt_change(kind: str, value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if kind == "absolute":
        return f"{value * 100:+.2f} pp"
    return f"{value * 100:+.1f}%"


def _fmt_ci(row: Mapping[str, Any]) -> str:
    lo, hi = row["ci_low"], row["ci_high"]
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "-"
    return f"{_fmt_change(row['change_kind'], lo)} .. {_fmt_change(row['change_kind'], hi)}"


def _describe(row: Mapping[str, Any]) -> str:
    where = f"{row['endpoint']} @ {row['stage']}"
    return (
        f"{where}: {row['metric']} {_fmt_value(row['metric'], row['base'])} -> "
        f"{_fmt_value(row['metric'], row['new'])} ({_fmt_change(row['change_kind'], row['change'])}"
        f", CI {_fmt_ci(row)})"
    )


# -- preparing one run --------------------------------------------------------------------------


@dataclass
class _Prepared:
    """One run's samples as arrays, with every request's bootstrap window."""

    run: Run
    latency: FloatArray
    ok: BoolArray
    wid: IntArray  # window of each sample (global index over all stages' windows)
    stages: list[str]  # in time order
    spans: dict[str, tuple[float, float]]
    stage_windows: dict[str, tuple[int, int]]  # stage -> [first, last) window index
    lengths: FloatArray  # seconds per window
    groups: dict[tuple[str, str], IntArray]  # (endpoint, stage) -> sample positions
    stats: dict[tuple[str, str], dict[str, float]]  # exact point estimates per group

    @property
    def n_windows(self) -> int:
        return len(self.lengths)


def _spans(run: Run) -> dict[str, tuple[float, float]]:
    """Stage spans from run.json, plus any stage only the samples know (their time range)."""
    spans: dict[str, tuple[float, float]] = {}
    for name, start, end in run.stage_spans:
        if name not in spans:
            spans[name] = (start, max(end, start))
    s = run.samples
    if not s.empty:
        extra = s.loc[~s["stage"].isin(list(spans))]
        if not extra.empty:
            g = extra.groupby("stage", sort=False, observed=True)["start_time"]
            for name, lo, hi in zip(g.min().index, g.min(), g.max(), strict=True):
                spans[str(name)] = (float(lo), float(hi) + 1e-3)
    return dict(sorted(spans.items(), key=lambda kv: kv[1][0]))


def _prepare(run: Run) -> _Prepared:
    samples = run.samples
    spans = _spans(run)
    stages = list(spans)
    latency = samples["latency_ms"].to_numpy(dtype=np.float64)
    ok = samples["ok"].to_numpy(dtype=bool)
    start = samples["start_time"].to_numpy(dtype=np.float64)
    stage_col = samples["stage"].astype(str).to_numpy()
    endpoint_col = samples["endpoint"].astype(str).to_numpy()

    # Windows: per stage, consecutive blocks of WINDOW_S (shorter for short stages).
    lengths: list[float] = []
    stage_windows: dict[str, tuple[int, int]] = {}
    wid = np.zeros(len(samples), dtype=np.int64)
    for stage in stages:
        lo, hi = spans[stage]
        span = max(hi - lo, 1e-6)
        block = min(WINDOW_S, span / MIN_BLOCKS)
        nw = max(1, math.ceil(span / block - 1e-9))
        first = len(lengths)
        lengths.extend([block] * (nw - 1) + [span - block * (nw - 1)])
        stage_windows[stage] = (first, first + nw)
        mask = stage_col == stage
        idx = np.floor((start[mask] - lo) / block).astype(np.int64)
        wid[mask] = first + np.clip(idx, 0, nw - 1)

    # Sample positions per group, including the "all" groups.
    groups: dict[tuple[str, str], IntArray] = {}
    frame = pd.DataFrame({"endpoint": endpoint_col, "stage": stage_col})
    for (endpoint, stage), pos in frame.groupby(["endpoint", "stage"], sort=False).indices.items():
        groups[(str(endpoint), str(stage))] = np.asarray(pos, dtype=np.int64)
    for endpoint, pos in frame.groupby("endpoint", sort=False).indices.items():
        groups[(str(endpoint), ALL_STAGES)] = np.asarray(pos, dtype=np.int64)
    for stage, pos in frame.groupby("stage", sort=False).indices.items():
        groups[(ALL_ENDPOINTS, str(stage))] = np.asarray(pos, dtype=np.int64)
    groups[(ALL_ENDPOINTS, ALL_STAGES)] = np.arange(len(samples), dtype=np.int64)

    # Exact point estimates, from harness.analysis.stats.
    total_seconds = float(sum(hi - lo for lo, hi in spans.values()))
    stats: dict[tuple[str, str], dict[str, float]] = {}
    summary = summarize(
        samples,
        [["endpoint", "stage"], ["endpoint"], ["stage"], []],
        seconds=total_seconds,
        spans=spans,
    )  # exact_stats for each grouping, sorting the samples once
    tables = (
        (summary.stats[("endpoint", "stage")], None, None),
        (summary.stats[("endpoint",)], None, ALL_STAGES),
        (summary.stats[("stage",)], ALL_ENDPOINTS, None),
        (summary.stats[()], ALL_ENDPOINTS, ALL_STAGES),
    )
    for table, endpoint_fixed, stage_fixed in tables:
        for rec in table.to_dict("records"):
            key = (
                endpoint_fixed or str(rec["endpoint"]),
                stage_fixed or str(rec["stage"]),
            )
            stats[key] = {
                "count": float(rec["count"]),
                "p50": float(rec["p50"]),
                "p95": float(rec["p95"]),
                "p99": float(rec["p99"]),
                "throughput": float(rec["rps"]),
                "error_rate": float(rec["error_rate"]),
            }
    return _Prepared(
        run=run,
        latency=latency,
        ok=ok,
        wid=wid,
        stages=stages,
        spans=spans,
        stage_windows=stage_windows,
        lengths=np.asarray(lengths, dtype=np.float64),
        groups=groups,
        stats=stats,
    )


# -- the bootstrap ------------------------------------------------------------------------------


def _draw_windows(
    strata: Sequence[tuple[int, int]], n_windows: int, resamples: int, rng: np.random.Generator
) -> IntArray:
    """How often each window is drawn in each replicate: shape (resamples, n_windows).

    Within each stratum (a stage's windows) as many windows are drawn as it has, uniformly
    with replacement.
    """
    counts = np.zeros((resamples, n_windows), dtype=np.int64)
    rows = np.arange(resamples, dtype=np.int64)[:, None]
    for first, last in strata:
        k = last - first
        picks = rng.integers(0, k, size=(resamples, k)) + rows * k
        counts[:, first:last] = np.bincount(picks.ravel(), minlength=resamples * k).reshape(
            resamples, k
        )
    return counts


def weighted_percentiles(
    sorted_values: FloatArray, window: IntArray, draws: IntArray, qs: Sequence[float]
) -> FloatArray:
    """Percentiles (linear, as numpy) of every replicate at once: shape (len(qs), replicates).

    ``sorted_values`` are one group's latencies in ascending order, ``window[i]`` the window of
    ``sorted_values[i]`` and ``draws[b, w]`` how often replicate ``b`` drew window ``w``.
    Replicate ``b``'s sample is every value repeated as often as its window was drawn; its
    percentiles equal ``numpy.percentile`` of that sample, found without building it: the
    sorted values are cut into about sqrt(n) consecutive blocks, one matrix product gives each
    replicate's weight per block, a search finds the block holding each wanted rank, and only
    that block's weights are summed one by one. A replicate that drew no values gets NaN.
    """
    n = len(sorted_values)
    resamples, n_windows = draws.shape
    out = np.full((len(qs), resamples), np.nan)
    if n == 0:
        return out
    q = np.asarray(qs, dtype=np.float64) / 100.0
    size = max(1, math.isqrt(n))
    n_blocks = -(-n // size)
    block_of = np.arange(n, dtype=np.int64) // size
    per_window = np.bincount(block_of * n_windows + window, minlength=n_blocks * n_windows)
    per_block = draws.astype(np.float64) @ per_window.reshape(n_blocks, n_windows).T.astype(
        np.float64
    )  # (resamples, n_blocks): integers, exact in float64
    # One cumulative sum over all replicates' rows keeps every row's sums sorted and apart.
    flat = np.cumsum(per_block.ravel())
    ends = flat[n_blocks - 1 :: n_blocks]
    base = np.concatenate([[0.0], ends[:-1]])
    total = ends - base
    last = np.maximum(total - 1, 0)[:, None]
    virtual = (total - 1)[:, None] * q[None, :]  # numpy's linear method: ranks floor(h), +1
    lo = np.floor(virtual)
    gamma = virtual - lo
    lo_rank = np.clip(lo, 0, last)
    ranks = np.concatenate([lo_rank, np.minimum(lo_rank + 1, last)], axis=1)
    rows = np.arange(resamples, dtype=np.int64)[:, None]
    pos = np.searchsorted(flat, (ranks + base[:, None]).ravel(), side="right")
    block = np.clip(pos.reshape(ranks.shape) - rows * n_blocks, 0, n_blocks - 1)
    before = np.where(
        block > 0, flat[np.maximum(rows * n_blocks + block - 1, 0)] - base[:, None], 0.0
    )
    within = ranks - before  # the wanted rank inside its block
    members = block[..., None] * size + np.arange(size, dtype=np.int64)  # (b, 2q, size)
    inside = members < n
    members = np.minimum(members, n - 1)
    weights = np.where(inside, draws[rows[..., None], window[members]], 0)
    step = (np.cumsum(weights, axis=2) <= within[..., None]).sum(axis=2)
    values = sorted_values[np.minimum(block * size + np.minimum(step, size - 1), n - 1)]
    k = len(q)
    below, above = values[:, :k], values[:, k:]
    result = below + (above - below) * gamma
    result[total == 0] = np.nan
    out[:, :] = result.T
    return out


def _replicates(
    prep: _Prepared, key: tuple[str, str], resamples: int, rng: np.random.Generator
) -> dict[str, FloatArray]:
    """Bootstrap replicates of every metric for one group of one run."""
    pos = prep.groups[key]
    stage = key[1]
    strata = (
        list(prep.stage_windows.values()) if stage == ALL_STAGES else [prep.stage_windows[stage]]
    )
    draws = _draw_windows(strata, prep.n_windows, resamples, rng)
    wid = prep.wid[pos]
    counts = np.bincount(wid, minlength=prep.n_windows).astype(np.float64)
    fails = np.bincount(wid, weights=(~prep.ok[pos]).astype(np.float64), minlength=prep.n_windows)
    drawn = draws.astype(np.float64)
    requests = drawn @ counts
    seconds = drawn @ prep.lengths
    with np.errstate(divide="ignore", invalid="ignore"):
        out: dict[str, FloatArray] = {
            "throughput": np.where(seconds > 0, requests / seconds, np.nan),
            "error_rate": np.where(requests > 0, (drawn @ fails) / requests, np.nan),
        }
    if len(pos) > MAX_BOOTSTRAP_SAMPLES:
        pos = np.sort(rng.choice(pos, MAX_BOOTSTRAP_SAMPLES, replace=False))
    lat = prep.latency[pos]
    order = np.argsort(lat, kind="stable")
    pct = weighted_percentiles(
        lat[order], prep.wid[pos][order], draws, list(LATENCY_METRICS.values())
    )
    for j, name in enumerate(LATENCY_METRICS):
        out[name] = pct[j]
    return out


def _interval(values: FloatArray, confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) < max(10, len(values) // 2):
        return (math.nan, math.nan)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def _verdict(metric: str, lo: float, hi: float, tolerance: float, error_tolerance: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INSUFFICIENT
    if metric in LATENCY_METRICS:
        worse, better = lo > tolerance, hi < -tolerance
    elif metric == "throughput":
        worse, better = hi < -tolerance, lo > tolerance
    else:
        worse, better = lo > error_tolerance, hi < -error_tolerance
    return REGRESSION if worse else IMPROVEMENT if better else NO_CHANGE


def _enough(metric: str, count: float) -> bool:
    if metric in LATENCY_METRICS:
        return count * (1.0 - LATENCY_METRICS[metric] / 100.0) >= MIN_TAIL
    return count >= 1


# -- comparability ------------------------------------------------------------------------------


def _scenario_name(meta: Mapping[str, Any]) -> str | None:
    sc = meta.get("scenario")
    if isinstance(sc, Mapping):
        name = sc.get("name")
        return str(name) if name else None
    return str(sc) if sc else None


def _planned(meta: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    out = []
    for s in meta.get("planned_stages") or []:
        if isinstance(s, Mapping):
            out.append(
                (str(s.get("name")), int(s.get("users") or 0), float(s.get("duration") or 0))
            )
    return out


def _duration(run: Run) -> float:
    if run.approximate:
        return math.nan
    return max(run.end - run.start, 0.0)


def comparability_warnings(base: Run, new: Run) -> list[str]:
    """Reasons the two runs may not be comparable (an empty list when they are)."""
    warnings: list[str] = []
    for label, run in (("base", base), ("new", new)):
        if run.approximate:
            warnings.append(
                f"{label} run {run.name} is approximate (Locust's bucketed aggregates): "
                "only per-endpoint whole-run figures are compared, without confidence intervals"
            )
        warnings.extend(f"{label} run {run.name}: {w}" for w in run.warnings if not run.approximate)
    a, b = _scenario_name(base.meta), _scenario_name(new.meta)
    if a and b and a != b:
        warnings.append(f"different scenarios: base ran {a!r}, new ran {b!r}")
    ta, tb = base.meta.get("target"), new.meta.get("target")
    if ta and tb and ta != tb:
        warnings.append(f"different targets: base {ta}, new {tb}")
    pa_, pb = _planned(base.meta), _planned(new.meta)
    if pa_ and pb and pa_ != pb:
        ua = [u for _, u, _ in pa_]
        ub = [u for _, u, _ in pb]
        if ua != ub:
            warnings.append(f"different user counts per stage: base {ua}, new {ub}")
        else:
            warnings.append("different planned stages (names or durations) between the runs")
    la = (
        (base.meta.get("locust") or {}).get("users")
        if isinstance(base.meta.get("locust"), Mapping)
        else None
    )
    lb = (
        (new.meta.get("locust") or {}).get("users")
        if isinstance(new.meta.get("locust"), Mapping)
        else None
    )
    if la is not None and lb is not None and la != lb:
        warnings.append(f"different user counts: base -u {la}, new -u {lb}")
    da, db = _duration(base), _duration(new)
    if da > 0 and db > 0 and max(da, db) / min(da, db) > DURATION_RATIO_WARN:
        warnings.append(
            f"very different durations: base {da:.0f} s, new {db:.0f} s; "
            "percentiles of runs of different lengths are not like for like"
        )
    if not base.approximate and not new.approximate:
        sa = set(base.samples["stage"].astype(str).unique())
        sb = set(new.samples["stage"].astype(str).unique())
        if sa != sb:
            only_a, only_b = sorted(sa - sb), sorted(sb - sa)
            parts = []
            if only_a:
                parts.append(f"only in base: {', '.join(only_a)}")
            if only_b:
                parts.append(f"only in new: {', '.join(only_b)}")
            warnings.append("different stages (" + "; ".join(parts) + ")")
    return warnings


# -- comparing ----------------------------------------------------------------------------------


def _order_keys(
    keys: Iterable[tuple[str, str]], stage_order: Sequence[str]
) -> list[tuple[str, str]]:
    rank = {s: i for i, s in enumerate(stage_order)}

    def sort_key(k: tuple[str, str]) -> tuple[int, str, int, str]:
        endpoint, stage = k
        return (
            0 if endpoint == ALL_ENDPOINTS else 1,
            endpoint,
            -1 if stage == ALL_STAGES else rank.get(stage, len(rank)),
            stage,
        )

    return sorted(set(keys), key=sort_key)


def _row(
    endpoint: str,
    stage: str,
    metric: str,
    base: float,
    new: float,
    change: float,
    ci: tuple[float, float],
    verdict: str,
    counts: tuple[float, float],
    base_ci: tuple[float, float] = (math.nan, math.nan),
    new_ci: tuple[float, float] = (math.nan, math.nan),
    note: str = "",
) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "stage": stage,
        "metric": metric,
        "unit": UNITS[metric],
        "base": base,
        "new": new,
        "change": change,
        "change_kind": "absolute" if metric == "error_rate" else "relative",
        "ci_low": ci[0],
        "ci_high": ci[1],
        "verdict": verdict,
        "base_count": int(counts[0]),
        "new_count": int(counts[1]),
        "base_ci_low": base_ci[0],
        "base_ci_high": base_ci[1],
        "new_ci_low": new_ci[0],
        "new_ci_high": new_ci[1],
        "note": note,
    }


def _change(metric: str, base: float, new: float) -> float:
    if metric == "error_rate":
        return new - base
    if base == 0 or not (math.isfinite(base) and math.isfinite(new)):
        return math.nan
    return new / base - 1.0


def compare_runs(
    base: Run,
    new: Run,
    *,
    tolerance: float = 0.10,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    error_tolerance: float = 0.01,
) -> Comparison:
    """Compare NEW against BASE per endpoint and stage; see the module docstring for the method.

    ``tolerance`` is the relative change in latency or throughput that matters (0.10 = 10 %),
    ``error_tolerance`` the absolute change in the failed share (0.01 = 1 point),
    ``confidence`` the interval's coverage, ``resamples`` the bootstrap replicates; the same
    ``seed`` gives the same intervals.
    """
    if tolerance < 0 or error_tolerance < 0:
        raise ConfigError("--tolerance must not be negative, e.g. 0.1 for 10%")
    if not 0.5 <= confidence < 1.0:
        raise ConfigError("--confidence must be in [0.5, 1), e.g. 0.95")
    if resamples < 100:
        raise ConfigError("--resamples must be at least 100")
    warnings = comparability_warnings(base, new)
    settings: dict[str, Any] = {
        "tolerance": tolerance,
        "error_tolerance": error_tolerance,
        "confidence": confidence,
        "resamples": resamples,
    }
    if base.approximate or new.approximate:
        rows = _compare_aggregates(base, new, tolerance, error_tolerance)
        return Comparison(base.name, new.name, rows, warnings, approximate=True, **settings)

    pb, pn = _prepare(base), _prepare(new)
    stage_order = list(dict.fromkeys([*pb.stages, *pn.stages]))
    keys = _order_keys([*pb.groups, *pn.groups], stage_order)
    records: list[dict[str, Any]] = []
    for index, key in enumerate(keys):
        endpoint, stage = key
        in_base, in_new = key in pb.groups, key in pn.groups
        sb = pb.stats.get(key, {})
        sn = pn.stats.get(key, {})
        counts = (sb.get("count", 0.0), sn.get("count", 0.0))
        if not (in_base and in_new):
            note = "only in the new run" if in_new else "only in the base run"
            for metric in METRICS:
                records.append(
                    _row(
                        endpoint,
                        stage,
                        metric,
                        sb.get(metric, math.nan),
                        sn.get(metric, math.nan),
                        math.nan,
                        (math.nan, math.nan),
                        INSUFFICIENT,
                        counts,
                        note=note,
                    )
                )
            continue
        rb = _replicates(pb, key, resamples, np.random.default_rng([seed, 0, index]))
        rn = _replicates(pn, key, resamples, np.random.default_rng([seed, 1, index]))
        for metric in METRICS:
            vb, vn = sb[metric], sn[metric]
            with np.errstate(divide="ignore", invalid="ignore"):
                if metric == "error_rate":
                    deltas = rn[metric] - rb[metric]
                else:
                    deltas = rn[metric] / rb[metric] - 1.0
            ci = _interval(deltas, confidence)
            note = ""
            if not (_enough(metric, counts[0]) and _enough(metric, counts[1])):
                verdict = INSUFFICIENT
                note = f"fewer than {MIN_TAIL} requests beyond {metric} in a run"
            else:
                verdict = _verdict(metric, ci[0], ci[1], tolerance, error_tolerance)
            records.append(
                _row(
                    endpoint,
                    stage,
                    metric,
                    vb,
                    vn,
                    _change(metric, vb, vn),
                    ci,
                    verdict,
                    counts,
                    _interval(rb[metric], confidence),
                    _interval(rn[metric], confidence),
                    note,
                )
            )
    rows = pd.DataFrame.from_records(records, columns=list(ROW_COLUMNS))
    return Comparison(
        base.name,
        new.name,
        rows,
        warnings,
        base_latency=pb.latency,
        new_latency=pn.latency,
        **settings,
    )


def _aggregates(run: Run) -> pd.DataFrame:
    """Per-endpoint whole-run figures (endpoint, count, p50, p95, p99, throughput, error_rate)."""
    cols = ["endpoint", "count", "p50", "p95", "p99", "throughput", "error_rate"]
    if not run.approximate:
        seconds = max(run.end - run.start, 1e-9)
        per = exact_stats(run.samples, ["endpoint"], seconds=seconds)
        total = exact_stats(run.samples, [], seconds=seconds)
        total.insert(0, "endpoint", ALL_ENDPOINTS)
        frame = pd.concat([total, per], ignore_index=True)
        frame = frame.rename(columns={"rps": "throughput"})
        return frame[cols]
    agg = run.aggregates if run.aggregates is not None else pd.DataFrame()
    out = pd.DataFrame()
    req_type = agg.get("request_type", pd.Series("", index=agg.index)).fillna("").astype(str)
    name = agg.get("name", pd.Series("", index=agg.index)).fillna("").astype(str)
    is_total = (name == "Aggregated") & (req_type == "")
    out["endpoint"] = np.where(is_total, ALL_ENDPOINTS, (req_type + " " + name).str.strip())
    count = pd.to_numeric(agg.get("count", pd.Series(np.nan, index=agg.index)), errors="coerce")
    fails = pd.to_numeric(agg.get("failures", pd.Series(np.nan, index=agg.index)), errors="coerce")
    out["count"] = count
    for col in ("p50", "p95", "p99"):
        out[col] = pd.to_numeric(agg.get(col, pd.Series(np.nan, index=agg.index)), errors="coerce")
    out["throughput"] = pd.to_numeric(
        agg.get("rps", pd.Series(np.nan, index=agg.index)), errors="coerce"
    )
    out["error_rate"] = fails / count.where(count > 0)
    return out[cols]


def _compare_aggregates(
    base: Run, new: Run, tolerance: float, error_tolerance: float
) -> pd.DataFrame:
    """Whole-run per-endpoint comparison of point estimates (no intervals: approximate input)."""
    a = _aggregates(base).set_index("endpoint")
    b = _aggregates(new).set_index("endpoint")
    endpoints = _order_keys([(e, ALL_STAGES) for e in [*a.index, *b.index]], [])
    records: list[dict[str, Any]] = []
    for endpoint, _ in endpoints:
        in_a, in_b = endpoint in a.index, endpoint in b.index
        for metric in METRICS:
            va = float(a.at[endpoint, metric]) if in_a else math.nan
            vb = float(b.at[endpoint, metric]) if in_b else math.nan
            change = _change(metric, va, vb)
            counts = (
                float(a.at[endpoint, "count"]) if in_a else 0.0,
                float(b.at[endpoint, "count"]) if in_b else 0.0,
            )
            verdict = (
                _verdict(metric, change, change, tolerance, error_tolerance)
                if math.isfinite(change)
                else INSUFFICIENT
            )
            records.append(
                _row(
                    endpoint,
                    ALL_STAGES,
                    metric,
                    va,
                    vb,
                    change,
                    (math.nan, math.nan),
                    verdict,
                    (np.nan_to_num(counts[0]), np.nan_to_num(counts[1])),
                    note="approximate: point estimate, no interval",
                )
            )
    return pd.DataFrame.from_records(records, columns=list(ROW_COLUMNS))


# -- writing ------------------------------------------------------------------------------------


def _method_text(c: Comparison) -> str:
    if c.approximate:
        return (
            "At least one run is approximate (Locust's bucketed aggregates), so only whole-run "
            "figures per endpoint are compared, as point estimates without intervals; a change "
            f"beyond {c.tolerance:.0%} (errors: {c.error_tolerance * 100:.1f} points) counts."
        )
    return (
        f"Percentiles: {PERCENTILE_DEFINITION}, over every request. Intervals: "
        f"{c.confidence:.0%} percentile intervals from a stratified block bootstrap "
        f"({c.resamples} replicates) that resamples {WINDOW_S:g}-second windows within each "
        "stage, so neighbouring requests (which are alike) stay together. A latency "
        f"regression needs the whole interval above +{c.tolerance:.0%}, a throughput "
        f"regression the whole interval below -{c.tolerance:.0%}, an error-rate regression "
        f"the whole interval above +{c.error_tolerance * 100:.1f} points; improvements "
        f"mirror them. Exit code {EXIT_REGRESSION} when any row regressed."
    )


def _table_rows(rows: pd.DataFrame) -> list[list[str]]:
    out = []
    for r in rows.to_dict("records"):
        out.append(
            [
                str(r["endpoint"]),
                str(r["stage"]),
                str(r["metric"]),
                _fmt_value(r["metric"], r["base"]),
                _fmt_value(r["metric"], r["new"]),
                _fmt_change(r["change_kind"], r["change"]),
                _fmt_ci(r),
                str(r["verdict"]),
                f"{r['base_count']:,} / {r['new_count']:,}",
            ]
        )
    return out


TABLE_COLUMNS = (
    "endpoint",
    "stage",
    "metric",
    "base",
    "new",
    "change",
    "CI of change",
    "verdict",
    "requests (base / new)",
)


def _headline(c: Comparison) -> str:
    n = c.counts
    if n[REGRESSION]:
        head = f"REGRESSION: {n[REGRESSION]} row(s) regressed beyond {c.tolerance:.0%}"
    else:
        head = f"No regression beyond {c.tolerance:.0%}"
    return (
        f"{head}; {n[IMPROVEMENT]} improved, {n[NO_CHANGE]} without significant change, "
        f"{n[INSUFFICIENT]} with insufficient data. Exit code {c.exit_code}."
    )


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def comparison_markdown(c: Comparison) -> str:
    """The comparison as Markdown."""
    lines = [f"# Comparison: {c.base} -> {c.new}", "", f"**{_headline(c)}**", ""]
    lines += [_method_text(c), ""]
    if c.warnings:
        lines += ["## Warnings: these runs may not be comparable", ""]
        lines += [f"- {_md_escape(w)}" for w in c.warnings] + [""]
    flagged = c.rows[c.rows["verdict"].isin([REGRESSION, IMPROVEMENT])]
    for title, verdict in (("Regressions", REGRESSION), ("Improvements", IMPROVEMENT)):
        part = flagged[flagged["verdict"] == verdict]
        lines += [f"## {title}", ""]
        lines += [f"- {_md_escape(_describe(r))}" for r in part.to_dict("records")] or ["- none"]
        lines.append("")
    lines += ["## All rows", ""]
    lines.append("| " + " | ".join(TABLE_COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in TABLE_COLUMNS) + "|")
    for row in _table_rows(c.rows):
        lines.append("| " + " | ".join(_md_escape(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _chart_p95(c: Comparison) -> str:
    rows = c.rows[(c.rows["metric"] == "p95") & (c.rows["stage"] == ALL_STAGES)]
    if rows.empty:
        return ""
    labels = rows["endpoint"].tolist()
    y = np.arange(len(labels))
    fig, ax = new_figure(10.0, max(2.4, 0.42 * len(labels) + 1.2))
    h = 0.38
    for offset, side, color in ((-h / 2, "base", "#8c959f"), (h / 2, "new", "#0969da")):
        vals = rows[side].to_numpy(dtype=float)
        lo = rows[f"{side}_ci_low"].to_numpy(dtype=float)
        hi = rows[f"{side}_ci_high"].to_numpy(dtype=float)
        err = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)])
        err = np.nan_to_num(err)
        ax.barh(y + offset, vals, height=h, color=color, label=f"{side}", xerr=err, capsize=3)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("p95 latency (ms), whole run")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return figure_svg(
        fig, f"p95 per endpoint, base vs new, with each run's {c.confidence:.0%} bootstrap interval"
    )


_VERDICT_COLORS = {
    REGRESSION: "#cf222e",
    IMPROVEMENT: "#1a7f37",
    NO_CHANGE: "#57606a",
    INSUFFICIENT: "#afb8c1",
}


def _chart_changes(c: Comparison) -> str:
    rows = c.rows[
        c.rows["metric"].isin(["p50", "p95", "p99"]) & np.isfinite(c.rows["change"].astype(float))
    ]
    rows = rows[(rows["stage"] == ALL_STAGES) | (rows["endpoint"] == ALL_ENDPOINTS)]
    if rows.empty:
        return ""
    labels = [
        f"{e} @ {s} {m}"
        for e, s, m in zip(rows["endpoint"], rows["stage"], rows["metric"], strict=True)
    ]
    y = np.arange(len(labels))
    fig, ax = new_figure(10.0, max(2.6, 0.26 * len(labels) + 1.2))
    change = rows["change"].to_numpy(dtype=float) * 100
    lo = rows["ci_low"].to_numpy(dtype=float) * 100
    hi = rows["ci_high"].to_numpy(dtype=float) * 100
    err = np.nan_to_num(np.vstack([np.clip(change - lo, 0, None), np.clip(hi - change, 0, None)]))
    verdicts = rows["verdict"].to_numpy()
    for verdict, color in _VERDICT_COLORS.items():
        m = verdicts == verdict
        if m.any():
            ax.errorbar(
                change[m],
                y[m],
                xerr=err[:, m],
                fmt="o",
                color=color,
                capsize=3,
                markersize=4,
                label=verdict,
            )
    tol = c.tolerance * 100
    ax.axvspan(-tol, tol, color="#d0d7de", alpha=0.35, label=f"±{c.tolerance:.0%} tolerance")
    ax.axvline(0, color="#1b1f24", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("latency change new vs base (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return figure_svg(
        fig,
        "Relative latency change with its interval (red: regression, green: improvement)",
    )


def _chart_cdf(c: Comparison) -> str:
    if c.base_latency is None or c.new_latency is None:
        return ""
    fig, ax = new_figure(10.0, 3.6)
    probs = np.linspace(0.0, 1.0, 801)
    for values, label, color in (
        (c.base_latency, f"base: {c.base}", "#8c959f"),
        (c.new_latency, f"new: {c.new}", "#0969da"),
    ):
        if len(values) == 0:
            continue
        q = np.quantile(values, probs)
        ax.plot(np.maximum(q, 1e-3), probs, label=label, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of requests at or below")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return figure_svg(fig, "Latency CDF of every request, base vs new")


def _chart_throughput(c: Comparison) -> str:
    rows = c.rows[
        (c.rows["metric"] == "throughput")
        & (c.rows["endpoint"] == ALL_ENDPOINTS)
        & (c.rows["stage"] != ALL_STAGES)
    ]
    if rows.empty:
        return ""
    labels = rows["stage"].tolist()
    x = np.arange(len(labels))
    fig, ax = new_figure(10.0, 3.2)
    w = 0.38
    for offset, side, color in ((-w / 2, "base", "#8c959f"), (w / 2, "new", "#0969da")):
        vals = rows[side].to_numpy(dtype=float)
        lo = rows[f"{side}_ci_low"].to_numpy(dtype=float)
        hi = rows[f"{side}_ci_high"].to_numpy(dtype=float)
        err = np.nan_to_num(np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)]))
        ax.bar(x + offset, vals, width=w, color=color, label=side, yerr=err, capsize=3)
    ax.set_xticks(x, labels)
    ax.set_ylabel("throughput (requests/s)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return figure_svg(fig, "Throughput per stage, base vs new")


def comparison_html(c: Comparison) -> str:
    """The comparison as one self-contained HTML page."""
    cls = "fail" if c.exit_code else "pass"
    sections = [
        f'<p class="{cls}">{escape(_headline(c))}</p>',
        f'<p class="note">{escape(_method_text(c))}</p>',
    ]
    if c.warnings:
        items = "".join(f'<li class="warn">{escape(w)}</li>' for w in c.warnings)
        sections.append(f"<h2>Warnings: these runs may not be comparable</h2><ul>{items}</ul>")
    flagged = c.rows[c.rows["verdict"].isin([REGRESSION, IMPROVEMENT])]
    sections.append("<h2>Regressions and improvements</h2>")
    if flagged.empty:
        sections.append("<p>None: every change is within the tolerance or the noise.</p>")
    else:
        classes = ["fail" if v == REGRESSION else "pass" for v in flagged["verdict"]]
        sections.append(table_html(TABLE_COLUMNS, _table_rows(flagged), left=3, classes=classes))
    charts = [_chart_p95(c), _chart_changes(c), _chart_throughput(c), _chart_cdf(c)]
    sections.append("<h2>Charts</h2>" + "".join(ch for ch in charts if ch))
    classes = [
        "fail" if v == REGRESSION else "pass" if v == IMPROVEMENT else "" for v in c.rows["verdict"]
    ]
    sections.append("<h2>All rows</h2>")
    sections.append(table_html(TABLE_COLUMNS, _table_rows(c.rows), left=3, classes=classes))
    return page(f"Comparison: {c.base} -> {c.new}", sections)


def write_comparison(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write ``compare.md`` and ``compare.html`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "compare.md", "html": out_dir / "compare.html"}
    paths["md"].write_text(comparison_markdown(comparison), encoding="utf-8")
    paths["html"].write_text(comparison_html(comparison), encoding="utf-8")
    return paths
