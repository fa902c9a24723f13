"""Every query the reference API runs, written once in SQLAlchemy Core for both backends.

The critical queries of the workload (DESIGN.md: top discoveries, topic timeline, citations
out and in, recent discoveries, entity profile) are also exported as :data:`CRITICAL_QUERIES`
so that benchmarks, database users and validation run exactly the statements the API runs.
Every ORDER BY ends on a key, so both backends return rows in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, false, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from harness.target.tables import (
    artifact_entities,
    artifact_topics,
    artifacts,
    citations,
    dataset_info,
    entities,
    scores,
    sources,
    topics,
)

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
PROFILE_TOP = 10

a, s, at, ae, c = artifacts, scores, artifact_topics, artifact_entities, citations

_SUMMARY = (
    a.c.id,
    a.c.title,
    a.c.kind,
    a.c.published_at,
    s.c.discovery_score,
)


def cutoff(now: datetime, days: int) -> datetime:
    """Start of a ``days`` window ending at ``now``, truncated to the minute so that repeated
    requests share a cache key and both backends get the same bound."""
    return (now - timedelta(days=days)).replace(second=0, microsecond=0)


# -- the critical queries ----------------------------------------------------------------------


def top_discoveries(
    limit: int = DEFAULT_LIMIT, min_score: float | None = None, since: datetime | None = None
) -> Select[Any]:
    """Live artifacts by discovery score, best first (index: scores by score and artifact)."""
    q = (
        select(*_SUMMARY, s.c.novelty, s.c.impact)
        .select_from(s.join(a, a.c.id == s.c.artifact_id))
        .where(a.c.is_retracted == false())
        .order_by(s.c.discovery_score.desc(), s.c.artifact_id)
        .limit(limit)
    )
    if min_score is not None:
        q = q.where(s.c.discovery_score >= min_score)
    if since is not None:
        q = q.where(a.c.published_at >= since)
    return q


def recent_discoveries(since: datetime, limit: int = DEFAULT_LIMIT) -> Select[Any]:
    """Live artifacts published since ``since``, newest first (partial DESC index)."""
    return (
        select(*_SUMMARY)
        .select_from(a.join(s, s.c.artifact_id == a.c.id))
        .where(a.c.is_retracted == false(), a.c.published_at >= since)
        .order_by(a.c.published_at.desc(), a.c.id.desc())
        .limit(limit)
    )


def topic_timeline(
    topic_id: int, limit: int = DEFAULT_LIMIT, before: int | None = None
) -> Select[Any]:
    """A topic's newest live artifacts (ids rise with ingestion time), paged by ``before``."""
    q = (
        select(*_SUMMARY, at.c.relevance)
        .select_from(at.join(a, a.c.id == at.c.artifact_id).join(s, s.c.artifact_id == a.c.id))
        .where(at.c.topic_id == topic_id, a.c.is_retracted == false())
        .order_by(at.c.artifact_id.desc())
        .limit(limit)
    )
    if before is not None:
        q = q.where(at.c.artifact_id < before)
    return q


def citations_out(artifact_id: int, limit: int = DEFAULT_LIMIT) -> Select[Any]:
    """What an artifact cites."""
    return (
        select(a.c.id, a.c.title, a.c.published_at, c.c.context)
        .select_from(c.join(a, a.c.id == c.c.cited_id))
        .where(c.c.citing_id == artifact_id)
        .order_by(c.c.cited_id)
        .limit(limit)
    )


def citations_in(artifact_id: int, limit: int = DEFAULT_LIMIT) -> Select[Any]:
    """Who cites an artifact, newest first (index: citations by cited and citing)."""
    return (
        select(a.c.id, a.c.title, a.c.published_at, c.c.context)
        .select_from(c.join(a, a.c.id == c.c.citing_id))
        .where(c.c.cited_id == artifact_id)
        .order_by(c.c.citing_id.desc())
        .limit(limit)
    )


def entity_top_artifacts(entity_id: int, limit: int = PROFILE_TOP) -> Select[Any]:
    """The artifacts where an entity is most salient (index: entity, salience, artifact)."""
    return (
        select(*_SUMMARY, ae.c.salience, ae.c.mentions)
        .select_from(ae.join(a, a.c.id == ae.c.artifact_id).join(s, s.c.artifact_id == a.c.id))
        .where(ae.c.entity_id == entity_id)
        .order_by(ae.c.salience.desc(), ae.c.artifact_id)
        .limit(limit)
    )


@dataclass(frozen=True)
class CriticalQuery:
    """One of the workload's critical queries and the parameters it takes."""

    name: str
    build: Callable[..., Select[Any]]
    params: tuple[str, ...]
    sla_p95_ms: float = 100.0
    sla_p99_ms: float = 500.0


CRITICAL_QUERIES: Mapping[str, CriticalQuery] = {
    q.name: q
    for q in (
        CriticalQuery("top_discoveries", top_discoveries, ("limit",)),
        CriticalQuery("topic_timeline", topic_timeline, ("topic_id", "limit")),
        CriticalQuery("citations_out", citations_out, ("artifact_id", "limit")),
        CriticalQuery("citations_in", citations_in, ("artifact_id", "limit")),
        CriticalQuery("recent_discoveries", recent_discoveries, ("since", "limit")),
        CriticalQuery("entity_profile", entity_top_artifacts, ("entity_id", "limit")),
    )
}


# -- the API's reads ---------------------------------------------------------------------------


