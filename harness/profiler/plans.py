"""Query plans on either backend, with whole-table scans flagged.

- SQLite: ``EXPLAIN QUERY PLAN`` (``--analyze`` also runs the statement and times it). A
  ``SCAN <table>`` step without an index is a full scan; ``USE TEMP B-TREE`` is a sort.
- PostgreSQL: ``EXPLAIN (FORMAT JSON)``, with ``ANALYZE, BUFFERS`` on request. A ``Seq Scan``
  node is a full scan. Statements with ``$n`` placeholders are prepared and explained with
  the values given (rendered as literals by psycopg), or as a generic plan without them.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import sqlglot
from psycopg import sql

from harness.errors import ConfigError, DatabaseError, DatasetError
from harness.urls import is_postgres, mask_url, plain_postgres_url, sqlite_path

Params = Sequence[Any] | Mapping[str, Any] | None


@dataclass(frozen=True)
class Step:
    """One line of a plan, indented by ``depth``."""

    depth: int
    text: str
    full_scan_of: str | None = None
    index: str | None = None


@dataclass
class QueryPlan:
    backend: str
    steps: list[Step] = field(default_factory=list)
    analyzed: bool = False
    execution_ms: float | None = None
    raw: Any = None

    @property
    def full_scans(self) -> list[str]:
        """Tables read whole, in plan order."""
        return list(dict.fromkeys(s.full_scan_of for s in self.steps if s.full_scan_of))

    @property
    def indexes(self) -> list[str]:
        return list(dict.fromkeys(s.index for s in self.steps if s.index))


def placeholders(statement: str, dialect: str) -> list[str]:
    """The placeholders of ``statement`` in order (``?`` -> "", ``:name`` -> "name")."""
    try:
        tree = sqlglot.parse_one(statement, read=dialect)
    except sqlglot.errors.ParseError:
        return []
    out: list[str] = []
    for node in tree.find_all(sqlglot.exp.Placeholder, sqlglot.exp.Parameter):
        name = str(node.name or "")
        out.append("" if name == "?" else name)
    return out


# -- SQLite -------------------------------------------------------------------------------------


def sqlite_connect(path: Path, *, writable: bool = False) -> sqlite3.Connection:
    """A connection to an existing SQLite file (read-only unless ``writable``)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such SQLite file")
    mode = "rw" if writable else "ro"
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode={mode}", uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise DatasetError(f"{path}: not a readable SQLite database ({exc})") from None
    return conn


def _sqlite_params(statement: str, params: Params) -> Any:
    if params is not None:
        return params
    names = placeholders(statement, "sqlite")
    if names and all(names):
        return {n: None for n in names}
    return [None] * len(names)


def sqlite_plan(
    conn: sqlite3.Connection, statement: str, params: Params = None, analyze: bool = False
) -> QueryPlan:
    """The plan SQLite picks for ``statement`` (timed when ``analyze``)."""
    bound = _sqlite_params(statement, params)
    try:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", bound).fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"SQLite cannot plan the statement: {exc}") from None
    depth_of: dict[int, int] = {0: -1}
    plan = QueryPlan("sqlite", raw=rows)
    for node_id, parent, _unused, detail in rows:
        depth = depth_of.get(parent, -1) + 1
        depth_of[node_id] = depth
        text = str(detail)
        full = None
        index = None
        words = text.split()
        if words[:1] == ["SCAN"] and len(words) >= 2 and "USING" not in words:
            full = words[1]
        if "USING" in words and "INDEX" in words:
            index = (
                words[words.index("INDEX") + 1] if words.index("INDEX") + 1 < len(words) else None
            )
        plan.steps.append(Step(depth, text, full, index))
    if analyze:
        started = time.perf_counter()
        conn.execute(statement, bound).fetchall()
        plan.execution_ms = (time.perf_counter() - started) * 1000.0
        plan.analyzed = True
    return plan


# -- PostgreSQL ---------------------------------------------------------------------------------


