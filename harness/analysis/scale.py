"""Scaling reports: throughput and latency against concurrency, a USL fit, users under the SLA.

Points (one per concurrency level N, the number of Locust users):

* from a **stress run** (run.json ``stress`` set, or stages named ``step-1``..``step-N``): one
  point per step, N from ``planned_stages`` (else the most common ``users`` value of the
  step's samples);
* from **several runs** at different user counts: one point per run, from its longest stage
  with users (a steady run's hold stage), N as above.

A point leaves out the start of its stage while users are still being spawned (``|users -
previous users| / spawn_rate`` seconds, at most half the stage; without a plan, the samples
sent before ``users`` reached the step's count). Throughput X(N) is requests sent in the rest
of the stage per second; latency percentiles (exact, :mod:`harness.analysis.stats`) and error
rate come from the same requests.

The **Universal Scalability Law** (Gunther) models X(N) = lam*N / (1 + sigma*(N-1) +
kappa*N*(N-1)): ``lam`` the throughput of one user, ``sigma`` contention (the serial share),
``kappa`` coherency (crosstalk); throughput peaks at N* = sqrt((1 - sigma) / kappa).
:func:`fit_usl` fits it by bounded least squares on relative residuals
(``scipy.optimize.curve_fit``, trust-region reflective, sigma in [0, 1], kappa >= 0, lam > 0)
from several starting points, the first
from the model's linear form N/X = 1/lam + (sigma/lam)(N-1) + (kappa/lam)N(N-1).

**Users under the SLA** (:func:`max_users_under_sla`), for a latency or error SLA:

* *measured*: the largest measured N below the first measured level that breaks the SLA (a
  later level passing again does not count: capacity planning wants the safe side);
* *predicted*: when a measured level breaks it, the N where the SLA metric crosses the
  threshold by linear interpolation between the last passing and the first failing level;
  when every measured level passes, an extrapolation with the USL fit and Little's law: in a
  closed system of N users with think time Z, the mean response time is R(N) = N/X(N) - Z;
  Z is estimated as the median of N/X_fit(N) - R over the measured levels, and the SLA
  metric is taken to grow in proportion to R(N) from the largest measured level. The method
  used is stated with the figure.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import curve_fit, least_squares  # type: ignore[import-untyped]

from harness.analysis.html import escape, figure_svg, new_figure, page, table_html
from harness.analysis.load import Run
from harness.analysis.stats import PERCENTILE_DEFINITION, QUANTILES, exact_stats
from harness.errors import ConfigError
from harness.sla import LATENCY_METRICS, Sla, format_value, parse_sla

SCHEMA = "harness.scale/1"
POOR_FIT_R2 = 0.9
MIN_POINTS = 4
EXTRAPOLATE_UP_TO = 10.0  # predicted limits are searched up to this multiple of the largest N

FloatArray = npt.NDArray[np.float64]

POINT_COLUMNS = (
    "run",
    "stage",
    "users",
    "seconds",
    "requests",
    "failures",
    "throughput",
    "response_s",
    "scope",
    "error_rate",
    "mean",
    *QUANTILES,
    "max",
)
_STEP = re.compile(r"^step-\d+$")


class ScaleError(ConfigError):
    """Runs or an SLA that a scaling report cannot use; the message says why and the fix."""


# -- the Universal Scalability Law ------------------------------------------------------------


def usl(n: FloatArray, sigma: float, kappa: float, lam: float) -> FloatArray:
    """X(N) = lam*N / (1 + sigma*(N-1) + kappa*N*(N-1))."""
    n = np.asarray(n, dtype=np.float64)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


@dataclass(frozen=True)
class UslFit:
    """A USL fit: parameters, quality, the peak and what to be wary of."""

    sigma: float
    kappa: float
    lam: float
    r2: float
    peak_n: float  # sqrt((1 - sigma) / kappa); inf when kappa == 0
    points: int = 0
    max_n: float = 0.0  # largest measured N
    stderr: tuple[float, float, float] | None = None  # of sigma, kappa, lam (None: no dof)
    warnings: tuple[str, ...] = ()

    def throughput(self, n: FloatArray | float) -> FloatArray:
        return usl(np.asarray(n, dtype=np.float64), self.sigma, self.kappa, self.lam)

    @property
    def peak_throughput(self) -> float:
        """X(N*); with no peak (kappa == 0) the ceiling lam/sigma it approaches (inf if none)."""
        if math.isfinite(self.peak_n):
            return float(self.throughput(self.peak_n))
        return self.lam / self.sigma if self.sigma > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lam": self.lam,
            "r2": self.r2,
            "peak_n": _json_float(self.peak_n),
            "peak_throughput": _json_float(self.peak_throughput),
            "points": self.points,
            "max_n": self.max_n,
            "stderr": None
            if self.stderr is None
            else dict(zip(("sigma", "kappa", "lam"), self.stderr, strict=True)),
            "warnings": list(self.warnings),
        }


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _starts(n: FloatArray, x: FloatArray) -> list[tuple[float, float, float]]:
    """Starting points: the linearised model's solution, then a small grid around it."""
    design = np.column_stack([np.ones_like(n), n - 1.0, n * (n - 1.0)])
    coef, *_ = np.linalg.lstsq(design, n / x, rcond=None)
    a, b, c = (float(v) for v in coef)
    lam0 = 1.0 / a if a > 0 else float(np.max(x / n))
    sigma0 = min(max(b * lam0, 1e-4), 0.99)
    nmax = float(n.max())
    kappa0 = max(c * lam0, 1e-4 / max(nmax * nmax, 1.0))
    starts = [(sigma0, kappa0, lam0)]
    lam1 = float(x[np.argmin(n)] / n.min())
    for s in (0.02, 0.2):
        for k in (0.1, 10.0):
            starts.append((s, k / max(nmax * nmax, 1.0), lam1))
    return starts


