"""Row checksums with bisection: find the exact rows that differ, reading each side about once.

A table is compared by key ranges on its first primary-key column (an integer in SQLite and
PostgreSQL). One pass over a range on each side gives, for each of ``FANOUT`` sub-ranges,
the number of rows and the sum of their row hashes (see :mod:`migrate.validate.fastcanon`);
sub-ranges that agree are done, the others are split the same way, down to ranges of a few
rows, which are fetched from both sides and compared column by column. A single changed row
in ``n`` rows costs about ``2 * log_FANOUT(n)`` range queries.

Tables whose key is not an integer, or that have no primary key, are compared whole (the
sum of row hashes over the table, a multiset hash); when they differ and are small enough,
every row is fetched and the differing ones are shown.

Rows the migration rejected (its ``rejects/`` files) are left out of the SQLite side.
"""

from __future__ import annotations

import bisect
import functools
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from migrate.convert import InvalidText
from migrate.names import pg_ident, sqlite_ident
from migrate.sqlite_file import open_source
from migrate.validate.canonical import RowCanon, base_type, pg_expression, pg_row_expression
from migrate.validate.fastcanon import pg_row_hash, row_hash, text_function

FANOUT = 16
LEAF_ROWS = 64  # a range this small is fetched and compared row by row
FULL_DIFF_ROWS = 200_000  # a table without an integer key is diffed row by row up to this
MAX_DIFFS = 100  # rows shown per table
BATCH = 5_000
_INTEGER_TYPES = ("smallint", "integer", "bigint")


