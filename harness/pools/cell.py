"""One cell of the grid: its raw samples, what the server and the machine did, and its figures.

Three times per iteration, from the client's clock (``time.perf_counter``):

- **acquire**: from asking the pool for a connection until holding one (the pool wait);
- **query**: from holding the connection until it is back in the pool (statements, fetch and
  the pool's own return work: how long the iteration occupies a connection);
- **total**: acquire + query, what the application waits for.

Only iterations that *start* inside the measured window count; every one of them is waited
for, however late it ends. Percentiles are numpy's linear interpolation over every sample.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

OK, TIMEOUT, ERROR = 0, 1, 2
OUTCOMES = {OK: "ok", TIMEOUT: "acquire timeout", ERROR: "error"}
QUANTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
# Little's law (L = X x R) must hold within this share for the cell to be trusted.
LITTLE_TOLERANCE = 0.10


class Recorder:
    """One worker's samples, appended without locks (each worker owns one)."""

    __slots__ = ("acquire", "errors", "op", "outcome", "query", "start")

    def __init__(self) -> None:
        self.start: list[float] = []
        self.acquire: list[float] = []
        self.query: list[float] = []
        self.op: list[int] = []
        self.outcome: list[int] = []
        self.errors: Counter[str] = Counter()

    def add(self, t0: float, t1: float, t2: float, op: int, outcome: int) -> None:
        self.start.append(t0)
        self.acquire.append(t1 - t0)
        self.query.append(t2 - t1)
        self.op.append(op)
        self.outcome.append(outcome)


@dataclass
class Activity:
    """``pg_stat_activity`` of the pool's connections, sampled through the window."""

    #: (seconds into the window, active, idle, idle in transaction, waiting, total)
    rows: list[tuple[float, int, int, int, int, int]] = field(default_factory=list)
    server_cpu_s: float | None = None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            self.rows,
            columns=["t_s", "active", "idle", "idle_in_transaction", "waiting", "connections"],
        )


@dataclass
class CellSamples:
    """Every iteration that started in the window, as columns."""

    start_s: npt.NDArray[np.float64]
    acquire_ms: npt.NDArray[np.float64]
    query_ms: npt.NDArray[np.float64]
    op: npt.NDArray[np.int16]
    outcome: npt.NDArray[np.int8]
    errors: Counter[str]

    @property
    def total_ms(self) -> npt.NDArray[np.float64]:
        return self.acquire_ms + self.query_ms

    @classmethod
    def gather(
        cls, recorders: list[Recorder], window_start: float, window_end: float
    ) -> CellSamples:
        """The samples of iterations started in ``[window_start, window_end)``, in start order."""
        empty = np.empty(0, dtype=np.float64)
        start = np.concatenate(
            [np.asarray(r.start, dtype=np.float64) for r in recorders] or [empty]
        )
        keep = (start >= window_start) & (start < window_end)
        order = np.argsort(start[keep], kind="stable")

        def col(name: str, dtype: Any, scale: float = 1.0) -> Any:
            values = np.concatenate(
                [np.asarray(getattr(r, name), dtype=np.float64) for r in recorders] or [empty]
            )
            return (values[keep][order] * scale).astype(dtype)

        errors: Counter[str] = Counter()
        for r in recorders:
            errors.update(r.errors)
        return cls(
            start_s=(start[keep][order] - window_start),
            acquire_ms=col("acquire", np.float64, 1000.0),
            query_ms=col("query", np.float64, 1000.0),
            op=col("op", np.int16),
            outcome=col("outcome", np.int8),
            errors=errors,
        )

    def frame(self, names: tuple[str, ...]) -> pd.DataFrame:
        """The samples as a table: one row per iteration (saved as the cell's parquet file)."""
        return pd.DataFrame(
            {
                "start_s": self.start_s,
                "operation": pd.Categorical.from_codes(self.op, categories=list(names)),
                "acquire_ms": self.acquire_ms,
                "query_ms": self.query_ms,
                "total_ms": self.total_ms,
                "outcome": pd.Categorical.from_codes(
                    self.outcome, categories=[OUTCOMES[k] for k in sorted(OUTCOMES)]
                ),
            }
        )


def _percentiles(values: npt.NDArray[np.float64], prefix: str) -> dict[str, float | None]:
    if len(values) == 0:
        return {f"{prefix}{k}": None for k in QUANTILES}
    got = np.percentile(values, list(QUANTILES.values()))
    return {f"{prefix}{k}": float(v) for k, v in zip(QUANTILES, got, strict=True)}


def little_ratio(concurrency: int, iterations_per_s: float, mean_total_ms: float) -> float:
    """``X x R / L``: iterations per second times their mean time over the clients in flight.

    In a closed loop with no think time every client always has one iteration under way, so
    the ratio is 1 when the clock, the counts and the window agree; far from 1, they do not.
    """
    return iterations_per_s * mean_total_ms / 1000.0 / concurrency


def cell_figures(
    samples: CellSamples,
    *,
    window_s: float,
    concurrency: int,
    activity: Activity,
    client_cpu_s: float,
    cores: int,
) -> dict[str, Any]:
    """The figures of one cell, as stored in ``pools.json``."""
    ok = samples.outcome == OK
    timeouts = int((samples.outcome == TIMEOUT).sum())
    errors = int((samples.outcome == ERROR).sum())
    n = len(samples.outcome)
    total = samples.total_ms
    figures: dict[str, Any] = {
        "window_s": window_s,
        "iterations": n,
        "ok": int(ok.sum()),
        "timeouts": timeouts,
        "errors": errors,
        "throughput": float(ok.sum() / window_s) if window_s > 0 else 0.0,
        "mean_ms": float(total[ok].mean()) if ok.any() else None,
    }
    figures.update(_percentiles(total[ok], ""))
    figures.update(_percentiles(samples.query_ms[ok], "query_"))
    figures.update(_percentiles(samples.acquire_ms, "acquire_"))
    figures["acquire_mean_ms"] = float(samples.acquire_ms.mean()) if n else None
    # Every iteration, failures included: each held its client for that long.
    figures["mean_all_ms"] = float(total.mean()) if n else None
    figures["little_ratio"] = (
        little_ratio(concurrency, n / window_s, float(total.mean())) if n and window_s > 0 else None
    )
    act = activity.frame()
    for column in ("active", "idle", "idle_in_transaction", "waiting", "connections"):
        figures[f"server_{column}_mean"] = float(act[column].mean()) if len(act) else None
        figures[f"server_{column}_max"] = int(act[column].max()) if len(act) else None
    figures["activity_samples"] = len(act)
    # CPU as a share of the machine (all cores = 100%), like top's summary line.
    figures["client_cpu_pct"] = 100.0 * client_cpu_s / window_s / cores if window_s > 0 else None
    figures["server_cpu_pct"] = (
        100.0 * activity.server_cpu_s / window_s / cores
        if activity.server_cpu_s is not None and window_s > 0
        else None
    )
    figures["error_examples"] = [
        f"{count} x {text}" for text, count in samples.errors.most_common(3)
    ]
    return figures
