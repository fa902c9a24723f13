"""SLA expressions and their verdicts, computed from exact samples.

Grammar (one SLA per expression)::

    [SCOPE:]METRIC OP VALUE[@STAGE]

    SCOPE   an endpoint as Locust names it: "GET /discoveries", "/entities/[id]" (any method),
            or "*" for each endpoint separately; absent = all requests together
    METRIC  p50 p75 p90 p95 p99 p99.9 mean min max (latency) | errors (share failed) | rps
    OP      <  <=  >  >=
    VALUE   latency with a unit (ms, s), errors as a percentage (1%) or fraction (0.01),
            rps as a number
    STAGE   a stage name of the scenario; absent = the whole run

Examples: ``p95<500ms``, ``GET /discoveries:p99<1s``, ``errors<1%``, ``rps>200``,
``*:p95<500ms@spike``. Percentiles are linear interpolation between the two nearest ranks
(numpy's default, Hyndman & Fan type 7) over every sample in scope, failed ones included.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.errors import ConfigError

# Documented exit codes of a finished run.
EXIT_SLA_FAILED = 10
EXIT_PARTIAL = 11

PERCENTILES = {"p50": 50.0, "p75": 75.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99.9": 99.9}
LATENCY_METRICS = (*PERCENTILES, "mean", "min", "max")
METRICS = (*LATENCY_METRICS, "errors", "rps")
OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}

# The reference API's SLAs (DESIGN.md): every endpoint p95 < 500 ms; health mean < 10 ms.
REFERENCE_API_SLAS = ("*:p95<500ms", "GET /health:mean<10ms")

_EXPR = re.compile(
    r"^\s*(?:(?P<scope>[^:]+?)\s*:\s*)?(?P<metric>p99\.9|p\d{2}|mean|min|max|errors|rps)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<unit>ms|s|%)?\s*"
    r"(?:@\s*(?P<stage>[A-Za-z0-9_.-]+))?\s*$"
)


class SlaError(ConfigError):
    """An SLA expression that does not parse; the message names the part at fault."""


@dataclass(frozen=True)
class Sla:
    """One parsed SLA. ``threshold`` is in ms for latency, a fraction for errors, 1/s for rps."""

    text: str
    metric: str
    op: str
    threshold: float
    scope: str | None = None
    stage: str | None = None
    # Defaults are optional: an endpoint the traffic never called is "not exercised", not failed.
    optional: bool = False

    @property
    def per_endpoint(self) -> bool:
        return self.scope == "*"

    def passes(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


def parse_sla(text: str) -> Sla:
    """Parse one expression; raise :class:`SlaError` saying which part is wrong."""
    match = _EXPR.match(text)
    if match is None:
        raise SlaError(_explain(text))
    metric, unit = match["metric"], match["unit"]
    value = float(match["value"])
    if metric not in METRICS:
        raise SlaError(f"SLA {text!r}: unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if metric in LATENCY_METRICS:
        if unit not in {"ms", "s"}:
            raise SlaError(
                f"SLA {text!r}: latency needs a unit, e.g. {metric}<500ms or {metric}<1s"
            )
        threshold = value * 1000.0 if unit == "s" else value
    elif metric == "errors":
        if unit in {"ms", "s"}:
            raise SlaError(f"SLA {text!r}: errors is a share, write errors<1% or errors<0.01")
        threshold = value / 100.0 if unit == "%" else value
        if not 0.0 <= threshold <= 1.0:
            raise SlaError(f"SLA {text!r}: an error share must be between 0% and 100%")
    else:
        if unit is not None:
            raise SlaError(f"SLA {text!r}: rps takes a plain number, e.g. rps>200")
        threshold = value
    scope = match["scope"].strip() if match["scope"] else None
    return Sla(
        text=text.strip(),
        metric=metric,
        op=match["op"],
        threshold=threshold,
        scope=scope,
        stage=match["stage"],
    )


def _explain(text: str) -> str:
    """Say which part of a bad expression is wrong."""
    body = text.split(":")[-1] if ":" in text else text
    body = body.split("@")[0].strip()
    op = re.search(r"<=|>=|<|>", body)
    if not body:
        return f"SLA {text!r}: empty; write e.g. p95<500ms"
    if op is None:
        return f"SLA {text!r}: no comparison; write METRIC<VALUE, e.g. p95<500ms"
    metric = body[: op.start()].strip()
    if metric not in METRICS:
        return f"SLA {text!r}: unknown metric {metric!r}; use one of {', '.join(METRICS)}"
    value = body[op.end() :].strip()
    return f"SLA {text!r}: cannot read the value {value!r}; write e.g. 500ms, 1s, 1% or 200"


def parse_slas(texts: Iterable[str]) -> list[Sla]:
    """Parse several expressions, dropping exact duplicates, keeping order."""
    return [parse_sla(t) for t in dict.fromkeys(t.strip() for t in texts if t.strip())]


def with_defaults(slas: list[Sla], defaults: Iterable[str]) -> list[Sla]:
    """``slas`` plus the optional ``defaults`` that are not already among them."""
    have = {s.text for s in slas}
    extra = [replace(parse_sla(t), optional=True) for t in defaults if t not in have]
    return [*slas, *extra]


@dataclass(frozen=True)
class Outcome:
    """One SLA judged on one scope: the measured value and whether it held."""

    sla: str
    scope: str
    stage: str
    metric: str
    measured: float | None
    threshold: float
    op: str
    passed: bool
    count: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "sla": self.sla,
            "scope": self.scope,
            "stage": self.stage,
            "metric": self.metric,
            "measured": self.measured,
            "threshold": self.threshold,
            "op": self.op,
            "passed": self.passed,
            "count": self.count,
            "note": self.note,
        }


FloatArray = npt.NDArray[np.float64]


@dataclass
class SampleView:
    """The columns SLA evaluation needs, as numpy arrays (one entry per request)."""

    endpoint: npt.NDArray[np.object_]  # "TYPE name"
    name: npt.NDArray[np.object_]
    stage: npt.NDArray[np.object_]
    latency_ms: FloatArray
    ok: npt.NDArray[np.bool_]
    start: FloatArray


def _base(values: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    return np.array([str(v).split("?", 1)[0] for v in values], dtype=object)


def scope_mask(samples: SampleView, scope: str) -> npt.NDArray[np.bool_]:
    """Samples an SLA scope covers: "GET /discoveries" covers every request to that path
    whatever its query string ("/discoveries?since_days=7"); "/x" covers any method."""
    base = scope.split("?", 1)[0]
    exact = (samples.endpoint == scope) | (samples.name == scope)
    if base != scope:
        return np.asarray(exact, dtype=bool)
    return np.asarray(
        exact | (_base(samples.endpoint) == base) | (_base(samples.name) == base), dtype=bool
    )


def metric_value(
    metric: str, latency: FloatArray, ok: npt.NDArray[np.bool_], seconds: float
) -> float | None:
    """The metric over one scope; None when there are no samples to judge."""
    if len(latency) == 0:
        return 0.0 if metric == "rps" else None
    if metric in PERCENTILES:
        return float(np.percentile(latency, PERCENTILES[metric]))
    if metric == "mean":
        return float(latency.mean())
    if metric == "min":
        return float(latency.min())
    if metric == "max":
        return float(latency.max())
    if metric == "errors":
        return float((~ok).sum() / len(ok))
    return float(len(latency) / seconds) if seconds > 0 else None


def evaluate(
    slas: Sequence[Sla],
    samples: SampleView,
    stage_spans: Mapping[str, tuple[float, float]],
    run_span: tuple[float, float],
) -> list[Outcome]:
    """Judge every SLA on the samples. ``stage_spans`` maps stage -> (start, end) epoch seconds."""
    outcomes: list[Outcome] = []
    for sla in slas:
        if sla.stage is not None and sla.stage not in stage_spans:
            outcomes.append(
                Outcome(
                    sla.text,
                    sla.scope or "all",
                    sla.stage,
                    sla.metric,
                    None,
                    sla.threshold,
                    sla.op,
                    False,
                    0,
                    f"stage {sla.stage!r} never ran",
                )
            )
            continue
        in_stage = (samples.stage == sla.stage) if sla.stage else np.ones(len(samples.ok), bool)
        span = stage_spans[sla.stage] if sla.stage else run_span
        seconds = max(span[1] - span[0], 0.0)
        if sla.scope is None:
            scopes: list[tuple[str, npt.NDArray[np.bool_]]] = [("all", in_stage)]
        elif sla.per_endpoint:
            scopes = [
                (str(e), in_stage & (samples.endpoint == e))
                for e in sorted(set(samples.endpoint[in_stage].tolist()))
            ]
        else:
            scopes = [(sla.scope, in_stage & scope_mask(samples, sla.scope))]
        for label, mask in scopes:
            value = metric_value(sla.metric, samples.latency_ms[mask], samples.ok[mask], seconds)
            count = int(mask.sum())
            passed = value is not None and sla.passes(value)
            note = "" if count else "no requests in scope"
            if not count and sla.optional:
                passed, note = True, "not exercised (default SLA)"
            outcomes.append(
                Outcome(
                    sla.text,
                    label,
                    sla.stage or "whole run",
                    sla.metric,
                    value,
                    sla.threshold,
                    sla.op,
                    passed,
                    count,
                    note,
                )
            )
    return outcomes


def format_value(metric: str, value: float | None) -> str:
    """A measured or threshold value as a person reads it."""
    if value is None:
        return "-"
    if metric == "errors":
        return f"{value * 100:.2f}%"
    if metric == "rps":
        return f"{value:,.1f}/s"
    return f"{value:,.2f} ms"
