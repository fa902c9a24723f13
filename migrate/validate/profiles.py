"""Column profiles on both sides: non-NULL count, min, max, sum (numbers, true booleans) and
total length (text, bytes), computed by each engine in SQL and compared.

Min and max are compared in canonical form; text orders byte by byte on both sides (SQLite's
BINARY, PostgreSQL's ``COLLATE "C"``). Integer sums are exact; sums of doubles are compared
to a relative 1e-9 (1e-6 for a real column), because the two engines add in different
orders. Timestamp, date and JSON columns are compared by count only: SQLite orders stored
timestamps as text (``T`` and space, with or without seconds) and jsonb rewrites the text;
the row checksums compare every one of their values exactly. Rows the migration rejected
are left out of the SQLite side.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

import psycopg

from migrate.names import pg_ident, sqlite_ident
from migrate.validate.canonical import RowCanon, base_type, conversion_of, value_form
from migrate.validate.checksums import Excluded, TableShape, lenient
from migrate.validate.schema import Finding

MAX_EXCLUDED = 5_000  # more rejected rows than this: their profiles are not compared
REL_TOLERANCE = 1e-9
REL_TOLERANCE_REAL = 1e-6


def _aggregates(column: str, pg_type: str, engine: str) -> list[tuple[str, str]]:
    """(name, SQL) of the aggregates for one column on ``engine`` (sqlite or pg)."""
    x = sqlite_ident(column) if engine == "sqlite" else pg_ident(column)
    conversion = conversion_of(pg_type)
    out = [("non-null", f"count({x})")]
    if conversion in ("integer", "float", "numeric"):
        out += [("min", f"min({x})"), ("max", f"max({x})")]
        out.append(("sum", f"total({x})" if engine == "sqlite" else f"sum({x}::float8)"))
    elif conversion == "boolean":
        out.append(("true", f"sum({x})" if engine == "sqlite" else f"count(*) FILTER (WHERE {x})"))
    elif conversion == "bytes":
        out.append(
            ("bytes", f"sum(length({x}))" if engine == "sqlite" else f"sum(octet_length({x}))")
        )
    elif conversion == "text" and base_type(pg_type) not in ("json", "jsonb"):
        collate = "" if engine == "sqlite" else ' COLLATE "C"'
        out += [
            ("min", f"min({x}{collate})"),
            ("max", f"max({x}{collate})"),
            ("length", f"sum(length({x}))"),
        ]
    return out


def _exclusion(shape: TableShape, excluded: Excluded | None) -> tuple[str, list[Any]] | None:
    """A WHERE clause leaving the rejected rows out, or None when there are too many."""
    if not excluded:
        return "", []
    if len(excluded.rowids) + len(excluded.keys) > MAX_EXCLUDED:
        return None
    parts: list[str] = []
    params: list[Any] = []
    taken = {c.lower() for c, _ in shape.columns}
    rowid = next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)
    if excluded.rowids and shape.has_rowid and rowid:
        parts.append(f"{rowid} NOT IN ({', '.join('?' * len(excluded.rowids))})")
        params += sorted(excluded.rowids)
    if excluded.keys and shape.primary_key:
        cols = ", ".join(sqlite_ident(k) for k in shape.primary_key)
        one = "(" + ", ".join("?" * len(shape.primary_key)) + ")"
        parts.append(f"({cols}) NOT IN (VALUES {', '.join([one] * len(excluded.keys))})")
        for key in sorted(excluded.keys, key=repr):
            params += list(key)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def profile_findings(
    sqlite: sqlite3.Connection,
    pg: psycopg.Connection[Any],
    shape: TableShape,
    excluded: Excluded | None = None,
    timezone: str | None = None,
    unordered: set[str] | None = None,
) -> list[Finding]:
    """One finding per column whose profile was compared (``unordered`` columns without
    min and max)."""
    where = _exclusion(shape, excluded)
    if where is None:
        return [
            Finding(
                "profiles",
                shape.name,
                "columns",
                True,
                f"not compared: more than {MAX_EXCLUDED:,} rows were rejected",
            )
        ]
    sqlite_sql: list[str] = []
    pg_sql: list[str] = []
    layout: list[tuple[str, str, str]] = []  # column, pg_type, aggregate
    skip = {"min", "max"}
    for column, pg_type in shape.columns:
        mine = _aggregates(column, pg_type, "sqlite")
        theirs = _aggregates(column, pg_type, "pg")
        if column in (unordered or set()):
            mine = [a for a in mine if a[0] not in skip]
            theirs = [a for a in theirs if a[0] not in skip]
        for (name, a), (_n, b) in zip(mine, theirs, strict=True):
            sqlite_sql.append(a)
            pg_sql.append(b)
            layout.append((column, pg_type, name))
    if not layout:
        return []
    clause, params = where
    query = f"SELECT {', '.join(sqlite_sql)} FROM {sqlite_ident(shape.name)}{clause}"  # noqa: S608
    try:
        source = sqlite.execute(query, params).fetchone()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc).lower():
            raise
        source = lenient(sqlite).execute(query, params).fetchone()
    table = f"{pg_ident(shape.pg_schema)}.{pg_ident(shape.name)}"
    target = pg.execute(f"SELECT {', '.join(pg_sql)} FROM {table}".encode()).fetchone()  # noqa: S608
    assert source is not None and target is not None
    problems: dict[str, list[str]] = {}
    for (column, pg_type, name), a, b in zip(layout, source, target, strict=True):
        if not _same(name, pg_type, a, b, timezone):
            problems.setdefault(column, []).append(f"{name} {_show(a)} vs {_show(b)}")
    return [
        Finding(
            "profiles",
            shape.name,
            f"column {column}",
            column not in problems,
            "; ".join(problems.get(column, [])),
        )
        for column, _t in shape.columns
    ]


def _same(name: str, pg_type: str, a: Any, b: Any, timezone: str | None) -> bool:
    if name in ("non-null", "true", "length", "bytes"):
        return int(a or 0) == int(b or 0)
    if name == "sum":
        x, y = float(a or 0.0), float(b or 0.0)
        # A real column holds single-precision values: its sum is close to the doubles'.
        tolerance = REL_TOLERANCE_REAL if base_type(pg_type) == "real" else REL_TOLERANCE
        return math.isclose(x, y, rel_tol=tolerance, abs_tol=1e-12)
    if a is None or b is None:
        return a is None and b is None
    canon = RowCanon([("v", pg_type)], timezone)
    return canon.values([a])[0] == value_form(b, pg_type)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
