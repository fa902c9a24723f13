"""The reference workload's statements and parameters, free of Locust and gevent.

Database users (inside Locust) and the pool-sizing experiment (plain threads and asyncio)
run the same critical queries with the same parameter draws: ids with Zipf skew over the
tables' real id ranges, ``since`` = the dataset's anchor minus :data:`RECENT_DAYS`, the
builder's own ``limit``. Importing this module never monkey-patches anything.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.engine import Dialect

from harness.errors import ConfigError, HarnessError
from harness.popularity import ZipfSampler
from harness.target.queries import CRITICAL_QUERIES
from harness.target.tables import artifacts, dataset_info, entities, sources, topics

RECENT_DAYS = 7
# The tables whose ids users draw, as /meta and the database name them.
ID_KINDS = ("artifacts", "topics", "entities", "sources")
# The id parameter of a query -> the table whose ids it takes.
ID_PARAMS = {"artifact_id": "artifacts", "topic_id": "topics", "entity_id": "entities"}
_RANGE_TABLES = {"artifacts": artifacts, "topics": topics, "entities": entities, "sources": sources}
# The critical queries' mix: the share of traffic each takes in the reference workload.
CRITICAL_WEIGHTS: dict[str, int] = {
    "top_discoveries": 20,
    "topic_timeline": 20,
    "citations_out": 15,
    "citations_in": 15,
    "recent_discoveries": 10,
    "entity_profile": 20,
}


@dataclass(frozen=True)
class IdRange:
    """The ids of one table: ``min_id .. max_id`` (ids are dense in the reference data)."""

    min_id: int
    max_id: int

    @property
    def size(self) -> int:
        return self.max_id - self.min_id + 1


class Popularity:
    """Zipf samplers over the real id range of each table, shared by a process's users.

    The samplers are read-only once built (each user draws with its own generator), so one
    instance serves every greenlet. The hot-id permutation is seeded from the run's seed, so
    every user and every worker process agree on which ids are hot, as real traffic does.
    """

    def __init__(self, ranges: Mapping[str, IdRange], exponent: float, seed: int) -> None:
        self.ranges = dict(ranges)
        self.exponent = exponent
        self._samplers = {
            kind: ZipfSampler(
                r.size, first=r.min_id, exponent=exponent, seed=[seed, zlib.crc32(kind.encode())]
            )
            for kind, r in self.ranges.items()
        }

    def draw(self, rng: np.random.Generator, kind: str) -> int:
        """One id of table ``kind`` with skewed popularity."""
        return int(self._samplers[kind].sample(rng, 1)[0])

    def draw_distinct(self, rng: np.random.Generator, kind: str, k: int) -> list[int]:
        """Up to ``k`` distinct ids of ``kind`` (fewer when the table is smaller)."""
        drawn = dict.fromkeys(int(i) for i in self._samplers[kind].sample(rng, k))
        return list(drawn)[: min(k, self.ranges[kind].size)]


def check_ranges(ranges: Mapping[str, Any], *, where: str) -> dict[str, IdRange]:
    """Turn ``{"artifacts": {"min_id": 1, "max_id": 9}, ...}`` into :class:`IdRange` values."""
    out: dict[str, IdRange] = {}
    for kind in ID_KINDS:
        item = ranges.get(kind)
        if not isinstance(item, Mapping):
            raise HarnessError(f"{where} gives no id range for {kind}")
        low, high = item.get("min_id"), item.get("max_id")
        if low is None or high is None:
            raise HarnessError(f"{where}: table {kind} is empty; load a dataset first")
        out[kind] = IdRange(int(low), int(high))
    return out


@dataclass(frozen=True)
class CompiledQuery:
    """One statement as SQL text for one driver, with its parameters' defaults."""

    name: str
    sql: str
    #: Values of the binds the statement carries itself (e.g. SQLite's ``OFFSET 0``).
    defaults: Mapping[str, Any]
    #: The parameters a caller supplies.
    params: tuple[str, ...]
    #: The builder's default ``limit`` (50, or 10 for an entity profile), if it takes one.
    limit: int | None
    #: For positional drivers (asyncpg's ``$1``): the parameter names in placeholder order.
    positions: tuple[str, ...] = ()

    def positional(self, values: Mapping[str, Any]) -> list[Any]:
        """``values`` in placeholder order, for a driver with ``$n`` placeholders."""
        return [values[name] for name in self.positions]


def compile_statement(stmt: Select[Any], dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """SQL text of ``stmt`` in ``dialect``'s paramstyle and the values of its own binds."""
    compiled = stmt.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)


def compile_critical_queries(dialect: Dialect) -> dict[str, CompiledQuery]:
    """Every critical query compiled once for ``dialect``, named binds for its parameters."""
    out: dict[str, CompiledQuery] = {}
    for name, query in CRITICAL_QUERIES.items():
        stmt = query.build(**{p: bindparam(p) for p in query.params})
        compiled = stmt.compile(dialect=dialect)
        binds = dict(compiled.params)
        limit = inspect.signature(query.build).parameters.get("limit")
        out[name] = CompiledQuery(
            name=name,
            sql=str(compiled),
            defaults={k: v for k, v in binds.items() if k not in query.params},
            params=query.params,
            limit=limit.default if limit is not None else None,
            positions=tuple(compiled.positiontup or ()) if dialect.positional else (),
        )
    return out


@dataclass(frozen=True)
class DatasetFacts:
    """What a database user needs to know about the dataset before drawing parameters."""

    ranges: dict[str, IdRange]
    anchor: datetime


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value))


def read_facts(
    fetch: Callable[[str, Mapping[str, Any]], Sequence[Any]], dialect: Dialect
) -> DatasetFacts:
    """Id ranges and the anchor ("now" of the data), through ``fetch(sql, params) -> rows``."""
    ranges: dict[str, Any] = {}
    for kind, table in _RANGE_TABLES.items():
        sql, params = compile_statement(select(func.min(table.c.id), func.max(table.c.id)), dialect)
        low, high = fetch(sql, params)[0]
        ranges[kind] = {"min_id": low, "max_id": high}
    checked = check_ranges(ranges, where="the database")
    sql, params = compile_statement(
        select(dataset_info.c.value).where(dataset_info.c.key == "anchor"), dialect
    )
    rows = fetch(sql, params)
    if rows:
        anchor = _as_datetime(rows[0][0])
    else:
        # A database not written by `harness dataset`: its newest publication stands for "now".
        sql, params = compile_statement(select(func.max(artifacts.c.published_at)), dialect)
        anchor = _as_datetime(fetch(sql, params)[0][0])
    return DatasetFacts(checked, anchor)


def draw_params(
    query: CompiledQuery, popularity: Popularity, rng: np.random.Generator, since: Any
) -> dict[str, Any]:
    """Parameters for one run of ``query``: skewed ids, the recent cutoff, the limit."""
    values: dict[str, Any] = dict(query.defaults)
    for param in query.params:
        if param in ID_PARAMS:
            values[param] = popularity.draw(rng, ID_PARAMS[param])
        elif param == "since":
            values[param] = since
        elif param == "limit":
            values[param] = query.limit
        else:
            raise ConfigError(f"no way to draw parameter {param!r} of query {query.name!r}")
    return values
