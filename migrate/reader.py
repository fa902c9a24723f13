"""Reading a table from SQLite in chunks: rowid ranges that are loaded, committed and resumed
one at a time, read in batches so memory stays flat whatever the table's size.

The fast read returns rows as SQLite's driver gives them. The careful read, used only for a
chunk the fast path could not load, reads text as bytes next to ``typeof()`` so a value that
is not valid UTF-8 becomes one rejected value instead of an error for the whole chunk.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.convert import InvalidText, TableSpec
from migrate.names import sqlite_ident
from migrate.sqlite_file import open_source

# Rows fetched from SQLite at a time: large enough that per-call overhead vanishes, small
# enough that a batch of wide rows stays a few MB.
BATCH_ROWS = 5_000
# Rows per chunk, the unit of commit and of resume.
DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class Chunk:
    """One unit of copy work: a rowid range of a table (the whole table without rowid)."""

    table: str
    index: int
    low: int | None  # exclusive
    high: int | None  # inclusive
    estimated_rows: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (stored in the run's state so a resume redoes the same ranges)."""
        return {
            "table": self.table,
            "index": self.index,
            "low": self.low,
            "high": self.high,
            "estimated_rows": self.estimated_rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        """The chunk :meth:`to_dict` described."""
        return cls(
            str(data["table"]),
            int(data["index"]),
            data["low"],
            data["high"],
            int(data["estimated_rows"]),
        )


def plan_chunks(
    conn: sqlite3.Connection,
    spec: TableSpec,
    rows: int,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> list[Chunk]:
    """Split ``spec``'s table into rowid ranges of about ``chunk_rows`` rows each.

    A table without rowid is one chunk (read in primary-key order). An empty table has no
    chunk.
    """
    if rows == 0:
        return []
    if spec.rowid is None:
        return [Chunk(spec.name, 0, None, None, rows)]
    name, rowid = sqlite_ident(spec.name), spec.rowid
    low, high = conn.execute(f"SELECT min({rowid}), max({rowid}) FROM {name}").fetchone()  # noqa: S608
    if low is None:
        return []
    count = max(1, math.ceil(rows / chunk_rows))
    if count > 1 and high - low + 1 > 2 * rows:
        edges = _edges_by_position(conn, spec, chunk_rows)
    else:
        # Dense rowids (the usual case): equal spans hold about equal rows.
        start, span = low - 1, high - low + 1
        edges = [start + span * i // count for i in range(count + 1)]
    chunks: list[Chunk] = []
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            chunks.append(Chunk(spec.name, len(chunks), lo, hi, max(1, rows // count)))
    return chunks


def _edges_by_position(conn: sqlite3.Connection, spec: TableSpec, chunk_rows: int) -> list[int]:
    """Chunk edges every ``chunk_rows`` rows, for sparse rowids (one scan of the rowids)."""
    assert spec.rowid is not None
    cursor = conn.execute(
        f"SELECT {spec.rowid} FROM {sqlite_ident(spec.name)} ORDER BY {spec.rowid}"  # noqa: S608
    )
    edges: list[int] = []
    seen, last = 0, None
    while batch := cursor.fetchmany(BATCH_ROWS * 4):
        for (value,) in batch:
            if seen % chunk_rows == 0:
                edges.append(value - 1)
            seen += 1
            last = value
    if last is not None:
        edges.append(last)
    return edges


def _where(spec: TableSpec, chunk: Chunk) -> tuple[str, tuple[int, ...]]:
    if chunk.low is None or chunk.high is None or spec.rowid is None:
        return "", ()
    return f" WHERE {spec.rowid} > ? AND {spec.rowid} <= ?", (chunk.low, chunk.high)


def _order(spec: TableSpec) -> str:
    if spec.rowid is not None:
        return f" ORDER BY {spec.rowid}"
    if spec.primary_key:
        return " ORDER BY " + ", ".join(sqlite_ident(c) for c in spec.primary_key)
    return ""


def read_fast(
    conn: sqlite3.Connection, spec: TableSpec, chunk: Chunk, batch: int = BATCH_ROWS
) -> Iterator[list[tuple[Any, ...]]]:
    """The chunk's rows in batches, as the driver returns them (text decoded as UTF-8).

    Raises ``sqlite3.OperationalError`` at a text value that is not UTF-8.
    """
    cols = ", ".join(sqlite_ident(c) for c in spec.column_names)
    where, params = _where(spec, chunk)
    query = f"SELECT {cols} FROM {sqlite_ident(spec.name)}{where}{_order(spec)}"  # noqa: S608
    cursor = conn.execute(query, params)
    try:
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def open_careful(path: Path) -> sqlite3.Connection:
    """A read-only connection that returns text as bytes (see :func:`read_careful`)."""
    conn = open_source(path)
    conn.text_factory = bytes
    return conn


def read_careful(
    conn: sqlite3.Connection, spec: TableSpec, chunk: Chunk, batch: int = BATCH_ROWS
) -> Iterator[list[tuple[int | None, tuple[Any, ...]]]]:
    """The chunk's rows in batches as ``(rowid, values)``, on a connection from
    :func:`open_careful`: text that is not UTF-8 comes back as :class:`InvalidText`."""
    names = spec.column_names
    cols = ", ".join(f"{sqlite_ident(c)}, typeof({sqlite_ident(c)})" for c in names)
    rowid = spec.rowid or "NULL"
    where, params = _where(spec, chunk)
    query = f"SELECT {rowid}, {cols} FROM {sqlite_ident(spec.name)}{where}{_order(spec)}"  # noqa: S608
    cursor = conn.execute(query, params)
    try:
        while rows := cursor.fetchmany(batch):
            yield [(row[0], _decoded(row)) for row in rows]
    finally:
        cursor.close()


def _decoded(row: tuple[Any, ...]) -> tuple[Any, ...]:
    out: list[Any] = []
    for i in range(1, len(row), 2):
        value, storage = row[i], row[i + 1]
        if storage == b"text":
            try:
                value = value.decode()
            except UnicodeDecodeError:
                value = InvalidText(value)
        out.append(value)
    return tuple(out)
