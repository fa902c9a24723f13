"""The reference schema as the API sees it: typed SQLAlchemy tables for both backends.

The same tables read a SQLite file written by :mod:`harness.dataset` (TEXT timestamps,
0/1 booleans, JSON text) and a PostgreSQL copy of it (timestamp, boolean, jsonb): SQLAlchemy's
types convert both to the same Python values, which is what lets one query code path serve
both. ``metadata.create_all`` on PostgreSQL yields the schema a faithful migration produces,
indexes included.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    false,
    func,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

_ID = BigInteger().with_variant(Integer, "sqlite")
# SQLite stores timestamps as text in its own datetime() format, to the second. Binding
# parameters in that same format makes text comparisons agree with PostgreSQL's at the edges
# (SQLAlchemy's default adds ".000000", which sorts after a stored value of the same second).
_SQLITE_SECONDS = sqlite.DATETIME(  # type: ignore[no-untyped-call]
    storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d"
)
_TS = DateTime().with_variant(_SQLITE_SECONDS, "sqlite")
_JSON = JSON().with_variant(JSONB(), "postgresql")


def _pk() -> Column[int]:
    return Column("id", _ID, Identity(always=False), primary_key=True)


dataset_info = Table(
    "dataset_info",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

sources = Table(
    "sources",
    metadata,
    _pk(),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("trust", Double, nullable=False, server_default="0.5"),
    CheckConstraint("kind IN ('journal', 'preprint', 'blog', 'patent', 'news')"),
    CheckConstraint("trust >= 0 AND trust <= 1"),
)

topics = Table(
    "topics",
    metadata,
    _pk(),
    Column("parent_id", _ID, ForeignKey("topics.id", ondelete="SET NULL")),
    Column("name", Text, nullable=False),
    Column("slug", Text, nullable=False),
    Column("depth", Integer, nullable=False, server_default="0"),
    CheckConstraint("depth BETWEEN 0 AND 3"),
)
Index("ux_topics_slug", func.lower(topics.c.slug), unique=True)
Index("ix_topics_parent", topics.c.parent_id)

entities = Table(
    "entities",
    metadata,
    _pk(),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("description", Text),
    Column("first_seen", _TS),
    CheckConstraint("kind IN ('person', 'organization', 'method', 'dataset', 'chemical', 'gene')"),
)
Index("ix_entities_lower_name", func.lower(entities.c.name))

artifacts = Table(
    "artifacts",
    metadata,
    _pk(),
    Column("external_id", Text, nullable=False),
    Column("source_id", _ID, ForeignKey("sources.id", ondelete="RESTRICT"), nullable=False),
    Column("title", Text, nullable=False),
    Column("kind", Text, nullable=False, server_default="paper"),
    Column("url", Text),
    Column("language", Text, nullable=False, server_default="en"),
    Column("published_at", _TS, nullable=False),
    Column("created_at", _TS, nullable=False, server_default=func.now()),
    Column("updated_at", _TS),
    Column("is_retracted", Boolean, nullable=False, server_default=false()),
    Column("metadata", _JSON),
    Column("fingerprint", LargeBinary),
    CheckConstraint("length(title) > 0"),
    CheckConstraint("kind IN ('paper', 'preprint', 'dataset', 'software', 'patent', 'post')"),
)
Index("ux_artifacts_external_id", artifacts.c.external_id, unique=True)
Index(
    "ix_artifacts_published_live",
    artifacts.c.published_at.desc(),
    postgresql_where=artifacts.c.is_retracted == false(),
    sqlite_where=artifacts.c.is_retracted == false(),
)
Index("ix_artifacts_source", artifacts.c.source_id)

scores = Table(
    "scores",
    metadata,
    Column(
        "artifact_id",
        _ID,
        ForeignKey("artifacts.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("discovery_score", Double, nullable=False),
    Column("novelty", Double, nullable=False),
    Column("impact", Double, nullable=False),
    Column("computed_at", _TS, nullable=False, server_default=func.now()),
    CheckConstraint("discovery_score >= 0 AND discovery_score <= 1"),
    CheckConstraint("novelty >= 0 AND novelty <= 1"),
    CheckConstraint("impact >= 0 AND impact <= 1"),
)
Index("ix_scores_discovery", scores.c.discovery_score.desc(), scores.c.artifact_id)

artifact_topics = Table(
    "artifact_topics",
    metadata,
    Column("artifact_id", _ID, ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", _ID, ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
    Column("relevance", Double, nullable=False),
    CheckConstraint("relevance > 0 AND relevance <= 1"),
)
Index("ix_artifact_topics_topic", artifact_topics.c.topic_id, artifact_topics.c.artifact_id)

artifact_entities = Table(
    "artifact_entities",
    metadata,
    Column("artifact_id", _ID, ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_id", _ID, ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
    Column("mentions", Integer, nullable=False, server_default="1"),
    Column("salience", Double, nullable=False),
    CheckConstraint("mentions > 0"),
    CheckConstraint("salience >= 0 AND salience <= 1"),
)
Index(
    "ix_artifact_entities_entity",
    artifact_entities.c.entity_id,
    artifact_entities.c.salience.desc(),
    artifact_entities.c.artifact_id,
)

citations = Table(
    "citations",
    metadata,
    Column("citing_id", _ID, ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    Column("cited_id", _ID, ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    Column("context", Text),
    Column("created_at", _TS, nullable=False),
    CheckConstraint("citing_id <> cited_id"),
)
Index("ix_citations_cited", citations.c.cited_id, citations.c.citing_id)

bookmarks = Table(
    "bookmarks",
    metadata,
    _pk(),
    Column("artifact_id", _ID, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("user_ref", Text, nullable=False),
    Column("note", Text),
    Column("created_at", _TS, nullable=False, server_default=func.now()),
)
Index("ix_bookmarks_user", bookmarks.c.user_ref, bookmarks.c.created_at.desc())
