"""The reference API's Prometheus metrics, read as Prometheus reads them, after real requests."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR


def _samples(base: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(f"{base}/metrics/prometheus", timeout=10).text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_cache_lookups_per_endpoint_and_backend_and_the_backend_in_use(
    reference_db: Path, tmp_path: Path, redis_url: str
) -> None:
    db = tmp_path / "api.db"
    shutil.copyfile(reference_db, db)
    settings = ApiSettings(db=str(db), now=ANCHOR, redis_url=redis_url)
    with running_api(settings) as base:
        for _ in range(3):
            httpx.get(f"{base}/entities/7", timeout=10)
        got = _samples(base)
    lookups = {
        (labels["endpoint"], labels["backend"], labels["result"]): value
        for labels, value in got["harness_api_cache_lookups_total"]
    }
    hits = lookups.get(("entity", "redis", "hit"), 0)
    misses = lookups.get(("entity", "redis", "miss"), 0)
    assert hits + misses == 3 and hits >= 2
    in_use = {labels["backend"]: value for labels, value in got["harness_api_cache_backend"]}
    assert in_use == {"redis": 1, "fallback": 0, "memory": 0}


def test_pool_gauges_and_wait_histogram_after_requests(reference_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "api.db"
    shutil.copyfile(reference_db, db)
    settings = ApiSettings(db=str(db), now=ANCHOR, pool_size=3, max_overflow=4)
    with running_api(settings) as base:
        for artifact in (1, 2, 3):
            assert httpx.get(f"{base}/artifacts/{artifact}", timeout=10).status_code == 200
        got = _samples(base)

    def value(name: str) -> float:
        [(_labels, v)] = got[name]
        return v

    assert value("harness_api_db_pool_size") == 3
    assert value("harness_api_db_pool_max_overflow") == 4
    assert value("harness_api_db_pool_checked_out") == 0  # every request gave its connection back
    assert value("harness_api_db_pool_checked_in") >= 1
    assert value("harness_api_db_pool_overflow") == 0
    assert value("harness_api_db_pool_wait_seconds_count") == 3
    assert value("harness_api_db_pool_timeouts_total") == 0
    [(info, one)] = got["harness_api_info"]
    assert info["db"] == "sqlite" and one == 1
    in_use = {labels["backend"]: v for labels, v in got["harness_api_cache_backend"]}
    assert in_use["memory"] == 1
    routes = {labels["route"] for labels, _ in got["harness_api_request_duration_seconds_count"]}
    assert "/artifacts/{artifact_id}" in routes
    edges = {labels["le"] for labels, _ in got["harness_api_request_duration_seconds_bucket"]}
    # The SLA thresholds are bucket edges, so the share of requests over each line is exact.
    assert {"0.1", "0.2", "0.5", "1.0"} <= edges
