"""The reference API: routes, caching and error mapping over :mod:`harness.target.queries`."""

from __future__ import annotations

import json
import pathlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from harness import __version__
from harness.target import queries
from harness.target.cache import ResponseCache
from harness.target.db import backend_of, make_engine
from harness.target.metrics import ApiMetrics, metrics_middleware
from harness.target.models import ArtifactBatch, NewArtifact
from harness.target.settings import ApiSettings
from harness.target.writes import insert_artifacts

Id = Annotated[int, Path(ge=1, le=2**62, description="a positive integer id")]
Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)]
# Two years of history: a window longer than that reads everything.
MAX_WINDOW_DAYS = 3650


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dump(obj: Any) -> bytes:
    """Serialise a response body the same way on both backends."""
    return json.dumps(obj, default=_json_default, separators=(",", ":")).encode()


def _json(body: bytes, *, status: int = 200, cache: str | None = None) -> Response:
    headers = {"X-Cache": cache} if cache else None
    return Response(
        content=body, status_code=status, media_type="application/json", headers=headers
    )


class Api:
    """State one app instance holds: engine, cache, metrics, clock."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.backend = backend_of(settings.db)
        self.metrics = ApiMetrics()
        self.engine: AsyncEngine = make_engine(settings)
        self.metrics.watch_pool(self.engine, settings.max_overflow)
        self.slow_log = None
        if settings.slow_query_log:
            from harness.profiler.slowlog import SlowQueryLog

            self.slow_log = SlowQueryLog(
                pathlib.Path(settings.slow_query_log),
                settings.slow_query_ms,
                _sqlglot_dialect(self.backend),
            )
            self.slow_log.attach(self.engine.sync_engine)
        self.cache = ResponseCache(
            settings.redis_url,
            settings.cache_ttls,
            fallback_size=settings.fallback_cache_size,
            on_lookup=self.metrics.cache_lookup,
        )
        self.metrics.watch_backends(self.backend, lambda: self.cache.backend)

    def now(self) -> datetime:
        return self.settings.now or datetime.now(UTC).replace(tzinfo=None)

    @asynccontextmanager
    async def connect(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """Check a connection out of the pool (timed), in a transaction when writing."""
        started = time.perf_counter()
        try:
            conn = await self.engine.connect()
        except sa_exc.TimeoutError:
            self.metrics.pool_timeouts.inc()
            raise HTTPException(
                503, "database pool exhausted; raise --pool-size or --max-overflow"
            ) from None
        except (sa_exc.DBAPIError, OSError) as exc:
            raise HTTPException(503, f"database unavailable ({type(exc).__name__})") from None
        self.metrics.pool_wait.observe(time.perf_counter() - started)
        try:
            if write:
                async with conn.begin():
                    yield conn
            else:
                yield conn
        finally:
            await conn.close()

    async def cached(
        self, endpoint: str, key: str, compute: Callable[[], Awaitable[Any]]
    ) -> Response:
        body = await self.cache.get(endpoint, key)
        if body is not None:
            return _json(body, cache="hit")
        body = dump(await compute())
        await self.cache.set(endpoint, key, body)
        return _json(body, cache="miss")


def create_app(settings: ApiSettings) -> FastAPI:
    """Build the reference API for ``settings`` (the database is opened lazily)."""
    api = Api(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await api.cache.close()
        await api.engine.dispose()

    app = FastAPI(
        title="harness reference API",
        version=__version__,
        description="A discovery/ranking service over artifacts, scores, topics, entities and "
        "citations: the application under test.",
        lifespan=lifespan,
    )
    app.state.api = api

    @app.exception_handler(sa_exc.IntegrityError)
    async def integrity_error(_request: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": "rejected by a database constraint (unknown source_id or "
                f"topic id, or a value out of range): {type(exc.orig).__name__}"
            },
        )

    @app.exception_handler(sa_exc.DBAPIError)
    async def database_error(_request: Request, exc: sa_exc.DBAPIError) -> JSONResponse:
        return JSONResponse(
            status_code=503, content={"detail": f"database error ({type(exc.orig).__name__})"}
        )

    @app.get("/health", summary="Liveness: cheap, touches no database")
    async def health() -> dict[str, str]:
        return {
            "status": "ok",
            "backend": api.backend,
            "cache": api.cache.backend,
            "version": __version__,
        }

    @app.get(
        "/metrics/prometheus",
        summary="Prometheus metrics of this process",
        response_class=PlainTextResponse,
    )
    async def prometheus() -> Response:
        return Response(generate_latest(api.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/meta", summary="Dataset facts and id ranges")
    async def meta() -> Response:
        async with api.connect() as conn:
            return _json(dump(await queries.fetch_meta(conn)))

    @app.get("/discoveries", summary="Top live artifacts by discovery score")
    async def discoveries(
        limit: Limit = queries.DEFAULT_LIMIT,
        min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
        since_days: Annotated[int | None, Query(ge=1, le=MAX_WINDOW_DAYS)] = None,
    ) -> Response:
        async def compute() -> Any:
            since = queries.cutoff(api.now(), since_days) if since_days else None
            async with api.connect() as conn:
                return await queries.fetch_discoveries(conn, limit, min_score, since)

        return await api.cached("discoveries", f"{limit}:{min_score}:{since_days}", compute)

    @app.get("/topics/trending", summary="Topics with the most new artifacts in a window")
    async def trending(
        window_days: Annotated[int, Query(ge=1, le=MAX_WINDOW_DAYS)] = 7,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Response:
        async def compute() -> Any:
            async with api.connect() as conn:
                return await queries.fetch_trending_topics(
                    conn, queries.cutoff(api.now(), window_days), limit
                )

        return await api.cached("topics_trending", f"{window_days}:{limit}", compute)

    @app.get("/topics/{topic_id}/timeline", summary="A topic's newest artifacts")
    async def timeline(
        topic_id: Id,
        limit: Limit = queries.DEFAULT_LIMIT,
        before: Annotated[int | None, Query(ge=1)] = None,
    ) -> Response:
        async with api.connect() as conn:
            topic = await queries.fetch_topic(conn, topic_id)
            if topic is None:
                raise HTTPException(404, f"topic {topic_id} not found")
            items = await queries.fetch_topic_timeline(conn, topic_id, limit, before)
        return _json(dump({"topic": topic, "artifacts": items}))

    @app.get("/entities/{entity_id}", summary="Entity profile with its top artifacts")
    async def entity(entity_id: Id) -> Response:
        async def compute() -> Any:
            async with api.connect() as conn:
                profile = await queries.fetch_entity_profile(conn, entity_id)
            if profile is None:
                raise HTTPException(404, f"entity {entity_id} not found")
            return profile

        return await api.cached("entity", str(entity_id), compute)

    @app.get("/artifacts/{artifact_id}", summary="One artifact with scores, topics, entities")
    async def artifact(artifact_id: Id) -> Response:
        async with api.connect() as conn:
            found = await queries.fetch_artifact(conn, artifact_id)
        if found is None:
            raise HTTPException(404, f"artifact {artifact_id} not found")
        return _json(dump(found))

    @app.get("/artifacts/{artifact_id}/citations", summary="Citation graph, in or out")
    async def artifact_citations(
        artifact_id: Id,
        direction: Literal["in", "out"] = "out",
        limit: Limit = queries.DEFAULT_LIMIT,
    ) -> Response:
        async with api.connect() as conn:
            if not await queries.artifact_exists(conn, artifact_id):
                raise HTTPException(404, f"artifact {artifact_id} not found")
            body = await queries.fetch_citations(conn, artifact_id, direction, limit)
        return _json(dump(body))

    @app.post("/artifacts", status_code=201, summary="Ingest one artifact")
    async def create_artifact(item: NewArtifact) -> Response:
        async with api.connect(write=True) as conn:
            ids = await insert_artifacts(conn, [item], api.now())
        return _json(dump({"id": ids[0]}), status=201)

    @app.post("/artifacts/batch", status_code=201, summary="Ingest up to 100 in one transaction")
    async def create_batch(batch: ArtifactBatch) -> Response:
        async with api.connect(write=True) as conn:
            ids = await insert_artifacts(conn, batch.artifacts, api.now())
        return _json(dump({"ids": ids, "count": len(ids)}), status=201)

    @app.get("/cache/stats", summary="Cache backend, hits and misses per endpoint")
    async def cache_stats() -> dict[str, Any]:
        return api.cache.snapshot()

    @app.post("/cache/invalidate", summary="Drop cached responses (admin token required)")
    async def cache_invalidate(
        endpoint: Annotated[
            Literal["discoveries", "topics_trending", "entity"] | None, Query()
        ] = None,
        reset_stats: bool = False,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        _require_admin(settings.admin_token, authorization)
        dropped, reached = await api.cache.invalidate(endpoint)
        if reset_stats:
            api.cache.reset_stats()
        body: dict[str, Any] = {
            "dropped": dropped,
            "endpoint": endpoint or "all",
            "redis_invalidated": reached,
        }
        if not reached:
            body["warning"] = (
                "Redis is unreachable: only the in-process fallback was cleared; "
                "Redis entries return with it until their TTL ends"
            )
        return body

    wrapped: Any = metrics_middleware(app, api.metrics)
    if api.slow_log is not None:
        from harness.profiler.slowlog import endpoint_middleware

        wrapped = endpoint_middleware(wrapped)
    return wrapped  # type: ignore[no-any-return]


def _sqlglot_dialect(backend: str) -> str:
    return "postgres" if backend == "postgresql" else "sqlite"


def _require_admin(expected: str | None, authorization: str | None) -> None:
    if not authorization:
        raise HTTPException(
            401,
            "admin token required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not expected:
        raise HTTPException(
            403, "cache invalidation is disabled: start the API with HARNESS_ADMIN_TOKEN set"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(403, "admin token rejected")


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings come from ``HARNESS_API_*`` variables."""
    return create_app(ApiSettings.from_env())
