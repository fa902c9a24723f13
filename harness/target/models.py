"""Request bodies the API accepts, validated before anything reaches SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 100
MAX_TOPICS_PER_ARTIFACT = 10

ArtifactKind = Literal["paper", "preprint", "dataset", "software", "patent", "post"]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class NewArtifact(BaseModel):
    """One artifact to ingest, with its scores and topic links."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=1000)]
    source_id: Annotated[int, Field(ge=1)]
    kind: ArtifactKind = "paper"
    url: Annotated[str, Field(max_length=2000)] | None = None
    language: Annotated[str, Field(min_length=2, max_length=8)] = "en"
    published_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    discovery_score: Unit
    novelty: Unit = 0.5
    impact: Unit = 0.0
    topic_ids: Annotated[
        list[Annotated[int, Field(ge=1)]], Field(max_length=MAX_TOPICS_PER_ARTIFACT)
    ] = []


class ArtifactBatch(BaseModel):
    """Up to :data:`MAX_BATCH` artifacts ingested in one transaction."""

    model_config = ConfigDict(extra="forbid")

    artifacts: Annotated[list[NewArtifact], Field(min_length=1, max_length=MAX_BATCH)]
