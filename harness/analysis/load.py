"""Loading a run into pandas: the recorder's samples, or plain Locust output.

A run directory written by the recorder gives exact samples (one row per request). For people
who ran Locust without the recorder, its ``--csv`` stats or ``--json-file`` output load too,
as per-endpoint aggregates whose percentiles Locust rounded into buckets: such a run is marked
``approximate`` and every figure drawn from it must say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.lost_workers import warnings_of
from harness.recorder import read_samples

SUPPORTED_RUN_SCHEMA = "harness.run/1"


class RunLoadError(HarnessError):
    """A run that cannot be analysed: missing, empty, or from a newer harness."""

    exit_code = 6


@dataclass
class Run:
    """One run, ready for analysis.

    ``samples`` has one row per request with the recorder's columns (``start_time``,
    ``intended_start``, ``name``, ``request_type``, ``latency_ms``, ``ok``, ``status``,
    ``bytes``, ``stage``, ``users``, ``worker``, ``error``) plus ``endpoint`` ("GET /x").
    For an approximate run it is empty and ``aggregates`` holds Locust's per-endpoint rows.
    """

    path: Path
    meta: dict[str, Any]
    samples: pd.DataFrame
    verdict: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    approximate: bool = False
    aggregates: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stage_spans(self) -> list[tuple[str, float, float]]:
        """(stage, start, end) in epoch seconds, from run.json, else from the samples."""
        spans = self.meta.get("stages") or []
        if spans:
            return [(s["name"], float(s["start"]), float(s["end"])) for s in spans]
        if self.samples.empty:
            return []
        g = self.samples.groupby("stage", sort=False)["start_time"]
        return [(str(k), float(v.min()), float(v.max())) for k, v in g]

    @property
    def start(self) -> float:
        if "start_epoch" in self.meta:
            return float(self.meta["start_epoch"])
        return float(self.samples["start_time"].min()) if not self.samples.empty else 0.0

    @property
    def end(self) -> float:
        if "end_epoch" in self.meta:
            return float(self.meta["end_epoch"])
        if self.samples.empty:
            return 0.0
        return float((self.samples["start_time"] + self.samples["latency_ms"] / 1000).max())


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise RunLoadError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else None


def load_run(path: Path | str) -> Run:
    """Load a recorder run directory, a Locust ``--csv`` prefix or a ``--json-file``."""
    p = Path(path)
    if p.is_dir() and (p / "samples").is_dir():
        return _load_recorded(p)
    if p.is_file() and p.suffix == ".json":
        return _load_locust_json(p)
    csv = Path(str(p) + "_stats.csv") if not p.name.endswith("_stats.csv") else p
    if csv.is_file():
        return _load_locust_csv(csv)
    if p.is_dir() and (p / "locust" / "stats_stats.csv").is_file():
        return _load_locust_csv(p / "locust" / "stats_stats.csv")
    if not p.exists():
        raise RunLoadError(f"{p}: no such run directory")
    raise RunLoadError(
        f"{p}: neither a run directory (no samples/) nor Locust --csv or --json-file output"
    )


def _load_recorded(path: Path) -> Run:
    meta = _read_json(path / "run.json") or {}
    schema = str(meta.get("schema", SUPPORTED_RUN_SCHEMA))
    if schema.startswith("harness.run/") and schema != SUPPORTED_RUN_SCHEMA:
        version = schema.split("/", 1)[1]
        if version.isdigit() and int(version) > int(SUPPORTED_RUN_SCHEMA.split("/")[1]):
            raise RunLoadError(
                f"{path}: run.json schema {schema} is newer than this harness "
                f"reads ({SUPPORTED_RUN_SCHEMA}); upgrade harness"
            )
    try:
        result = read_samples(path)
    except ValueError as exc:
        raise RunLoadError(str(exc)) from None
    samples = result.table.to_pandas()
    if samples.empty:
        raise RunLoadError(f"{path}: the run recorded no samples; nothing to report")
    samples["endpoint"] = samples["request_type"] + " " + samples["name"]
    return Run(
        path=path,
        meta=meta,
        samples=samples,
        verdict=_read_json(path / "verdict.json"),
        warnings=[*result.warnings, *warnings_of(meta)],
    )


_LOCUST_COLUMNS = {
    "Type": "request_type",
    "Name": "name",
    "Request Count": "count",
    "Failure Count": "failures",
    "Average Response Time": "mean",
    "Min Response Time": "min",
    "Max Response Time": "max",
    "Requests/s": "rps",
    "50%": "p50",
    "75%": "p75",
    "90%": "p90",
    "95%": "p95",
    "99%": "p99",
    "99.9%": "p99.9",
}


def _load_locust_csv(path: Path) -> Run:
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise RunLoadError(f"{path}: cannot read Locust CSV ({exc})") from None
    missing = {"Type", "Name", "Request Count"} - set(frame.columns)
    if missing:
        raise RunLoadError(
            f"{path}: not a Locust *_stats.csv (missing {', '.join(sorted(missing))})"
        )
    frame = frame.rename(columns=_LOCUST_COLUMNS)
    frame = frame[[c for c in _LOCUST_COLUMNS.values() if c in frame.columns]]
    return _approximate(path, frame)


def _load_locust_json(path: Path) -> Run:
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise RunLoadError(f"{path}: not Locust --json-file output (expected a list of stats)")
    rows = []
    for entry in data:
        count = int(entry.get("num_requests", 0))
        rows.append(
            {
                "request_type": entry.get("method", ""),
                "name": entry.get("name", ""),
                "count": count,
                "failures": int(entry.get("num_failures", 0)),
                "mean": entry.get("total_response_time", 0.0) / count if count else None,
                "min": entry.get("min_response_time"),
                "max": entry.get("max_response_time"),
                "response_times": entry.get("response_times", {}),
            }
        )
    return _approximate(path, pd.DataFrame(rows))


def _approximate(path: Path, frame: pd.DataFrame) -> Run:
    empty = pd.DataFrame(
        columns=["start_time", "name", "request_type", "latency_ms", "ok", "stage", "endpoint"]
    )
    return Run(
        path=path,
        meta={"source": "locust", "file": str(path)},
        samples=empty,
        approximate=True,
        aggregates=frame,
        warnings=[
            "approximate: Locust's percentiles are rounded into buckets "
            "(2 significant digits above 100 ms); no per-stage or per-window figures"
        ],
    )
