"""``harness db slow-queries``: a slow-query log summed up per statement, slowest total first."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.profiler.slowlog import LOG_NAME


@dataclass
class SlowStatement:
    """Every logged execution of one normalised statement."""

    statement: str
    dialect: str
    durations: list[float] = field(default_factory=list)
    endpoints: dict[str, int] = field(default_factory=dict)
    #: The slowest execution's SQL as sent and its (masked) parameters.
    sql: str = ""
    params: Any = None
    slowest_ms: float = 0.0
    full_scans: list[str] | None = None
    plan_error: str | None = None

    @property
    def count(self) -> int:
        return len(self.durations)

    @property
    def total_ms(self) -> float:
        return float(sum(self.durations))

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.durations, 95)) if self.durations else 0.0

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.count if self.count else 0.0


@dataclass
class SlowLog:
    path: Path
    statements: list[SlowStatement]
    bad_lines: int


def log_path(run_or_log: Path) -> Path:
    """The log file of a run directory, or the file itself."""
    if run_or_log.is_dir():
        path = run_or_log / LOG_NAME
        if not path.is_file():
            raise ConfigError(
                f"{run_or_log}: no {LOG_NAME} (the reference API writes it during `harness run`; "
                "no statement was slower than the threshold, or the run predates the log)"
            )
        return path
    if not run_or_log.is_file():
        raise ConfigError(f"{run_or_log}: no such run directory or slow-query log")
    return run_or_log


def read_log(run_or_log: Path) -> SlowLog:
    """Group the log's lines by normalised statement, slowest total time first."""
    path = log_path(run_or_log)
    groups: dict[tuple[str, str], SlowStatement] = {}
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
                statement = str(rec["statement"])
                duration = float(rec["duration_ms"])
            except (ValueError, KeyError, TypeError):
                bad += 1  # a line cut by a crash: skipped and counted, never fatal
                continue
            dialect = str(rec.get("dialect", ""))
            entry = groups.setdefault((dialect, statement), SlowStatement(statement, dialect))
            entry.durations.append(duration)
            endpoint = rec.get("endpoint") or "(no endpoint)"
            entry.endpoints[endpoint] = entry.endpoints.get(endpoint, 0) + 1
            if duration >= entry.slowest_ms:
                entry.slowest_ms = duration
                entry.sql = str(rec.get("sql") or statement)
                entry.params = rec.get("params")
    ordered = sorted(groups.values(), key=lambda s: s.total_ms, reverse=True)
    return SlowLog(path, ordered, bad)


def attach_plans(log: SlowLog, db: str, limit: int | None = None) -> None:
    """Explain each statement on ``db`` and note the tables it reads whole."""
    from harness.errors import HarnessError
    from harness.profiler.plans import explain
    from harness.profiler.slowlog import unmask

    for entry in log.statements[:limit]:
        try:
            params = unmask_params(entry.params, unmask)
        except ValueError:
            params = None  # masked text: a generic plan instead
        try:
            entry.full_scans = explain(db, entry.sql, params).full_scans
        except HarnessError as exc:
            entry.plan_error = str(exc)


def unmask_params(params: Any, unmask: Any) -> Any:
    """Logged parameters as values to bind; ValueError when one was masked."""
    if params is None:
        return None
    if isinstance(params, dict):
        return {k: unmask(v) for k, v in params.items()}
    if isinstance(params, list):
        return [unmask(v) for v in params]
    raise ValueError("parameters of an executemany")


def rows(log: SlowLog, width: int = 90) -> Iterable[list[str]]:
    """Table rows: statement, count, total, mean, p95, full scans, endpoints."""
    for s in log.statements:
        scans = (
            "?"
            if s.full_scans is None and s.plan_error is None
            else ("plan failed" if s.full_scans is None else ", ".join(s.full_scans) or "none")
        )
        text = s.statement if len(s.statement) <= width else s.statement[: width - 3] + "..."
        top = max(s.endpoints.items(), key=lambda kv: kv[1])[0] if s.endpoints else "-"
        yield [
            text,
            str(s.count),
            f"{s.total_ms:,.1f}",
            f"{s.mean_ms:.1f}",
            f"{s.p95_ms:.1f}",
            scans,
            top,
        ]


COLUMNS = ("statement", "count", "total ms", "mean ms", "p95 ms", "full scans", "endpoint")
