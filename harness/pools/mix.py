"""The reference workload's query mix for one driver: the critical queries plus a share of writes.

Reads are the critical queries with the database users' weights and parameter draws
(:mod:`harness.workload`). The write is the reference API's ingestion of one artifact: an
artifact, its scores and a topic link in one transaction, so a write holds its connection
across several round trips, as the API's does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, insert
from sqlalchemy.engine import Dialect

from harness.errors import ConfigError
from harness.popularity import DEFAULT_EXPONENT
from harness.target.tables import artifact_topics, artifacts, scores
from harness.workload import (
    CRITICAL_WEIGHTS,
    RECENT_DAYS,
    CompiledQuery,
    DatasetFacts,
    Popularity,
    compile_critical_queries,
    draw_params,
)

WRITE = "ingest_artifact"
# Marks the experiment's own rows, so nobody mistakes them for the dataset's.
EXTERNAL_PREFIX = "harness-pools:"


@dataclass(frozen=True)
class Statement:
    """SQL text for one driver and, for ``$n`` drivers, its parameter names in order."""

    sql: str
    positions: tuple[str, ...]
    #: Values the statement carries itself (its constants become binds too).
    defaults: dict[str, Any]

    def named(self, values: dict[str, Any]) -> dict[str, Any]:
        """Every bind's value by name, for a ``%(name)s`` driver."""
        return {**self.defaults, **values}

    def positional(self, values: dict[str, Any]) -> list[Any]:
        """Every bind's value in placeholder order, for a ``$n`` driver."""
        merged = self.named(values)
        return [merged[name] for name in self.positions]


def _compile(stmt: Any, dialect: Dialect) -> Statement:
    compiled = stmt.compile(dialect=dialect)
    positions = tuple(compiled.positiontup or ()) if dialect.positional else ()
    defaults = {k: v for k, v in compiled.params.items() if v is not None}
    return Statement(str(compiled), positions, defaults)


@dataclass(frozen=True)
class WriteStatements:
    """The ingestion transaction: artifact (returning its id), scores, topic link."""

    artifact: Statement
    score: Statement
    topic: Statement


def compile_write(dialect: Dialect) -> WriteStatements:
    """The ingestion statements in ``dialect``'s paramstyle."""
    artifact = insert(artifacts).values(
        external_id=bindparam("external_id"),
        source_id=bindparam("source_id"),
        title=bindparam("title"),
        kind="paper",
        language="en",
        published_at=bindparam("now"),
        created_at=bindparam("now"),
        is_retracted=False,
    )
    score = insert(scores).values(
        artifact_id=bindparam("artifact_id"),
        discovery_score=bindparam("score"),
        novelty=0.5,
        impact=0.0,
        computed_at=bindparam("now"),
    )
    topic = insert(artifact_topics).values(
        artifact_id=bindparam("artifact_id"), topic_id=bindparam("topic_id"), relevance=1.0
    )
    return WriteStatements(
        _compile(artifact.returning(artifacts.c.id), dialect),
        _compile(score, dialect),
        _compile(topic, dialect),
    )


class Mix:
    """Draws the next operation of the mix and its parameters, for one driver's dialect."""

    def __init__(
        self, dialect: Dialect, facts: DatasetFacts, write_share: float, seed: int
    ) -> None:
        if not 0.0 <= write_share <= 1.0:
            raise ConfigError(f"--write-share {write_share}: give a share between 0 and 1")
        self.queries: dict[str, CompiledQuery] = compile_critical_queries(dialect)
        self.write = compile_write(dialect)
        self.names: tuple[str, ...] = (*CRITICAL_WEIGHTS, WRITE)
        read_total = sum(CRITICAL_WEIGHTS.values())
        weights = [(1.0 - write_share) * w / read_total for w in CRITICAL_WEIGHTS.values()]
        self.p = np.array([*weights, write_share], dtype=np.float64)
        self.cum = np.cumsum(self.p)
        self.cum[-1] = 1.0
        self.write_index = len(self.names) - 1
        self.popularity = Popularity(facts.ranges, DEFAULT_EXPONENT, seed)
        self.since = facts.anchor - timedelta(days=RECENT_DAYS)
        self.sources = facts.ranges["sources"]

    def draw(self, rng: np.random.Generator) -> tuple[int, dict[str, Any]]:
        """The index (into :attr:`names`) of the next operation and its parameter values."""
        index = int(np.searchsorted(self.cum, rng.random(), side="right"))
        index = min(index, self.write_index)
        if index == self.write_index:
            return index, self.write_params(rng)
        query = self.queries[self.names[index]]
        return index, draw_params(query, self.popularity, rng, self.since)

    def write_params(self, rng: np.random.Generator) -> dict[str, Any]:
        """One new artifact: a random source, a popular topic, a score."""
        return {
            "external_id": f"{EXTERNAL_PREFIX}{uuid.uuid4()}",
            "source_id": int(rng.integers(self.sources.min_id, self.sources.max_id + 1)),
            "title": "pool sizing experiment",
            "now": datetime.now().replace(microsecond=0),
            "score": float(rng.random()),
            "topic_id": self.popularity.draw(rng, "topics"),
        }
