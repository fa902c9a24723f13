"""Query parity: the application's queries give the same rows on PostgreSQL, fast enough,
through an index.

Queries are written for SQLite (the application's dialect) and translated with the
migration's sqlglot rules (the same ones its views get). The default set is the reference
workload's critical queries (DESIGN.md), with the busiest topic, entity and artifacts as
parameters; ``--queries FILE`` gives named queries instead::

    -- name: open_orders
    SELECT id, total FROM orders WHERE status = 'open' ORDER BY id;

Each runs ``repeat`` times on each side, interleaved. Rows are compared in canonical form
(floats bit for bit), in order when the query has an ORDER BY, as a multiset otherwise.
PostgreSQL's ``EXPLAIN`` names the indexes each query uses; a sequential scan of a large
table, or a p95 more than ``SLOWER`` times SQLite's (and above ``FLOOR_MS``), is flagged.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from harness.errors import ConfigError
from migrate.plan import Plan
from migrate.translate import ColumnInfo, TableInfo, ascii_lower, translate_view
from migrate.validate.canonical import RowCanon, value_form

SLOWER = 2.0
# A client-server round trip alone costs about a millisecond that an in-process SQLite read
# never pays: below this p95 a query is fast enough whatever the ratio.
FLOOR_MS = 2.0
LARGE_TABLE_ROWS = 10_000
DEFAULT_REPEAT = 20
STATEMENT_TIMEOUT_MS = 30_000
_NAME_LINE = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)
# psycopg's type names -> PostgreSQL's, for the canonical forms.
_PG_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "varchar": "character varying",
    "bpchar": "character",
}
REFERENCE_TABLES = frozenset(
    {"artifacts", "scores", "artifact_topics", "artifact_entities", "citations"}
)


@dataclass(frozen=True)
class NamedQuery:
    """A query written for SQLite."""

    name: str
    sql: str


@dataclass
class QueryResult:
    """One query on both sides."""

    name: str
    sqlite_sql: str
    pg_sql: str | None
    rows: int = 0
    same_rows: bool = False
    difference: str = ""
    sqlite_p50_ms: float = 0.0
    sqlite_p95_ms: float = 0.0
    pg_p50_ms: float = 0.0
    pg_p95_ms: float = 0.0
    indexes: list[str] = field(default_factory=list)
    seq_scans: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Same rows (flags are warnings unless asked to fail: ``--strict-queries``)."""
        return self.same_rows


