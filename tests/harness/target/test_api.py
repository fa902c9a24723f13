"""The reference API over real HTTP, on SQLite and on PostgreSQL loaded with the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR

ADMIN = "s3cret-admin-token"

# Every read endpoint, with the parameters production traffic uses.
READ_PATHS = (
    "/meta",
    "/discoveries",
    "/discoveries?limit=10&min_score=0.5",
    "/discoveries?limit=20&since_days=7",
    "/topics/trending",
    "/topics/trending?window_days=30&limit=5",
    "/topics/3/timeline",
    "/topics/3/timeline?limit=5&before=2500",
    "/entities/1",
    "/entities/42",
    "/artifacts/1",
    "/artifacts/2999",
    "/artifacts/1500/citations",
    "/artifacts/7/citations?direction=in&limit=100",
)


def _client(db: str, **kwargs: Any) -> Iterator[httpx.Client]:
    settings = ApiSettings(db=db, now=ANCHOR, admin_token=ADMIN, **kwargs)
    with running_api(settings) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def sqlite_api(reference_db: Path) -> Iterator[httpx.Client]:
    yield from _client(str(reference_db))


@pytest.fixture(scope="module")
def pg_api(reference_pg: str) -> Iterator[httpx.Client]:
    yield from _client(reference_pg)


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest) -> httpx.Client:
    fixture = "sqlite_api" if request.param == "sqlite" else "pg_api"
    client: httpx.Client = request.getfixturevalue(fixture)
    return client


@pytest.mark.parametrize("path", READ_PATHS)
def test_both_backends_return_the_same_json(
    sqlite_api: httpx.Client, pg_api: httpx.Client, path: str
) -> None:
    from_sqlite = sqlite_api.get(path)
    from_pg = pg_api.get(path)
    assert from_sqlite.status_code == from_pg.status_code == 200
    assert from_sqlite.json() == from_pg.json()
    assert from_sqlite.json(), "an empty answer would prove nothing"


def test_health_names_backend_and_touches_no_database(api: httpx.Client) -> None:
    body = api.get("/health").json()
    assert body["status"] == "ok"
    assert body["backend"] in {"sqlite", "postgresql"}


def test_discoveries_are_ranked_and_live(api: httpx.Client) -> None:
    rows = api.get("/discoveries", params={"limit": 50}).json()
    assert len(rows) == 50
    scores = [r["discovery_score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_recent_discoveries_stay_inside_the_window(api: httpx.Client) -> None:
    rows = api.get("/discoveries", params={"since_days": 7, "limit": 200}).json()
    assert rows
    assert all(r["published_at"] >= "2026-10-25" for r in rows)


def test_topic_timeline_is_newest_first_and_pages(api: httpx.Client) -> None:
    first = api.get("/topics/3/timeline", params={"limit": 5}).json()
    ids = [a["id"] for a in first["artifacts"]]
    assert ids == sorted(ids, reverse=True)
    following = api.get("/topics/3/timeline", params={"limit": 5, "before": ids[-1]}).json()
    assert all(a["id"] < ids[-1] for a in following["artifacts"])


def test_citations_count_matches_direction(api: httpx.Client) -> None:
    out = api.get("/artifacts/2000/citations", params={"direction": "out"}).json()
    cited_by = api.get("/artifacts/2000/citations", params={"direction": "in"}).json()
    assert out["direction"] == "out" and cited_by["direction"] == "in"
    assert out["total"] == len(out["citations"])  # out-degree is small, below the limit
    assert all(c["id"] < 2000 for c in out["citations"])  # only earlier work is cited


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/artifacts/abc", 422),
        ("/artifacts/-3", 422),
        ("/artifacts/0", 422),
        ("/artifacts/1.5", 422),
        ("/discoveries?limit=201", 422),
        ("/discoveries?limit=0", 422),
        ("/discoveries?min_score=2", 422),
        ("/topics/trending?window_days=-1", 422),
        ("/artifacts/1/citations?direction=sideways", 422),
        ("/artifacts/99999999", 404),
        ("/topics/99999999/timeline", 404),
        ("/entities/99999999", 404),
        ("/artifacts/99999999/citations", 404),
        ("/no/such/route", 404),
    ],
)
def test_bad_requests_get_a_clear_status(api: httpx.Client, path: str, status: int) -> None:
    response = api.get(path)
    assert response.status_code == status
    assert response.json()["detail"]


def test_hostile_input_never_reaches_sql(api: httpx.Client) -> None:
    response = api.get("/artifacts/1;DROP TABLE artifacts")
    assert response.status_code == 422
    assert api.get("/artifacts/1").status_code == 200


def test_cache_counts_hits_and_misses_per_endpoint(api: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    api.post("/cache/invalidate", params={"reset_stats": True}, headers=headers)
    assert api.get("/entities/5").headers["x-cache"] == "miss"
    assert api.get("/entities/5").headers["x-cache"] == "hit"
    assert api.get("/entities/5").headers["x-cache"] == "hit"
    assert api.get("/discoveries", params={"limit": 7}).headers["x-cache"] == "miss"
    stats = api.get("/cache/stats").json()
    assert stats["endpoints"]["entity"] == {"hits": 2, "misses": 1, "hit_ratio": 0.6667}
    assert stats["endpoints"]["discoveries"]["misses"] == 1
    assert stats["backend"] == "memory"


def test_cache_invalidation_needs_the_admin_token(api: httpx.Client) -> None:
    assert api.post("/cache/invalidate").status_code == 401
    wrong = api.post("/cache/invalidate", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert "nope" not in wrong.text
    api.get("/entities/9")
    ok = api.post("/cache/invalidate", headers={"Authorization": f"Bearer {ADMIN}"})
    assert ok.status_code == 200 and ok.json()["dropped"] >= 1
    assert ok.json()["redis_invalidated"] is True
    assert api.get("/entities/9").headers["x-cache"] == "miss"


def test_invalidation_is_refused_when_no_token_is_configured(reference_db: Path) -> None:
    settings = ApiSettings(db=str(reference_db))
    with running_api(settings) as base:
        response = httpx.post(f"{base}/cache/invalidate", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403
    assert "HARNESS_ADMIN_TOKEN" in response.json()["detail"]


def test_prometheus_metrics_count_requests_per_route(api: httpx.Client) -> None:
    for _ in range(3):
        api.get("/artifacts/11")
    api.get("/artifacts/abc")
    families = {
        f.name: f for f in text_string_to_metric_families(api.get("/metrics/prometheus").text)
    }
    served = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["harness_api_requests"].samples
        if s.name.endswith("_total")
    }
    assert served[("/artifacts/{artifact_id}", "200")] >= 3
    assert served[("/artifacts/{artifact_id}", "422")] >= 1
    assert "harness_api_request_duration_seconds" in families
    assert "harness_api_db_pool_checked_out" in families
    assert "harness_api_db_pool_wait_seconds" in families
    assert "harness_api_cache_lookups" in families


def test_openapi_documents_every_endpoint(api: httpx.Client) -> None:
    paths = set(api.get("/openapi.json").json()["paths"])
    assert {
        "/health",
        "/metrics/prometheus",
        "/discoveries",
        "/topics/trending",
        "/topics/{topic_id}/timeline",
        "/entities/{entity_id}",
        "/artifacts/{artifact_id}",
        "/artifacts/{artifact_id}/citations",
        "/artifacts",
        "/artifacts/batch",
        "/cache/stats",
        "/cache/invalidate",
    } <= paths
