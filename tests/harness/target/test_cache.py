"""The API's cache on a real Redis, and what happens when Redis dies and comes back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from harness.services import EmbeddedRedis
from harness.target import cache as cache_module
from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR

ADMIN = {"Authorization": "Bearer t0ken"}


def test_responses_are_cached_in_redis(reference_db: Path, redis_url: str) -> None:
    settings = ApiSettings(
        db=str(reference_db), redis_url=redis_url, admin_token="t0ken", now=ANCHOR
    )
    with running_api(settings) as base, httpx.Client(base_url=base) as api:
        api.post("/cache/invalidate", params={"reset_stats": True}, headers=ADMIN)
        first = api.get("/topics/trending")
        second = api.get("/topics/trending")
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert first.json() == second.json()
        stats = api.get("/cache/stats").json()
    assert stats["backend"] == "redis"
    assert stats["backends"]["redis"] == {"hits": 1, "misses": 1, "hit_ratio": 0.5}
    assert "t0ken" not in str(stats)
    assert stats["redis_url"] is not None and ":***@" in stats["redis_url"]


def test_redis_killed_mid_test_falls_back_without_errors(
    reference_db: Path, private_redis: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "RETRY_AFTER_S", 0.2)
    info = private_redis.status()
    assert info is not None
    settings = ApiSettings(
        db=str(reference_db), redis_url=info.url, now=ANCHOR, admin_token="t0ken"
    )
    with running_api(settings) as base, httpx.Client(base_url=base) as api:
        assert api.get("/entities/3").status_code == 200
        assert api.get("/cache/stats").json()["backend"] == "redis"

        private_redis.stop()
        statuses = [api.get(f"/entities/{i}").status_code for i in (3, 4, 3, 4, 5)]
        assert statuses == [200] * 5
        stats = api.get("/cache/stats").json()
        assert stats["backend"] == "fallback"
        assert stats["redis_errors"] >= 1
        assert stats["backends"]["fallback"]["hits"] >= 2
        assert info.url.split("@")[0].split(":")[-1] not in (stats["last_error"] or "")
        partial = api.post("/cache/invalidate", headers={"Authorization": "Bearer t0ken"})
        assert partial.json()["redis_invalidated"] is False
        assert "only the in-process fallback" in partial.json()["warning"]

        private_redis.start()
        time.sleep(0.3)
        for _ in range(3):
            assert api.get("/entities/6").status_code == 200
        assert api.get("/cache/stats").json()["backend"] == "redis"


def test_without_redis_the_cache_lives_in_process(reference_db: Path) -> None:
    with running_api(ApiSettings(db=str(reference_db), now=ANCHOR)) as base:
        stats = httpx.get(f"{base}/cache/stats").json()
    assert stats["backend"] == "memory"
    assert stats["redis_configured"] is False