def _rows(result: Sequence[Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


async def fetch_discoveries(
    conn: AsyncConnection, limit: int, min_score: float | None, since: datetime | None
) -> list[dict[str, Any]]:
    return _rows((await conn.execute(top_discoveries(limit, min_score, since))).all())


async def fetch_trending_topics(
    conn: AsyncConnection, since: datetime, limit: int
) -> list[dict[str, Any]]:
    """Topics with the most live artifacts published since ``since``."""
    n = func.count().label("artifacts")
    q = (
        select(
            topics.c.id,
            topics.c.name,
            topics.c.slug,
            n,
            func.max(s.c.discovery_score).label("best_score"),
        )
        .select_from(
            a.join(at, at.c.artifact_id == a.c.id)
            .join(topics, topics.c.id == at.c.topic_id)
            .join(s, s.c.artifact_id == a.c.id)
        )
        .where(a.c.is_retracted == false(), a.c.published_at >= since)
        .group_by(topics.c.id, topics.c.name, topics.c.slug)
        .order_by(n.desc(), topics.c.id)
        .limit(limit)
    )
    return _rows((await conn.execute(q)).all())


async def fetch_topic(conn: AsyncConnection, topic_id: int) -> dict[str, Any] | None:
    q = select(topics.c.id, topics.c.name, topics.c.slug, topics.c.parent_id, topics.c.depth).where(
        topics.c.id == topic_id
    )
    row = (await conn.execute(q)).first()
    return dict(row._mapping) if row else None


async def fetch_topic_timeline(
    conn: AsyncConnection, topic_id: int, limit: int, before: int | None
) -> list[dict[str, Any]]:
    return _rows((await conn.execute(topic_timeline(topic_id, limit, before))).all())


async def fetch_entity_profile(conn: AsyncConnection, entity_id: int) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(
                entities.c.id,
                entities.c.name,
                entities.c.kind,
                entities.c.description,
                entities.c.first_seen,
            ).where(entities.c.id == entity_id)
        )
    ).first()
    if row is None:
        return None
    profile = dict(row._mapping)
    profile["artifact_count"] = (
        await conn.execute(select(func.count()).select_from(ae).where(ae.c.entity_id == entity_id))
    ).scalar_one()
    profile["top_artifacts"] = _rows((await conn.execute(entity_top_artifacts(entity_id))).all())
    return profile


async def fetch_artifact(conn: AsyncConnection, artifact_id: int) -> dict[str, Any] | None:
    q = (
        select(a, s.c.discovery_score, s.c.novelty, s.c.impact, sources.c.name.label("source"))
        .select_from(
            a.outerjoin(s, s.c.artifact_id == a.c.id).join(sources, sources.c.id == a.c.source_id)
        )
        .where(a.c.id == artifact_id)
    )
    row = (await conn.execute(q)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    fp = out.get("fingerprint")
    out["fingerprint"] = fp.hex() if fp is not None else None
    out["topics"] = _rows(
        (
            await conn.execute(
                select(topics.c.id, topics.c.name, at.c.relevance)
                .select_from(at.join(topics, topics.c.id == at.c.topic_id))
                .where(at.c.artifact_id == artifact_id)
                .order_by(at.c.relevance.desc(), topics.c.id)
            )
        ).all()
    )
    out["entities"] = _rows(
        (
            await conn.execute(
                select(entities.c.id, entities.c.name, entities.c.kind, ae.c.salience)
                .select_from(ae.join(entities, entities.c.id == ae.c.entity_id))
                .where(ae.c.artifact_id == artifact_id)
                .order_by(ae.c.salience.desc(), entities.c.id)
                .limit(PROFILE_TOP)
            )
        ).all()
    )
    out["cited_by_count"] = await _count(conn, c.c.cited_id == artifact_id)
    out["cites_count"] = await _count(conn, c.c.citing_id == artifact_id)
    return out


async def _count(conn: AsyncConnection, condition: Any) -> int:
    return int(
        (await conn.execute(select(func.count()).select_from(c).where(condition))).scalar_one()
    )


async def fetch_citations(
    conn: AsyncConnection, artifact_id: int, direction: str, limit: int
) -> dict[str, Any]:
    if direction == "in":
        rows = (await conn.execute(citations_in(artifact_id, limit))).all()
        total = await _count(conn, c.c.cited_id == artifact_id)
    else:
        rows = (await conn.execute(citations_out(artifact_id, limit))).all()
        total = await _count(conn, c.c.citing_id == artifact_id)
    return {
        "artifact_id": artifact_id,
        "direction": direction,
        "total": total,
        "citations": _rows(rows),
    }


async def artifact_exists(conn: AsyncConnection, artifact_id: int) -> bool:
    return (await conn.execute(select(a.c.id).where(a.c.id == artifact_id))).first() is not None


async def fetch_meta(conn: AsyncConnection) -> dict[str, Any]:
    """Dataset facts and id ranges, so load generators draw ids that exist."""
    info = {r.key: r.value for r in (await conn.execute(select(dataset_info))).all()}
    ranges: dict[str, dict[str, int | None]] = {}
    for name, table in (
        ("artifacts", a),
        ("topics", topics),
        ("entities", entities),
        ("sources", sources),
    ):
        low, high = (await conn.execute(select(func.min(table.c.id), func.max(table.c.id)))).one()
        ranges[name] = {"min_id": low, "max_id": high}
    return {"dataset": info, "ids": ranges}