@contextmanager
def pg_connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection; an unreachable server or wrong password is one clear line."""
    from harness.services import check_postgres

    check_postgres(url)
    try:
        conn = psycopg.connect(plain_postgres_url(url), autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatabaseError(f"PostgreSQL at {mask_url(url)}: {type(exc).__name__}") from None
    try:
        yield conn
    finally:
        conn.close()


def _values(params: Params) -> list[Any] | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return list(params.values())
    return list(params)


@contextmanager
def prepared(conn: psycopg.Connection[Any], statement: str) -> Iterator[str]:
    """``statement`` as a prepared statement of this session (deallocated after)."""
    name = f"harness_{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(sql.SQL("PREPARE {} AS ").format(sql.Identifier(name)) + sql.SQL(statement))
    except psycopg.Error as exc:
        raise ConfigError(f"PostgreSQL cannot prepare the statement: {_first(exc)}") from None
    try:
        yield name
    finally:
        conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))


def execute_prepared(name: str, values: Sequence[Any]) -> sql.Composed:
    """``EXECUTE name(v1, v2...)`` with the values as literals."""
    args = sql.SQL(", ").join(sql.Literal(v) for v in values)
    if values:
        return sql.SQL("EXECUTE {}({})").format(sql.Identifier(name), args)
    return sql.SQL("EXECUTE {}").format(sql.Identifier(name))


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def pg_plan(
    conn: psycopg.Connection[Any], statement: str, params: Params = None, analyze: bool = False
) -> QueryPlan:
    """The plan PostgreSQL picks for ``statement``."""
    values = _values(params)
    options = "FORMAT JSON, ANALYZE, BUFFERS" if analyze else "FORMAT JSON"
    try:
        if values is None and "$" in statement:
            if analyze:
                raise ConfigError("--analyze needs the statement's parameter values (--param)")
            query: Any = sql.SQL(f"EXPLAIN (GENERIC_PLAN, {options}) ") + sql.SQL(statement)
            row = conn.execute(query).fetchone()
        else:
            with prepared(conn, statement) as name:
                row = conn.execute(
                    sql.SQL(f"EXPLAIN ({options}) ") + execute_prepared(name, values or [])
                ).fetchone()
    except psycopg.Error as exc:
        raise ConfigError(f"PostgreSQL cannot explain the statement: {_first(exc)}") from None
    assert row is not None
    doc = row[0][0] if isinstance(row[0], list) else row[0]
    plan = QueryPlan("postgresql", raw=doc, analyzed=analyze)
    if analyze:
        plan.execution_ms = float(doc.get("Execution Time", 0.0))
    _walk(doc["Plan"], 0, plan)
    return plan


def _walk(node: Mapping[str, Any], depth: int, plan: QueryPlan) -> None:
    kind = str(node.get("Node Type", "?"))
    relation = node.get("Relation Name")
    index = node.get("Index Name")
    text = kind
    if relation:
        text += f" on {relation}"
        if node.get("Alias") and node.get("Alias") != relation:
            text += f" {node['Alias']}"
    if index:
        text += f" using {index}"
    if "Actual Total Time" in node:
        text += f" (actual {node['Actual Total Time']:.3f} ms, {node.get('Actual Rows')} rows)"
    else:
        text += f" (est. {node.get('Plan Rows')} rows)"
    full = str(relation) if kind == "Seq Scan" and relation else None
    plan.steps.append(Step(depth, text, full, str(index) if index else None))
    for child in node.get("Plans", []) or []:
        _walk(child, depth + 1, plan)


def explain(db: str, statement: str, params: Params = None, analyze: bool = False) -> QueryPlan:
    """The plan of ``statement`` on ``db`` (a SQLite path or a ``postgresql://`` URL)."""
    if is_postgres(db):
        with pg_connect(db) as conn:
            return pg_plan(conn, statement, params, analyze)
    lite = sqlite_connect(sqlite_path(db))
    try:
        return sqlite_plan(lite, statement, params, analyze)
    finally:
        lite.close()
