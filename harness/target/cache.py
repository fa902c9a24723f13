"""Response cache: Redis when it answers, an in-process LRU when it does not.

A cache outage must not become an API outage: every Redis call has a short timeout, and on
failure the cache switches to the fallback and keeps serving. It tries Redis again after
:data:`RETRY_AFTER_S` and goes back to it as soon as it answers. ``/cache/stats`` tells which
backend served what.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from cachetools import TTLCache
from redis.exceptions import RedisError

from harness.urls import mask_url

KEY_PREFIX = "harness:v1:"
# Redis on loopback answers in well under a millisecond; 250 ms means it is down or stuck.
REDIS_TIMEOUT_S = 0.25
RETRY_AFTER_S = 2.0


@dataclass
class _Counts:
    hits: int = 0
    misses: int = 0

    def as_dict(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hits / total, 4) if total else None,
        }


@dataclass
class CacheStats:
    """Hit and miss counts per endpoint and per backend, since start or last reset."""

    per_endpoint: dict[str, _Counts] = field(default_factory=dict)
    per_backend: dict[str, _Counts] = field(default_factory=dict)
    redis_errors: int = 0

    def record(self, endpoint: str, backend: str, hit: bool) -> None:
        for table, key in ((self.per_endpoint, endpoint), (self.per_backend, backend)):
            counts = table.setdefault(key, _Counts())
            if hit:
                counts.hits += 1
            else:
                counts.misses += 1


class ResponseCache:
    """Caches serialised responses per endpoint, with a TTL per endpoint."""

    def __init__(
        self,
        redis_url: str | None,
        ttls: dict[str, float],
        *,
        fallback_size: int = 10_000,
        on_lookup: Any = None,
    ) -> None:
        self.ttls = ttls
        self.stats = CacheStats()
        self._redis_url = redis_url
        self._redis: aioredis.Redis | None = (
            aioredis.Redis.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                retry_on_timeout=False,
            )
            if redis_url
            else None
        )
        self._fallback: dict[str, TTLCache[str, bytes]] = {
            name: TTLCache(maxsize=fallback_size, ttl=ttl) for name, ttl in ttls.items()
        }
        self._redis_down_until = 0.0
        self.last_error: str | None = None
        # Called as on_lookup(endpoint, backend, hit) so metrics can count without a cycle.
        self._on_lookup = on_lookup

    @property
    def backend(self) -> str:
        """``redis``, ``fallback`` (Redis configured but down) or ``memory`` (no Redis)."""
        if self._redis is None:
            return "memory"
        return "fallback" if time.monotonic() < self._redis_down_until else "redis"

    def _use_redis(self) -> aioredis.Redis | None:
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return None
        return self._redis

    def _redis_failed(self, exc: Exception) -> None:
        self.stats.redis_errors += 1
        self.last_error = f"{type(exc).__name__}: {mask_url(str(exc))}"
        self._redis_down_until = time.monotonic() + RETRY_AFTER_S

    def _recorded(self, endpoint: str, backend: str, value: bytes | None) -> bytes | None:
        self.stats.record(endpoint, backend, value is not None)
        if self._on_lookup is not None:
            self._on_lookup(endpoint, backend, value is not None)
        return value

    async def get(self, endpoint: str, key: str) -> bytes | None:
        """The cached body for ``key`` under ``endpoint``, or None (counted as a miss)."""
        client = self._use_redis()
        if client is not None:
            try:
                raw = await client.get(KEY_PREFIX + endpoint + ":" + key)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
            else:
                # The client is built without decode_responses, so values come back as bytes.
                value = raw.encode() if isinstance(raw, str) else raw
                return self._recorded(endpoint, "redis", value)
        return self._recorded(
            endpoint, "fallback" if self._redis else "memory", self._fallback[endpoint].get(key)
        )

    async def set(self, endpoint: str, key: str, value: bytes) -> None:
        """Store ``value`` with the endpoint's TTL, in Redis or else in the fallback."""
        client = self._use_redis()
        if client is not None:
            try:
                await client.set(
                    KEY_PREFIX + endpoint + ":" + key, value, px=int(self.ttls[endpoint] * 1000)
                )
                return
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        self._fallback[endpoint][key] = value

    async def invalidate(self, endpoint: str | None = None) -> tuple[int, bool]:
        """Drop cached entries (one endpoint's or all): (how many, whether Redis was reached).

        With Redis down only the fallback is cleared, and the caller must say so: Redis's
        entries come back with it until their TTL ends."""
        names = [endpoint] if endpoint else list(self._fallback)
        dropped = 0
        for name in names:
            dropped += len(self._fallback[name])
            self._fallback[name].clear()
        client = self._use_redis()
        reached = client is not None or self._redis is None
        if client is not None:
            try:
                for name in names:
                    batch: list[bytes] = []
                    async for k in client.scan_iter(match=f"{KEY_PREFIX}{name}:*", count=500):
                        batch.append(k)
                        if len(batch) >= 500:
                            dropped += await client.unlink(*batch)
                            batch.clear()
                    if batch:
                        dropped += await client.unlink(*batch)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                reached = False
        return dropped, reached

    def snapshot(self) -> dict[str, Any]:
        """The ``/cache/stats`` body."""
        return {
            "backend": self.backend,
            "redis_configured": self._redis is not None,
            "redis_url": mask_url(self._redis_url) if self._redis_url else None,
            "redis_errors": self.stats.redis_errors,
            "last_error": self.last_error,
            "endpoints": {k: v.as_dict() for k, v in sorted(self.stats.per_endpoint.items())},
            "backends": {k: v.as_dict() for k, v in sorted(self.stats.per_backend.items())},
            "ttl_seconds": dict(self.ttls),
        }

    def reset_stats(self) -> None:
        self.stats = CacheStats()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
