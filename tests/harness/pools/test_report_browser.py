"""pools.html in headless Chromium: it loads without console messages, with every chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.analysis.pools import analyze
from harness.analysis.pools_report import write_reports
from tests.harness.analysis.test_report_browser import (
    CHROMIUM,
    _chromium,
    _console_lines,
    _SvgCounter,
)
from tests.harness.pools.test_analysis import curve

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def synthetic_experiment() -> dict[str, Any]:
    cells = []
    for driver in ("psycopg", "asyncpg"):
        cells += curve([300, 380, 400, 401, 402, 390], [10, 8, 7, 7, 7, 8], 10, driver)
        cells += curve([100, 190, 370, 400, 405, 380], [90, 60, 40, 30, 30, 45], 200, driver)
    for c in cells:
        c.update(p50=c["p99"] / 3, query_p99=c["p99"] * 0.8, acquire_p50=1.0, acquire_p99=5.0)
    return {
        "harness_version": "test",
        "started": "2026-11-23T00:00:00+00:00",
        "elapsed_s": 12.0,
        "target": "postgresql://harness:***@127.0.0.1:5432/postgres",
        "dataset": "reference.db",
        "server": {"version": "16.4", "max_connections": 100, "cores": 2, "cores_from": "this"},
        "grid": {
            "drivers": ["psycopg", "asyncpg"],
            "pool_sizes": [1, 2, 4, 8, 16, 32],
            "concurrencies": [10, 200],
            "warmup_s": 0.5,
            "duration_s": 3.0,
            "acquire_timeout_s": 2.0,
            "write_share": 0.1,
            "seed": 42,
        },
        "formulas": {"(2 x cores) + 5": 9, "HikariCP": 5},
        "definitions": {"latency": "acquire + query"},
        "cells": cells,
    }


def test_pools_report_loads_with_every_chart(tmp_path: Path) -> None:
    data = synthetic_experiment()
    html = write_reports(data, analyze(data["cells"], data["formulas"]), tmp_path)["html"]
    done = _chromium(tmp_path / "profile", ["--dump-dom", html.as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_lines(done.stderr) == []
    counter = _SvgCounter()
    counter.feed(done.stdout)
    # Per driver: p99 and throughput heatmaps, throughput, p99 and pool-wait curves.
    assert len(counter.paths) == 10, counter.paths
    assert all(n >= 10 for n in counter.paths), counter.paths
    assert "use a pool of 8" in done.stdout