def fit_usl(n: Sequence[float] | FloatArray, x: Sequence[float] | FloatArray) -> UslFit:
    """Fit the USL to concurrency levels ``n`` and throughputs ``x`` (requests/s).

    Residuals are relative to each measured throughput (``sigma=x`` in ``curve_fit``): the
    noise of a throughput measurement grows with it, and a plain fit would let the busiest
    levels decide sigma. R^2 is the usual one, on throughput itself.

    Needs at least three distinct levels (three parameters). With exactly three the fit is
    exactly determined and has no degrees of freedom left for standard errors; it is done
    with the same bounded least squares (:func:`scipy.optimize.least_squares`) that
    ``curve_fit`` uses and flagged as too few points, as is any fit with R^2 < 0.9.
    """
    nn = np.asarray(n, dtype=np.float64)
    xx = np.asarray(x, dtype=np.float64)
    if nn.shape != xx.shape or nn.ndim != 1:
        raise ScaleError("concurrency and throughput must be two lists of the same length")
    good = np.isfinite(nn) & np.isfinite(xx) & (nn > 0) & (xx > 0)
    nn, xx = nn[good], xx[good]
    if len(np.unique(nn)) < 3:
        raise ScaleError(
            f"a USL fit needs throughput at 3 or more user counts (got {len(np.unique(nn))}); "
            "run a stress scenario or more runs at different users"
        )
    scale = float(xx.max())  # fit in units of the best throughput: well conditioned
    xs = xx / scale
    lower, upper = [0.0, 0.0, 1e-12], [1.0, np.inf, np.inf]
    dof = len(nn) - 3
    best: tuple[float, FloatArray, FloatArray | None] | None = None
    for p0 in _starts(nn, xs):
        start = np.clip(np.asarray(p0), [0.0, 0.0, 1e-9], [1.0, np.inf, np.inf])
        try:
            if dof > 0:
                popt, pcov = curve_fit(
                    usl,
                    nn,
                    xs,
                    p0=start,
                    sigma=xs,  # relative residuals
                    bounds=(lower, upper),
                    method="trf",
                    maxfev=5000,
                )
                cov: FloatArray | None = np.asarray(pcov, dtype=np.float64)
            else:
                res = least_squares(
                    lambda p: (usl(nn, p[0], p[1], p[2]) - xs) / xs,
                    start,
                    bounds=(lower, upper),
                    method="trf",
                    max_nfev=5000,
                )
                if not res.success:
                    continue
                popt, cov = res.x, None
        except RuntimeError:  # the optimiser did not converge from this start
            continue
        cost = float(np.sum(((usl(nn, *popt) - xs) / xs) ** 2))
        if best is None or cost < best[0]:
            best = (cost, np.asarray(popt, dtype=np.float64), cov)
    if best is None:
        raise ScaleError("the USL fit did not converge from any starting point")
    _, popt, cov = best
    cost = float(np.sum((usl(nn, *popt) - xs) ** 2))
    sigma, kappa, lam_s = (float(v) for v in popt)
    lam = lam_s * scale
    max_n = float(nn.max())
    if kappa * max_n * max_n < 1e-9:  # the optimiser stays strictly inside its bounds
        kappa = 0.0
    ss_tot = float(np.sum((xs - xs.mean()) ** 2))
    r2 = 1.0 - cost / ss_tot if ss_tot > 0 else (1.0 if cost < 1e-12 else 0.0)
    peak = math.sqrt((1.0 - sigma) / kappa) if kappa > 0 else math.inf
    stderr = None
    if cov is not None and np.all(np.isfinite(np.diag(cov))):
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        stderr = (float(se[0]), float(se[1]), float(se[2] * scale))
    warnings: list[str] = []
    if len(nn) < MIN_POINTS:
        warnings.append(
            f"only {len(nn)} points for 3 parameters: the USL fit is barely determined; "
            f"measure at least {MIN_POINTS} user counts"
        )
    if r2 < POOR_FIT_R2:
        warnings.append(
            f"poor USL fit (R^2 = {r2:.2f} < {POOR_FIT_R2}): throughput does not follow the "
            "model (noisy steps, errors, or a limit outside the system under test); "
            "treat the peak and predictions with caution"
        )
    if math.isfinite(peak) and peak > max_n:
        warnings.append(
            f"the peak N* = {peak:.0f} lies beyond the largest measured N ({max_n:.0f}): "
            "an extrapolation"
        )
    return UslFit(sigma, kappa, lam, r2, peak, len(nn), max_n, stderr, tuple(warnings))


