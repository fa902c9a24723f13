"""Ingestion: artifacts with their scores and topic links, one transaction per request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from harness.target.models import NewArtifact
from harness.target.tables import artifact_topics, artifacts, scores


async def insert_artifacts(
    conn: AsyncConnection, items: list[NewArtifact], now: datetime
) -> list[int]:
    """Insert ``items`` and return their new ids, in order. The caller owns the transaction."""
    rows = [
        {
            "external_id": f"api:{uuid.uuid4()}",
            "source_id": item.source_id,
            "title": item.title,
            "kind": item.kind,
            "url": item.url,
            "language": item.language,
            # Stored naive UTC, like every timestamp of the reference schema.
            "published_at": _naive_utc(item.published_at) if item.published_at else now,
            "created_at": now,
            "is_retracted": False,
            "metadata": item.metadata,
        }
        for item in items
    ]
    result = await conn.execute(
        insert(artifacts).returning(artifacts.c.id, sort_by_parameter_order=True), rows
    )
    ids = [int(r[0]) for r in result.all()]
    await conn.execute(
        insert(scores),
        [
            {
                "artifact_id": i,
                "discovery_score": it.discovery_score,
                "novelty": it.novelty,
                "impact": it.impact,
                "computed_at": now,
            }
            for i, it in zip(ids, items, strict=True)
        ],
    )
    links = [
        {"artifact_id": i, "topic_id": t, "relevance": 1.0}
        for i, it in zip(ids, items, strict=True)
        for t in dict.fromkeys(it.topic_ids)
    ]
    if links:
        await conn.execute(insert(artifact_topics), links)
    return ids


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