def reference_queries(sqlite: sqlite3.Connection) -> list[NamedQuery]:
    """The critical queries of the reference workload, on its busiest ids."""

    def one(sql: str) -> Any:
        row = sqlite.execute(sql).fetchone()
        return row[0] if row else None

    topic = one("SELECT topic_id FROM artifact_topics GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    citing = one("SELECT citing_id FROM citations GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    cited = one("SELECT cited_id FROM citations GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    entity = one(
        "SELECT entity_id FROM artifact_entities GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )
    since = one("SELECT datetime(max(published_at), '-7 days') FROM artifacts")
    # Parameters come from the database as integers and an ISO text; int() and the
    # quoting below keep them literals.
    topic, citing, cited, entity = (int(v or 0) for v in (topic, citing, cited, entity))
    since_literal = "'" + str(since or "1970-01-01 00:00:00").replace("'", "''") + "'"
    summary = "a.id, a.title, a.kind, a.published_at, s.discovery_score"
    return [
        NamedQuery(
            "top_discoveries",
            f"SELECT {summary}, s.novelty, s.impact FROM scores s JOIN artifacts a "  # noqa: S608 - ints and a quoted literal
            "ON a.id = s.artifact_id WHERE a.is_retracted = 0 "
            "ORDER BY s.discovery_score DESC, s.artifact_id LIMIT 50",
        ),
        NamedQuery(
            "topic_timeline",
            f"SELECT {summary}, t.relevance FROM artifact_topics t "  # noqa: S608 - ints and a quoted literal
            "JOIN artifacts a ON a.id = t.artifact_id JOIN scores s ON s.artifact_id = a.id "
            f"WHERE t.topic_id = {topic} AND a.is_retracted = 0 "
            "ORDER BY t.artifact_id DESC LIMIT 50",
        ),
        NamedQuery(
            "citations_out",
            "SELECT a.id, a.title, a.published_at, c.context FROM citations c "  # noqa: S608 - ints and a quoted literal
            f"JOIN artifacts a ON a.id = c.cited_id WHERE c.citing_id = {citing} "
            "ORDER BY c.cited_id LIMIT 50",
        ),
        NamedQuery(
            "citations_in",
            "SELECT a.id, a.title, a.published_at, c.context FROM citations c "  # noqa: S608 - ints and a quoted literal
            f"JOIN artifacts a ON a.id = c.citing_id WHERE c.cited_id = {cited} "
            "ORDER BY c.citing_id DESC LIMIT 50",
        ),
        NamedQuery(
            "recent_discoveries",
            f"SELECT {summary} FROM artifacts a JOIN scores s ON s.artifact_id = a.id "  # noqa: S608 - ints and a quoted literal
            f"WHERE a.is_retracted = 0 AND a.published_at >= {since_literal} "
            "ORDER BY a.published_at DESC, a.id DESC LIMIT 50",
        ),
        NamedQuery(
            "entity_profile",
            f"SELECT {summary}, e.salience, e.mentions FROM artifact_entities e "  # noqa: S608 - ints and a quoted literal
            "JOIN artifacts a ON a.id = e.artifact_id JOIN scores s ON s.artifact_id = a.id "
            f"WHERE e.entity_id = {entity} ORDER BY e.salience DESC, e.artifact_id LIMIT 10",
        ),
    ]


def read_queries(path: Path) -> list[NamedQuery]:
    """Named queries from a file (``-- name: x`` before each); ConfigError when malformed."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"--queries {path}: cannot read it ({exc.strerror})") from None
    marks = list(_NAME_LINE.finditer(text))
    if not marks:
        raise ConfigError(f"--queries {path}: no '-- name: <name>' line before a query")
    out = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        sql = text[mark.end() : end].strip().rstrip(";").strip()
        if not sql:
            raise ConfigError(f"--queries {path}: query {mark.group(1)!r} is empty")
        out.append(NamedQuery(mark.group(1), sql))
    return out


def _relations(plan: Plan) -> dict[str, TableInfo]:
    return {
        ascii_lower(t.name): TableInfo.of(
            t.name, [ColumnInfo(c.name, c.cast.pg_type, c.collation) for c in t.columns]
        )
        for t in plan.tables
    }


def _ordered(sql: str) -> bool:
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except SqlglotError:
        return True
    return tree.args.get("order") is not None


def run_query(
    query: NamedQuery,
    sqlite: sqlite3.Connection,
    pg: psycopg.Connection[Any],
    plan: Plan,
    repeat: int = DEFAULT_REPEAT,
    timezone: str | None = None,
) -> QueryResult:
    """Run ``query`` on both sides and compare."""
    translation = translate_view(f"CREATE VIEW q AS {query.sql}", _relations(plan))
    result = QueryResult(query.name, query.sql, translation.sql if translation.ok else None)
    if not translation.ok or translation.sql is None:
        result.flags.append("not translated: " + "; ".join(translation.reasons))
        return result
    pg_sql = translation.sql
    try:
        pg.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        mine_times, theirs_times = [], []
        mine: list[tuple[Any, ...]] = []
        theirs: list[tuple[Any, ...]] = []
        types: list[str] = []
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            mine = sqlite.execute(query.sql).fetchall()
            mine_times.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            cursor = pg.execute(pg_sql.encode())
            theirs = cursor.fetchall()
            theirs_times.append((time.perf_counter() - started) * 1000)
            types = [_type_name(d.type_code) for d in cursor.description or []]
        plan_json = pg.execute(f"EXPLAIN (FORMAT JSON) {pg_sql}".encode()).fetchone()
    except (sqlite3.Error, psycopg.Error) as exc:
        pg.rollback()
        result.flags.append(f"failed: {' '.join(str(exc).split())}")
        return result
    pg.rollback()
    # numpy's linear percentiles, as every report of the harness computes them.
    result.sqlite_p50_ms, result.sqlite_p95_ms = map(float, np.percentile(mine_times, [50, 95]))
    result.pg_p50_ms, result.pg_p95_ms = map(float, np.percentile(theirs_times, [50, 95]))
    result.rows = len(theirs)
    _compare_rows(result, mine, theirs, types, _ordered(query.sql), timezone)
    _read_plan(result, plan_json[0] if plan_json else [], pg)
    if result.pg_p95_ms > SLOWER * result.sqlite_p95_ms and result.pg_p95_ms > FLOOR_MS:
        result.flags.append(
            f"PostgreSQL p95 {result.pg_p95_ms:.2f} ms is more than {SLOWER:g}x SQLite's "
            f"{result.sqlite_p95_ms:.2f} ms"
        )
    return result


def _type_name(oid: int) -> str:
    info = psycopg.adapters.types.get(oid)
    name = info.name if info is not None else "text"
    return _PG_NAMES.get(name, name)


def _compare_rows(
    result: QueryResult,
    mine: list[tuple[Any, ...]],
    theirs: list[tuple[Any, ...]],
    types: list[str],
    ordered: bool,
    timezone: str | None,
) -> None:
    canon = RowCanon([(str(i), t) for i, t in enumerate(types)], timezone)
    a = [canon.text(r) for r in mine] if types else []
    b = ["|".join(value_form(v, t) for v, t in zip(r, types, strict=True)) for r in theirs]
    if (a == b) if ordered else (Counter(a) == Counter(b)):
        result.same_rows = True
        return
    if len(a) != len(b):
        result.difference = f"{len(a)} rows on SQLite, {len(b)} on PostgreSQL"
        return
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            result.difference = f"row {i + 1}: {x[:80]!r} vs {y[:80]!r}"
            return
    result.difference = "the same rows in another order"


def _read_plan(result: QueryResult, plan: Any, pg: psycopg.Connection[Any]) -> None:
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    data = json.loads(plan) if isinstance(plan, str) else plan
    for top in data or []:
        walk(top.get("Plan", {}))
    for node in nodes:
        if node.get("Index Name"):
            result.indexes.append(str(node["Index Name"]))
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name"):
            result.seq_scans.append(str(node["Relation Name"]))
    for relation in sorted(set(result.seq_scans)):
        row = pg.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            ('"' + relation.replace('"', '""') + '"',),
        ).fetchone()
        if row and row[0] is not None and row[0] >= LARGE_TABLE_ROWS:
            result.flags.append(f"sequential scan of {relation} ({int(row[0]):,} rows)")
    pg.rollback()