# -- points ----------------------------------------------------------------------------------


def _is_stress(run: Run) -> bool:
    if run.meta.get("stress"):
        return True
    names = [s[0] for s in run.stage_spans]
    return bool(names) and all(_STEP.match(n) for n in names)


def _scope_mask(samples: pd.DataFrame, scope: str | None) -> pd.Series:
    if scope is None or scope == "*":
        return pd.Series(True, index=samples.index)
    return (samples["endpoint"] == scope) | (samples["name"] == scope)


def _point(
    run: Run, stage: str, users: int, start: float, end: float, scope: str | None
) -> dict[str, Any] | None:
    s = run.samples
    t = s["start_time"]
    sel = s.loc[(s["stage"] == stage) & (t >= start) & (t < end)]
    seconds = end - start
    if sel.empty or seconds <= 0:
        return None
    total = exact_stats(sel, [], seconds=seconds).iloc[0]
    row: dict[str, Any] = {
        "run": run.name,
        "stage": stage,
        "users": int(users),
        "seconds": seconds,
        "requests": int(total["count"]),
        "failures": int(total["failures"]),
        "throughput": float(total["rps"]),
        "response_s": float(total["mean"]) / 1000.0,
        "scope": scope or "all",
    }
    scoped = sel.loc[_scope_mask(sel, scope)]
    names = ["error_rate", "mean", *QUANTILES, "max"]
    if scoped.empty:
        row.update({k: math.nan for k in names})
    elif scope == "*":  # the worst endpoint for each figure
        per = exact_stats(scoped, ["endpoint"], seconds=seconds)
        row.update({k: float(per[k].max()) for k in names})
    else:
        st = exact_stats(scoped, [], seconds=seconds).iloc[0]
        row.update({k: float(st[k]) for k in names})
    return row


def _stage_users(run: Run, stage: str) -> int | None:
    for s in run.meta.get("planned_stages") or []:
        if isinstance(s, dict) and s.get("name") == stage and s.get("users") is not None:
            return int(s["users"])
    users = run.samples.loc[run.samples["stage"] == stage, "users"]
    return int(users.mode().iloc[0]) if not users.empty else None


def _steady_start(run: Run, stage: str, start: float, end: float, users: int) -> float:
    """When the stage's users were all running: its start plus the spawn time."""
    planned = [s for s in run.meta.get("planned_stages") or [] if isinstance(s, dict)]
    names = [s.get("name") for s in planned]
    if stage in names:
        i = names.index(stage)
        previous = int(planned[i - 1].get("users") or 0) if i > 0 else 0
        rate = float(planned[i].get("spawn_rate") or 0.0)
        ramp = abs(users - previous) / rate if rate > 0 else 0.0
        return start + min(ramp, 0.5 * (end - start))
    s = run.samples
    reached = s.loc[(s["stage"] == stage) & (s["users"] >= users), "start_time"]
    first = float(reached.min()) if not reached.empty else start
    return min(max(first, start), start + 0.5 * (end - start))


