"""A tiny grid on the real embedded PostgreSQL: samples, pool waits, Little's law, reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.analysis.pools import check_little
from harness.pools import PoolsOptions, PoolsResult, run_pools


@pytest.fixture(scope="module")
def experiment(
    pg_url: str, reference_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> PoolsResult:
    out = tmp_path_factory.mktemp("pools") / "run"
    return run_pools(
        PoolsOptions(
            pg=pg_url,
            dataset=reference_db,
            pool_sizes=(1, 8),
            concurrencies=(50,),
            warmup_s=0.3,
            duration_s=1.0,
            out_dir=out,
            progress=False,
        )
    )


def cell(result: PoolsResult, driver: str, size: int) -> dict[str, Any]:
    return next(c for c in result.data["cells"] if c["driver"] == driver and c["pool_size"] == size)


def test_every_cell_has_its_samples(experiment: PoolsResult) -> None:
    cells = experiment.data["cells"]
    assert {(c["driver"], c["pool_size"]) for c in cells} == {
        ("psycopg", 1), ("psycopg", 8), ("asyncpg", 1), ("asyncpg", 8),
    }  # fmt: skip
    for c in cells:
        samples = pd.read_parquet(experiment.run_dir / c["samples_file"])
        assert len(samples) == c["iterations"] > 0
        assert c["errors"] == 0, c["error_examples"]
        assert set(samples["outcome"].astype(str)) <= {"ok", "acquire timeout"}
        # The mix ran: reads of several kinds and some ingestion writes.
        assert samples["operation"].nunique() >= 5
        assert (samples["total_ms"] >= samples["query_ms"]).all()
        activity = pd.read_parquet(experiment.run_dir / c["activity_file"])
        assert len(activity) == c["activity_samples"] > 0
        # The pool's connections are what pg_stat_activity saw, never more.
        assert activity["connections"].max() <= c["pool_size"]
        assert c["server_cpu_pct"] is not None and c["client_cpu_pct"] is not None


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_a_pool_of_one_makes_fifty_clients_wait(experiment: PoolsResult, driver: str) -> None:
    one, eight = cell(experiment, driver, 1), cell(experiment, driver, 8)
    # 50 clients on one connection: a typical client waits for many others' queries.
    assert one["acquire_p50"] > 1.0
    assert one["acquire_p50"] > eight["acquire_p50"]
    assert one["acquire_mean_ms"] > eight["acquire_mean_ms"]
    assert one["server_connections_max"] == 1


def test_littles_law_holds_on_real_cells(experiment: PoolsResult) -> None:
    for c in experiment.data["cells"]:
        check = check_little(c)
        assert check.ok, (c["driver"], c["pool_size"], check.ratio)


def test_reports_are_written(experiment: PoolsResult) -> None:
    run = experiment.run_dir
    data = json.loads((run / "pools.json").read_text())
    assert data["complete"] and not data["interrupted"]
    assert data["server"]["max_connections"] > 8
    assert data["formulas"]["(2 x cores) + 5"] == 2 * data["server"]["cores"] + 5
    assert {k["driver"] for k in data["analysis"]["knees"]} == {"psycopg", "asyncpg"}
    assert "password" not in json.dumps(data).lower()
    md = (run / "pools.md").read_text()
    assert "## Recommendation" in md and "use a pool of" in md
    html = (run / "pools.html").read_text()
    assert html.count("<svg") >= 8  # 2 heatmaps + 3 curves per driver
    assert "Rules of thumb" in html