@dataclass(frozen=True)
class TableShape:
    """What the comparison needs: the columns both sides have (with the target's types), the
    source's primary key, and whether the SQLite table has a rowid."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    primary_key: tuple[str, ...]
    has_rowid: bool
    pg_schema: str = "public"
    rows: int = 0  # SQLite's row count, to schedule the largest tables first


@dataclass(frozen=True)
class Excluded:
    """Rows of one table the migration rejected: by SQLite rowid, or by key."""

    rowids: frozenset[int] = frozenset()
    keys: frozenset[tuple[Any, ...]] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.rowids or self.keys)


@dataclass
class ColumnDiff:
    """One column of a changed row: the two canonical forms."""

    column: str
    source: str
    target: str


@dataclass
class RowDiff:
    """A row that is missing on the target, extra on it, or changed."""

    kind: str  # missing, extra, changed
    key: dict[str, str]
    columns: list[ColumnDiff] = field(default_factory=list)


@dataclass
class TableChecksum:
    """The outcome for one table."""

    table: str
    method: str  # key ranges, whole table, whole table (no primary key)
    source_rows: int = 0
    target_rows: int = 0
    excluded: int = 0
    equal: bool = True
    range_queries: int = 0
    diffs: list[RowDiff] = field(default_factory=list)
    more_diffs: int = 0
    note: str = ""
    seconds: float = 0.0


@dataclass
class _Range:
    low: int  # inclusive
    high: int  # exclusive


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class TableComparer:
    """Compares one table between a SQLite connection and a PostgreSQL connection."""

    def __init__(
        self,
        sqlite: sqlite3.Connection,
        pg: psycopg.Connection[Any],
        shape: TableShape,
        excluded: Excluded | None = None,
        timezone: str | None = None,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.sqlite = sqlite
        self.pg = pg
        self.shape = shape
        self.excluded = excluded or Excluded()
        self.texts = text_function(shape.columns, timezone)
        self.canon = RowCanon(shape.columns, timezone)
        self.pool = pool
        self.result = TableChecksum(shape.name, "key ranges")
        names = [c for c, _ in shape.columns]
        self._pk_index = [names.index(k) for k in shape.primary_key if k in names]
        self._table_pg = f"{pg_ident(shape.pg_schema)}.{pg_ident(shape.name)}"
        self._row_sql = pg_row_expression(shape.columns)
        self._cols_sqlite = ", ".join(sqlite_ident(c) for c in names) or "NULL"
        # The rowid (under a name no column took), to match rejects recorded by rowid.
        taken = {c.lower() for c, _ in shape.columns}
        rowid = next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)
        self._select_rowid = f"{rowid}, " if shape.has_rowid and rowid else "NULL, "
        if not self.excluded:
            self._select_rowid = ""  # nothing to match: rows come back as they are
        self._whole_range = _Range(0, 0)
        self._first_pass = True  # rejected rows are counted on the first read only

    # -- entry -----------------------------------------------------------------------------
    def compare(self) -> TableChecksum:
        """Compare the table; the result lists the differing rows."""
        try:
            return self._compare()
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc).lower():
                raise
        # Text that is not UTF-8 somewhere in the table: again, reading text value by value.
        self.sqlite = lenient(self.sqlite)
        self.result = TableChecksum(self.shape.name, "key ranges")
        return self._compare()

    def _compare(self) -> TableChecksum:
        started = time.perf_counter()
        key = self.shape.primary_key[0] if self.shape.primary_key else None
        types = dict(self.shape.columns)
        integer_key = (
            key is not None
            and base_type(types.get(key, "")) in _INTEGER_TYPES
            and self._sqlite_keys_are_integers(key)
        )
        if integer_key and key is not None:
            self._by_ranges(key)
        else:
            self.result.method = (
                "whole table" if self.shape.primary_key else "whole table (no primary key)"
            )
            self._whole()
        self.result.equal = (
            not self.result.diffs and self.result.source_rows == self.result.target_rows
        )
        if self.result.method.startswith("whole") and self.result.note:
            self.result.equal = False
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _sqlite_keys_are_integers(self, key: str) -> bool:
        found = self.sqlite.execute(
            f"SELECT count(*) FROM {sqlite_ident(self.shape.name)} "  # noqa: S608
            f"WHERE typeof({sqlite_ident(key)}) != 'integer'"
        ).fetchone()
        return bool(found and found[0] == 0)

    # -- SQLite side -----------------------------------------------------------------------
    def _sqlite_rows(
        self, where: str = "", params: Sequence[Any] = ()
    ) -> Iterator[list[tuple[Any, ...]]]:
        query = (
            f"SELECT {self._select_rowid}{self._cols_sqlite} FROM "  # noqa: S608
            f"{sqlite_ident(self.shape.name)}{where}"
        )
        cursor = self.sqlite.execute(query, params)
        try:
            while batch := cursor.fetchmany(BATCH):
                yield self._kept(batch)
        finally:
            cursor.close()

    def _kept(self, batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if not self.excluded:
            return batch
        kept = []
        for row in batch:
            values = row[1:]
            if row[0] in self.excluded.rowids or (
                tuple(values[i] for i in self._pk_index) in self.excluded.keys
            ):
                self.result.excluded += self._first_pass
                continue
            kept.append(values)
        return kept

    def _sqlite_buckets(self, key: str, rng: _Range, bounds: list[int]) -> dict[int, list[int]]:
        """bucket -> [rows, hash sum] over the SQLite rows of ``rng``."""
        position = [c for c, _ in self.shape.columns].index(key)
        counts = [0] * (len(bounds) + 1)
        sums = [0] * (len(bounds) + 1)
        params: tuple[int, ...] = ()
        if rng == self._whole_range:
            # The whole table: a scan in storage order beats a walk of the key's index.
            where = ""
        else:
            # Inclusive ends: the exclusive one may be 2**63, past any integer column.
            where = f" WHERE {sqlite_ident(key)} >= ? AND {sqlite_ident(key)} <= ?"
            params = (rng.low, rng.high - 1)
        place = functools.partial(bisect.bisect_right, bounds)
        for rows in self._sqlite_rows(where, params):
            for bucket, hashed in zip(
                map(place, [row[position] for row in rows]),
                map(row_hash, self.texts(rows)),
                strict=True,
            ):
                counts[bucket] += 1
                sums[bucket] += hashed
        self.result.range_queries += 1
        return {b: [counts[b], sums[b]] for b in range(len(counts)) if counts[b]}

    # -- PostgreSQL side -------------------------------------------------------------------
    def _pg_buckets(self, key: str, rng: _Range, bounds: list[int]) -> dict[int, list[int]]:
        k = pg_ident(key)
        bucket = f"width_bucket({k}::bigint, %s::bigint[])" if bounds else "0"
        query = (
            f"SELECT {bucket} AS b, count(*), "  # noqa: S608
            f"coalesce(sum({pg_row_hash(self._row_sql)}), 0) FROM {self._table_pg} "
            f"WHERE {k} >= %s AND {k} <= %s GROUP BY 1"
        )
        params = ([bounds] if bounds else []) + [rng.low, rng.high - 1]
        rows = self.pg.execute(query.encode(), params).fetchall()
        self.result.range_queries += 1
        return {int(b): [int(n), int(s)] for b, n, s in rows}

    def _pg_key_span(self, key: str) -> tuple[int | None, int | None]:
        k = pg_ident(key)
        row = self.pg.execute(
            f"SELECT min({k}), max({k}) FROM {self._table_pg}".encode()  # noqa: S608
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    # -- ranges ----------------------------------------------------------------------------
    def _by_ranges(self, key: str) -> None:
        k = sqlite_ident(key)
        low, high = self.sqlite.execute(
            f"SELECT min({k}), max({k}) FROM {sqlite_ident(self.shape.name)}"  # noqa: S608
        ).fetchone()
        pg_low, pg_high = self._pg_key_span(key)
        lows = [v for v in (low, pg_low) if v is not None]
        highs = [v for v in (high, pg_high) if v is not None]
        if not lows:
            return
        self._whole_range = _Range(min(lows), max(highs) + 1)
        todo = [self._whole_range]
        first = True
        while todo:
            rng = todo.pop()
            bounds = _bounds(rng)
            if self.pool is not None:
                pg_future = self.pool.submit(self._pg_buckets, key, rng, bounds)
                mine = self._sqlite_buckets(key, rng, bounds)
                theirs = pg_future.result()
            else:
                mine = self._sqlite_buckets(key, rng, bounds)
                theirs = self._pg_buckets(key, rng, bounds)
            self._first_pass = False
            if first:
                self.result.source_rows = sum(v[0] for v in mine.values())
                self.result.target_rows = sum(v[0] for v in theirs.values())
                first = False
            edges = [rng.low, *bounds, rng.high]
            for bucket in sorted(set(mine) | set(theirs)):
                if mine.get(bucket) == theirs.get(bucket):
                    continue
                sub = _Range(edges[bucket], edges[bucket + 1])
                rows = max(mine.get(bucket, [0])[0], theirs.get(bucket, [0])[0])
                if rows <= LEAF_ROWS or sub.high - sub.low <= 1 or sub == rng:
                    self._leaf(key, sub)
                else:
                    todo.append(sub)

    def _leaf(self, key: str, rng: _Range) -> None:
        k_sqlite, k_pg = sqlite_ident(key), pg_ident(key)
        source: dict[str, list[str]] = {}
        for rows in self._sqlite_rows(
            f" WHERE {k_sqlite} >= ? AND {k_sqlite} <= ?", (rng.low, rng.high - 1)
        ):
            for row in rows:
                values = self.canon.values(row)
                source[self._key_of(values)] = values
        target = self._pg_values(f" WHERE {k_pg} >= %s AND {k_pg} <= %s", (rng.low, rng.high - 1))
        self.result.range_queries += 2
        self._diff(source, target)

    def _pg_values(self, where: str, params: Sequence[Any]) -> dict[str, list[str]]:
        exprs = ", ".join(pg_expression(c, t) for c, t in self.shape.columns) or "NULL"
        query = f"SELECT {exprs} FROM {self._table_pg}{where}"  # noqa: S608
        out: dict[str, list[str]] = {}
        for row in self.pg.execute(query.encode(), params):
            values = [str(v) for v in row]
            out[self._key_of(values)] = values
        return out

    def _key_of(self, values: Sequence[str]) -> str:
        if not self._pk_index:
            return "|".join(values)
        return "|".join(values[i] for i in self._pk_index)

    def _diff(self, source: dict[str, list[str]], target: dict[str, list[str]]) -> None:
        names = [c for c, _ in self.shape.columns]
        for key in sorted(set(source) | set(target)):
            mine, theirs = source.get(key), target.get(key)
            if mine == theirs:
                continue
            shown_key = self._shown_key(mine or theirs or [])
            if mine is None:
                self._add(RowDiff("extra", shown_key))
            elif theirs is None:
                self._add(RowDiff("missing", shown_key))
            else:
                columns = [
                    ColumnDiff(n, _short(a), _short(b))
                    for n, a, b in zip(names, mine, theirs, strict=True)
                    if a != b
                ]
                self._add(RowDiff("changed", shown_key, columns))

    def _shown_key(self, values: Sequence[str]) -> dict[str, str]:
        names = [c for c, _ in self.shape.columns]
        if not self._pk_index:
            return {"row": _short("|".join(values))}
        return {names[i]: _short(values[i]) for i in self._pk_index}

    def _add(self, diff: RowDiff) -> None:
        if len(self.result.diffs) < MAX_DIFFS:
            self.result.diffs.append(diff)
        else:
            self.result.more_diffs += 1

    # -- whole tables ----------------------------------------------------------------------
    def _whole(self) -> None:
        total, count = 0, 0
        for rows in self._sqlite_rows():
            count += len(rows)
            total += sum(row_hash(t) for t in self.texts(rows))
        self._first_pass = False
        query = (
            f"SELECT count(*), coalesce(sum({pg_row_hash(self._row_sql)}), 0) "  # noqa: S608
            f"FROM {self._table_pg}"
        )
        row = self.pg.execute(query.encode()).fetchone()
        self.result.range_queries += 2
        pg_count, pg_total = (int(row[0]), int(row[1])) if row else (0, 0)
        self.result.source_rows, self.result.target_rows = count, pg_count
        if (count, total) == (pg_count, pg_total):
            return
        if max(count, pg_count) > FULL_DIFF_ROWS:
            self.result.note = (
                f"rows differ; more than {FULL_DIFF_ROWS:,} rows and no integer key to "
                "locate them by range"
            )
            return
        source: dict[str, list[str]] = {}
        multiset: Counter[str] = Counter()
        for rows in self._sqlite_rows():
            for values in map(self.canon.values, rows):
                if self._pk_index:
                    source[self._key_of(values)] = values
                else:
                    multiset["|".join(values)] += 1
        if self._pk_index:
            self._diff(source, self._pg_values("", ()))
            return
        exprs = ", ".join(pg_expression(c, t) for c, t in self.shape.columns) or "NULL"
        theirs: Counter[str] = Counter(
            "|".join(str(v) for v in r)
            for r in self.pg.execute(f"SELECT {exprs} FROM {self._table_pg}".encode())  # noqa: S608
        )
        for text, n in (multiset - theirs).items():
            for _ in range(n):
                self._add(RowDiff("missing", {"row": _short(text)}))
        for text, n in (theirs - multiset).items():
            for _ in range(n):
                self._add(RowDiff("extra", {"row": _short(text)}))
        if not self.result.diffs:
            self.result.note = "row hashes differ"


def _text_or_invalid(raw: bytes) -> str | InvalidText:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return InvalidText(raw)


def lenient(conn: sqlite3.Connection) -> sqlite3.Connection:
    """A second connection to ``conn``'s file whose text that is not UTF-8 comes back as
    :class:`~migrate.convert.InvalidText` (slower: a Python call per text value)."""
    row = conn.execute("PRAGMA database_list").fetchone()
    other = open_source(Path(row[2]))
    other.text_factory = _text_or_invalid
    return other


def _bounds(rng: _Range) -> list[int]:
    """Lower bounds of up to FANOUT sub-ranges of ``rng`` (the first starts at ``rng.low``)."""
    span = rng.high - rng.low
    return sorted({rng.low + span * i // FANOUT for i in range(1, FANOUT)} - {rng.low})


def compare_one(
    source: Path,
    pg_url: str,
    shape: TableShape,
    excluded: Excluded | None,
    timezone: str | None,
) -> TableChecksum:
    """Compare one table on connections of its own (the unit a worker process runs):
    PostgreSQL computes its side in a thread while SQLite's side is hashed here."""
    sqlite = open_source(source)
    try:
        with (
            psycopg.connect(pg_url, autocommit=True) as pg,
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            pg.execute("SET default_transaction_read_only = on")
            return TableComparer(sqlite, pg, shape, excluded, timezone, pool=pool).compare()
    finally:
        sqlite.close()


def ready() -> bool:
    """A task that only makes a worker import this module (see :func:`hashing_pool`)."""
    return True


def hashing_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for :func:`compare_tables`, already started and with this module
    loaded, so they are ready while the caller plans (spawned processes import for ~0.5 s)."""
    import multiprocessing as mp

    pool = ProcessPoolExecutor(max(1, workers), mp_context=mp.get_context("spawn"))
    for _ in range(max(1, workers)):
        pool.submit(ready)
    return pool


def compare_tables(
    source: Path,
    pg_url: str,
    shapes: Sequence[TableShape],
    excluded: dict[str, Excluded],
    pool: ProcessPoolExecutor,
    timezone: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[TableChecksum]:
    """Compare every table in ``shapes`` on the worker processes of ``pool`` (the hashing is
    Python work), largest first; results in ``shapes``' order."""
    from concurrent.futures import as_completed

    results: dict[str, TableChecksum] = {}
    futures = {
        pool.submit(compare_one, source, pg_url, shape, excluded.get(shape.name), timezone): (
            shape.name
        )
        for shape in sorted(shapes, key=lambda s: -s.rows)
    }
    for future in as_completed(futures):
        results[futures[future]] = future.result()
        if progress is not None:
            progress(futures[future])
    return [results[s.name] for s in shapes]