def scale_points(runs: Sequence[Run], scope: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per concurrency level (see the module docstring) and warnings.

    Throughput and ``response_s`` (mean latency in seconds) cover every request; the latency
    and error columns cover ``scope`` (None: every request; ``"*"``: the worst endpoint per
    column; else an endpoint like ``GET /x`` or a request name).
    """
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    for run in runs:
        if run.approximate:
            warnings.append(
                f"{run.name}: Locust aggregates carry no per-stage data or user count; skipped"
            )
            continue
        warnings.extend(f"{run.name}: {w}" for w in run.warnings)
        spans = run.stage_spans
        if _is_stress(run):
            chosen = spans
        else:
            planned = {
                s.get("name"): s
                for s in run.meta.get("planned_stages") or []
                if isinstance(s, dict)
            }
            with_users = [sp for sp in spans if (_stage_users(run, sp[0]) or 0) > 0]
            if not with_users:
                warnings.append(f"{run.name}: no stage with users; skipped")
                continue
            longest = max(
                with_users,
                key=lambda sp: (
                    float(planned.get(sp[0], {}).get("duration") or (sp[2] - sp[1])),
                    _stage_users(run, sp[0]) or 0,
                ),
            )
            chosen = [longest]
        for stage, start, end in chosen:
            users = _stage_users(run, stage)
            if not users:
                continue
            steady = _steady_start(run, stage, start, end, users)
            point = _point(run, stage, users, steady, end, scope)
            if point is None:
                warnings.append(f"{run.name}: stage {stage} has no requests; left out")
            else:
                rows.append(point)
    frame = pd.DataFrame.from_records(rows, columns=list(POINT_COLUMNS))
    frame = frame.sort_values(["users", "run"], kind="stable").reset_index(drop=True)
    if scope not in (None, "*") and not frame.empty and frame["p50"].isna().all():
        raise ScaleError(
            f"no requests match the SLA scope {scope!r}; name an endpoint like 'GET /x'"
        )
    return frame, warnings


# -- users under the SLA ---------------------------------------------------------------------


@dataclass(frozen=True)
class SlaCapacity:
    """How many users keep an SLA: measured and predicted, and how each was found."""

    sla: str
    measured: int | None  # largest measured N below the first failing level
    first_failing: int | None  # the first measured N that broke the SLA
    predicted: float | None
    method: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "sla": self.sla,
            "measured": self.measured,
            "first_failing": self.first_failing,
            "predicted": self.predicted,
            "method": self.method,
            "note": self.note,
        }


def _sla_column(sla: Sla) -> str:
    if sla.metric in LATENCY_METRICS:
        return sla.metric
    if sla.metric == "errors":
        return "error_rate"
    raise ScaleError(
        f"SLA {sla.text!r}: users under an SLA need a latency or error SLA "
        "(e.g. p95<500ms, errors<1%), not rps"
    )


def _think_time(points: pd.DataFrame, fit: UslFit) -> float:
    n = points["users"].to_numpy(dtype=np.float64)
    r = points["response_s"].to_numpy(dtype=np.float64)
    z = n / fit.throughput(n) - r
    z = z[np.isfinite(z)]
    return max(float(np.median(z)), 0.0) if len(z) else 0.0


def max_users_under_sla(
    points: pd.DataFrame, sla: str | Sla = "p95<500ms", fit: UslFit | None = None
) -> SlaCapacity:
    """Measured and predicted largest user count keeping ``sla`` (see the module docstring)."""
    parsed = parse_sla(sla) if isinstance(sla, str) else sla
    column = _sla_column(parsed)
    if parsed.op not in ("<", "<="):
        raise ScaleError(f"SLA {parsed.text!r}: a capacity SLA is an upper limit (< or <=)")
    scope = parsed.scope or "all"
    if not points.empty and set(points["scope"]) != {scope}:
        raise ScaleError(
            f"SLA {parsed.text!r} is about {scope!r} but the points were measured for "
            f"{sorted(set(points['scope']))}; build them with scale_points(runs, scope=...)"
        )
    if points.empty:
        return SlaCapacity(parsed.text, None, None, None, "no points")
    # One value per user count (several runs at the same N: their worst).
    per_n = points.groupby("users", sort=True)[column].max()
    ns = per_n.index.to_numpy(dtype=np.float64)
    vals = per_n.to_numpy(dtype=np.float64)
    passing = np.array([parsed.passes(v) if math.isfinite(v) else False for v in vals])
    failing_at = np.flatnonzero(~passing)
    if len(failing_at):
        i = int(failing_at[0])
        first_fail = int(ns[i])
        if i == 0:
            return SlaCapacity(
                parsed.text,
                None,
                first_fail,
                None,
                "none",
                f"the SLA already fails at the smallest measured level ({first_fail} users)",
            )
        n0, n1, v0, v1 = ns[i - 1], ns[i], vals[i - 1], vals[i]
        crossing = n0 + (parsed.threshold - v0) * (n1 - n0) / (v1 - v0) if v1 != v0 else n0
        return SlaCapacity(
            parsed.text,
            int(n0),
            first_fail,
            float(min(max(crossing, n0), n1)),
            f"interpolated linearly between {n0:.0f} and {n1:.0f} users",
        )
    measured = int(ns[-1])
    if fit is None or column == "error_rate":
        return SlaCapacity(
            parsed.text,
            measured,
            None,
            None,
            "none",
            "held at every measured level; no model to extrapolate "
            + ("error rates" if column == "error_rate" else "without a USL fit"),
        )
    z = _think_time(points, fit)
    n_last, m_last = ns[-1], vals[-1]

    def response(n: FloatArray) -> FloatArray:
        return np.maximum(n / fit.throughput(n) - z, 1e-9)

    grid = np.arange(n_last, n_last * EXTRAPOLATE_UP_TO + 1.0, max(n_last / 2000.0, 0.25))
    model = m_last * response(grid) / response(np.array([n_last]))[0]
    over = np.flatnonzero(~np.array([parsed.passes(float(v)) for v in model]))
    method = (
        f"extrapolated with the USL fit and Little's law (think time Z = {z * 1000:.0f} ms, "
        f"{parsed.metric} in proportion to R(N) = N/X(N) - Z from {n_last:.0f} users)"
    )
    if not len(over):
        return SlaCapacity(
            parsed.text,
            measured,
            None,
            None,
            method,
            f"the model keeps the SLA up to {EXTRAPOLATE_UP_TO:g}x the largest measured level",
        )
    j = int(over[0])
    predicted = float(grid[j - 1]) if j > 0 else float(n_last)
    return SlaCapacity(parsed.text, measured, None, predicted, method)


# -- the report ------------------------------------------------------------------------------


@dataclass
class ScaleResult:
    """Everything a scaling report shows."""

    runs: list[str]
    sla: str
    points: pd.DataFrame
    fit: UslFit | None
    capacity: SlaCapacity
    warnings: list[str] = field(default_factory=list)
    think_time_s: float | None = None
    subject: str = "The system under test"

    @property
    def summary(self) -> str:
        return summary_text(self)

    def as_dict(self) -> dict[str, Any]:
        points = self.points.astype(object).where(self.points.notna(), None)
        return {
            "schema": SCHEMA,
            "runs": self.runs,
            "sla": self.sla,
            "percentile_definition": PERCENTILE_DEFINITION,
            "points": points.to_dict("records"),
            "fit": None if self.fit is None else self.fit.as_dict(),
            "capacity": self.capacity.as_dict(),
            "think_time_s": self.think_time_s,
            "summary": self.summary,
            "warnings": self.warnings,
        }


def _sla_words(sla: Sla) -> str:
    if sla.metric in LATENCY_METRICS and sla.threshold >= 1000 and sla.threshold % 100 == 0:
        value = f"{sla.threshold / 1000:g} s"
    else:
        value = format_value(sla.metric, sla.threshold).replace(".00 ms", " ms").replace(",", "")
    scope = (
        ""
        if sla.scope is None
        else (" on every endpoint" if sla.scope == "*" else f" on {sla.scope}")
    )
    metric = "error rate" if sla.metric == "errors" else sla.metric
    return f"{metric} {sla.op} {value}{scope}"


def summary_text(result: ScaleResult) -> str:
    """A plain-language paragraph a capacity planner can paste into a plan."""
    sla = parse_sla(result.sla)
    words = _sla_words(sla)
    cap = result.capacity
    who = result.subject
    parts: list[str] = []
    if result.points.empty:
        return f"{who}: no measured points; nothing to say."
    top = int(result.points["users"].max())
    if cap.first_failing is not None and cap.measured is None:
        parts.append(
            f"{who} does not hold {words} even at {cap.first_failing} users, "
            "the smallest level measured."
        )
    elif cap.first_failing is not None:
        pred = f" (about {cap.predicted:.0f} by interpolation)" if cap.predicted else ""
        parts.append(
            f"{who} holds {cap.measured} users under {words}{pred}; "
            f"at {cap.first_failing} users it no longer does."
        )
    else:
        pred = (
            f" The model predicts it holds up to about {cap.predicted:.0f} users."
            if cap.predicted
            else ""
        )
        parts.append(f"{who} holds {words} at every measured level, up to {top} users.{pred}")
    fit = result.fit
    if fit is not None:
        quality = f"USL fit R^2 = {fit.r2:.2f}"
        if math.isfinite(fit.peak_n):
            peak = f"{fit.peak_n:.0f} users at {fit.peak_throughput:.0f} rps"
            if fit.peak_n <= fit.max_n:
                parts.append(f"Throughput peaks near {peak} ({quality}).")
            else:
                parts.append(
                    f"Throughput is still rising at {top} users; the fit puts the peak near "
                    f"{peak} (an extrapolation; {quality})."
                )
        else:
            ceiling = (
                f"levels off toward {fit.peak_throughput:.0f} rps"
                if math.isfinite(fit.peak_throughput)
                else "grows linearly"
            )
            parts.append(f"Throughput shows no peak in the fit: it {ceiling} ({quality}).")
        parts.append(
            f"Contention sigma = {fit.sigma:.3f}, coherency kappa = {fit.kappa:.2e}, "
            f"one user alone {fit.lam:.1f} rps."
        )
        if fit.r2 < POOR_FIT_R2:
            parts.append("The fit is poor; trust the measured figures over the model.")
    else:
        best = result.points.loc[result.points["throughput"].idxmax()]
        parts.append(
            f"The highest measured throughput is {best['throughput']:.0f} rps at "
            f"{int(best['users'])} users (no USL fit)."
        )
    return " ".join(parts)


def _subject(runs: Sequence[Run]) -> str:
    targets = {str(r.meta.get("target") or "") for r in runs}
    target = targets.pop() if len(targets) == 1 else ""
    if target.startswith(("http://", "https://")):
        return "The API"
    if target.startswith(("postgresql", "postgres", "sqlite")):
        return "The database"
    return "The system under test"


def scale_report(runs: list[Run], sla: str = "p95<500ms") -> ScaleResult:
    """Points, USL fit and users under ``sla`` from a stress run or several runs."""
    if not runs:
        raise ScaleError("no runs given; pass a stress run or several runs at different users")
    parsed = parse_sla(sla)
    _sla_column(parsed)
    points, warnings = scale_points(runs, scope=parsed.scope)
    if points.empty:
        raise ScaleError("no usable points in these runs (no stages with users and requests)")
    fit: UslFit | None = None
    try:
        fit = fit_usl(points["users"].to_numpy(), points["throughput"].to_numpy())
        warnings.extend(fit.warnings)
    except ScaleError as exc:
        warnings.append(f"no USL fit: {exc}")
    if points["failures"].sum() > 0:
        worst = points.loc[points["error_rate"].idxmax()]
        if worst["error_rate"] > 0.01:
            warnings.append(
                f"{worst['error_rate']:.1%} of requests failed at {int(worst['users'])} users: "
                "throughput counts failed requests too"
            )
    capacity = max_users_under_sla(points, parsed, fit)
    names = list(dict.fromkeys(r.name for r in runs))
    return ScaleResult(
        runs=names,
        sla=parsed.text,
        points=points,
        fit=fit,
        capacity=capacity,
        warnings=warnings,
        think_time_s=_think_time(points, fit) if fit is not None else None,
        subject=_subject(runs),
    )


# -- writing ---------------------------------------------------------------------------------


def _chart_throughput(result: ScaleResult) -> str:
    p = result.points
    fig, ax = new_figure(10.0, 4.0)
    n = p["users"].to_numpy(dtype=np.float64)
    ax.scatter(n, p["throughput"], color="#0969da", zorder=3, label="measured")
    fit = result.fit
    if fit is not None:
        top = float(n.max()) * 1.25
        if math.isfinite(fit.peak_n):
            top = max(top, min(fit.peak_n * 1.3, float(n.max()) * 3))
        grid = np.linspace(1.0, top, 300)
        ax.plot(grid, fit.throughput(grid), color="#cf222e", label="USL fit")
        ymax = float(max(p["throughput"].max(), fit.throughput(grid).max())) * 1.15
        ax.plot(
            grid, fit.lam * grid, color="#8c959f", linestyle=":", label="linear scaling (lam*N)"
        )
        if math.isfinite(fit.peak_n) and fit.peak_n <= top:
            ax.axvline(fit.peak_n, color="#9a6700", linestyle="--", label=f"N* = {fit.peak_n:.0f}")
        ax.set_ylim(0, ymax)
    ax.set_xlim(left=0)
    ax.set_xlabel("concurrent users N")
    ax.set_ylabel("throughput X(N) (requests/s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    caption = "Measured throughput against users, with the USL fit"
    if fit is not None:
        caption += f" (sigma {fit.sigma:.3f}, kappa {fit.kappa:.2e}, R^2 {fit.r2:.3f})"
    return figure_svg(fig, caption)


def _chart_latency(result: ScaleResult) -> str:
    p = result.points
    sla = parse_sla(result.sla)
    fig, ax = new_figure(10.0, 4.0)
    n = p["users"].to_numpy(dtype=np.float64)
    for metric, color in (("p50", "#8c959f"), ("p95", "#0969da"), ("p99", "#8250df")):
        ax.plot(n, p[metric], marker="o", markersize=3, color=color, label=f"{metric} measured")
    if sla.metric in LATENCY_METRICS:
        ax.axhline(sla.threshold, color="#cf222e", linestyle="--", label=f"SLA {sla.text}")
        fit = result.fit
        if fit is not None and result.think_time_s is not None and sla.metric in p:
            z = result.think_time_s
            last_n = float(n.max())
            m_last = float(p.loc[p["users"] == p["users"].max(), sla.metric].max())
            grid = np.linspace(max(1.0, float(n.min())), last_n * 1.5, 200)

            def response(x: FloatArray) -> FloatArray:
                return np.maximum(x / fit.throughput(x) - z, 1e-9)

            model = m_last * response(grid) / response(np.array([last_n]))[0]
            ax.plot(
                grid,
                model,
                color="#0969da",
                linestyle=":",
                label=f"{sla.metric} model (USL + Little's law)",
            )
        values = p[["p50", "p95", "p99"]].to_numpy(dtype=np.float64)
        low = min(float(np.nanmin(values)), sla.threshold)
        high = max(float(np.nanmax(values)), sla.threshold)
        ax.set_yscale("log")
        ax.set_ylim(low / 1.5, high * 1.5)
    cap = result.capacity
    if cap.measured is not None:
        ax.axvline(cap.measured, color="#1a7f37", label=f"measured max {cap.measured}")
    if cap.predicted is not None:
        ax.axvline(
            cap.predicted, color="#1a7f37", linestyle="--", label=f"predicted {cap.predicted:.0f}"
        )
    ax.set_xlim(left=0)
    ax.set_xlabel("concurrent users N")
    ax.set_ylabel("latency (ms, log scale)" if ax.get_yscale() == "log" else "latency (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    scope = "" if sla.scope is None else f" ({sla.scope})"
    return figure_svg(fig, f"Latency against users{scope}, with the SLA threshold")


def _chart_errors(result: ScaleResult) -> str:
    p = result.points
    fig, ax = new_figure(10.0, 2.6)
    ax.plot(p["users"], p["error_rate"] * 100, marker="o", markersize=3, color="#cf222e")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent users N")
    ax.set_ylabel("failed requests (%)")
    ax.grid(alpha=0.3)
    return figure_svg(fig, "Error rate against users")


def _point_rows(points: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in points.to_dict("records"):
        rows.append(
            [
                str(r["run"]),
                str(r["stage"]),
                f"{int(r['users'])}",
                f"{r['throughput']:,.1f}",
                *(f"{r[m]:,.1f}" if math.isfinite(r[m]) else "-" for m in ("p50", "p95", "p99")),
                f"{r['error_rate'] * 100:.2f}%" if math.isfinite(r["error_rate"]) else "-",
                f"{int(r['requests']):,}",
                f"{r['seconds']:.0f}",
            ]
        )
    return rows


POINT_TABLE = (
    "run",
    "stage",
    "users",
    "throughput (rps)",
    "p50 (ms)",
    "p95 (ms)",
    "p99 (ms)",
    "errors",
    "requests",
    "seconds",
)


def _fit_rows(result: ScaleResult) -> list[list[str]]:
    fit = result.fit
    if fit is None:
        return []
    se = fit.stderr
    return [
        ["contention sigma", f"{fit.sigma:.4f}", f"{se[0]:.4f}" if se else "-"],
        ["coherency kappa", f"{fit.kappa:.3e}", f"{se[1]:.1e}" if se else "-"],
        ["one-user throughput lam (rps)", f"{fit.lam:.3f}", f"{se[2]:.3f}" if se else "-"],
        ["R^2", f"{fit.r2:.4f}", ""],
        ["peak N*", f"{fit.peak_n:.1f}" if math.isfinite(fit.peak_n) else "none (kappa = 0)", ""],
        [
            "throughput at N* (rps)",
            f"{fit.peak_throughput:.1f}" if math.isfinite(fit.peak_throughput) else "-",
            "",
        ],
    ]


def _capacity_rows(result: ScaleResult) -> list[list[str]]:
    c = result.capacity
    return [
        ["SLA", c.sla],
        ["measured max users", "-" if c.measured is None else str(c.measured)],
        ["first level breaking it", "-" if c.first_failing is None else str(c.first_failing)],
        ["predicted max users", "-" if c.predicted is None else f"{c.predicted:.0f}"],
        ["how predicted", c.method + (f"; {c.note}" if c.note else "")],
    ]


def scale_markdown(result: ScaleResult) -> str:
    lines = [f"# Scaling: {', '.join(result.runs)}", "", result.summary, ""]
    if result.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in result.warnings] + [""]
    lines += ["## Users under the SLA", "", "| | |", "|---|---|"]
    lines += [f"| {a} | {b.replace('|', '/')} |" for a, b in _capacity_rows(result)] + [""]
    if result.fit is not None:
        lines += ["## USL fit", "", "| parameter | value | std. error |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in _fit_rows(result)] + [""]
    lines += ["## Measured points", ""]
    lines.append("| " + " | ".join(POINT_TABLE) + " |")
    lines.append("|" + "|".join("---" for _ in POINT_TABLE) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in _point_rows(result.points)]
    lines += ["", f"Percentiles: {PERCENTILE_DEFINITION}. Method: see `harness.analysis.scale`."]
    return "\n".join(lines) + "\n"


def scale_html(result: ScaleResult) -> str:
    sections = [f"<p><strong>{escape(result.summary)}</strong></p>"]
    if result.warnings:
        items = "".join(f'<li class="warn">{escape(w)}</li>' for w in result.warnings)
        sections.append(f"<h2>Warnings</h2><ul>{items}</ul>")
    sections.append("<h2>Throughput</h2>" + _chart_throughput(result))
    sections.append("<h2>Latency</h2>" + _chart_latency(result))
    if float(result.points["error_rate"].fillna(0).max()) > 0:
        sections.append("<h2>Errors</h2>" + _chart_errors(result))
    sections.append("<h2>Users under the SLA</h2>")
    sections.append(table_html(["question", "answer"], _capacity_rows(result)))
    if result.fit is not None:
        sections.append("<h2>USL fit</h2>")
        sections.append(table_html(["parameter", "value", "std. error"], _fit_rows(result)))
    sections.append("<h2>Measured points</h2>")
    sections.append(table_html(POINT_TABLE, _point_rows(result.points), left=2))
    sections.append(
        f'<p class="note">Percentiles: {escape(PERCENTILE_DEFINITION)}. USL: X(N) = '
        "lam*N / (1 + sigma*(N-1) + kappa*N*(N-1)); N* = sqrt((1 - sigma)/kappa). Predicted "
        f"users: {escape(result.capacity.method)}.</p>"
    )
    return page(f"Scaling: {', '.join(result.runs)}", sections)


def write_scale(result: ScaleResult, out_dir: Path) -> dict[str, Path]:
    """Write ``scale.md``, ``scale.html`` and ``scale.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "md": out_dir / "scale.md",
        "html": out_dir / "scale.html",
        "json": out_dir / "scale.json",
    }
    paths["md"].write_text(scale_markdown(result), encoding="utf-8")
    paths["html"].write_text(scale_html(result), encoding="utf-8")
    paths["json"].write_text(json.dumps(result.as_dict(), indent=2, default=str), encoding="utf-8")
    return paths
