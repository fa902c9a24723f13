"""Prometheus metrics of the reference API: requests per route, cache, database pool.

Each app gets its own registry, so several apps in one process (tests) do not collide. With
``--workers N`` each worker process reports its own figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness import __version__

# What /cache/stats calls the cache serving: Redis, the in-process LRU standing in for an
# unreachable Redis, or the in-process cache of an API started without Redis.
CACHE_BACKENDS = ("redis", "fallback", "memory")

# Bucket edges in seconds, dense around the SLAs (10 ms health, 50/100 ms single queries,
# 500 ms API p95, 1 s non-critical p99) so p95/p99 can be read at the thresholds.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.035,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
)


class _PoolCollector(Collector):
    """Reads the engine's pool state at scrape time."""

    def __init__(self, engine: AsyncEngine, max_overflow: int) -> None:
        self.engine = engine
        self.max_overflow = max_overflow

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pool: Any = self.engine.sync_engine.pool
        checked_out = pool.checkedout() if hasattr(pool, "checkedout") else 0
        checked_in = pool.checkedin() if hasattr(pool, "checkedin") else 0
        size = pool.size() if hasattr(pool, "size") else 0
        overflow = max(0, pool.overflow()) if hasattr(pool, "overflow") else 0
        yield GaugeMetricFamily("harness_api_db_pool_size", "Configured pool size", value=size)
        yield GaugeMetricFamily(
            "harness_api_db_pool_max_overflow",
            "Connections allowed beyond the pool size (checked out can reach size + this)",
            value=self.max_overflow,
        )
        yield GaugeMetricFamily(
            "harness_api_db_pool_checked_in", "Idle connections in the pool", value=checked_in
        )
        yield GaugeMetricFamily(
            "harness_api_db_pool_checked_out", "Connections in use now", value=checked_out
        )
        yield GaugeMetricFamily(
            "harness_api_db_pool_overflow", "Connections open beyond the pool size", value=overflow
        )


class _StateCollector(Collector):
    """The API's backends, read at scrape time: the cache in use changes when Redis fails."""

    def __init__(self, db_backend: str, cache_backend: Callable[[], str]) -> None:
        self.db_backend = db_backend
        self.cache_backend = cache_backend

    def collect(self) -> Iterable[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "harness_api_info", "The reference API: version and database", labels=["version", "db"]
        )
        info.add_metric([__version__, self.db_backend], 1)
        yield info
        cache = GaugeMetricFamily(
            "harness_api_cache_backend",
            "1 for the cache serving now (redis, fallback or memory), 0 for the others",
            labels=["backend"],
        )
        now = self.cache_backend()
        for backend in CACHE_BACKENDS:
            cache.add_metric([backend], 1 if backend == now else 0)
        yield cache


class ApiMetrics:
    """The API's metric families, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "harness_api_requests", "Requests served", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "harness_api_request_duration_seconds",
            "Time from request to last response byte",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "harness_api_requests_in_flight", "Requests being served", registry=r
        )
        self.cache = Counter(
            "harness_api_cache_lookups",
            "Cache lookups by endpoint, backend and result",
            ["endpoint", "backend", "result"],
            registry=r,
        )
        self.pool_wait = Histogram(
            "harness_api_db_pool_wait_seconds",
            "Time waiting to check a connection out of the pool",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.pool_timeouts = Counter(
            "harness_api_db_pool_timeouts", "Checkouts that gave up (pool exhausted)", registry=r
        )

    def watch_pool(self, engine: AsyncEngine, max_overflow: int) -> None:
        self.registry.register(_PoolCollector(engine, max_overflow))

    def watch_backends(self, db_backend: str, cache_backend: Callable[[], str]) -> None:
        self.registry.register(_StateCollector(db_backend, cache_backend))

    def cache_lookup(self, endpoint: str, backend: str, hit: bool) -> None:
        self.cache.labels(endpoint, backend, "hit" if hit else "miss").inc()


def metrics_middleware(app: ASGIApp, metrics: ApiMetrics) -> ASGIApp:
    """Wrap ``app`` so every HTTP request is counted and timed under its route template."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        metrics.in_flight.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            metrics.in_flight.dec()
            route = scope.get("route")
            # Unmatched paths share one label so a scan cannot grow the label set.
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "GET")
            metrics.requests.labels(method, template, str(status)).inc()
            metrics.latency.labels(method, template).observe(time.perf_counter() - started)

    return wrapped
