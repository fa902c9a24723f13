"""Loading one chunk into PostgreSQL with binary COPY, in one transaction with its state.

The fast attempt streams the chunk from SQLite through the fast converter into one COPY.
When anything in it is refused (a value asyncpg cannot encode exactly, a row PostgreSQL
rejects, text SQLite cannot decode), that transaction rolls back and the careful attempt
loads the chunk again batch by batch: values the strict converters refuse become rejects
before PostgreSQL sees them; a batch PostgreSQL still refuses is split in halves under
savepoints until each refused row stands alone and is rejected with PostgreSQL's own
message. The rest of the chunk loads.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from migrate import state
from migrate.convert import BadValue, CarefulConverter, TableSpec, fast_converter
from migrate.errors import StrictStopError
from migrate.reader import Chunk, open_careful, read_careful, read_fast
from migrate.rejects import copy_record, shown
from migrate.sqlite_file import open_source, source_error

Progress = Callable[[Chunk, int], None]

# Client-side refusals from the fast converter or asyncpg's encoders.
_CLIENT_DATA_ERRORS = (TypeError, ValueError, OverflowError, KeyError, ArithmeticError)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` says a value or a row was refused (not the server, the network or
    the source file failing)."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", "") or ""
        return sqlstate.startswith(("22", "23"))  # data exception, integrity violation
    if isinstance(exc, sqlite3.OperationalError):
        return "decode" in str(exc).lower()
    return isinstance(exc, _CLIENT_DATA_ERRORS)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.PostgresError):
        message = getattr(exc, "message", None) or str(exc)
        detail = getattr(exc, "detail", None)
        return f"PostgreSQL: {message}" + (f" ({detail})" if detail else "")
    return f"{type(exc).__name__}: {exc}"


@dataclass
class ChunkResult:
    """What loading one chunk did."""

    chunk: Chunk
    read: int = 0
    loaded: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    careful: bool = False
    started: float = field(default_factory=time.perf_counter)


class ChunkLoader:
    """Loads chunks of a SQLite file into one PostgreSQL connection."""

    def __init__(
        self,
        con: asyncpg.Connection,
        source: Path,
        specs: dict[str, TableSpec],
        *,
        run_id: str,
        owner: str,
        strict: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.con = con
        self.source = source
        self.specs = specs
        self.run_id = run_id
        self.owner = owner
        self.strict = strict
        self.progress = progress or (lambda chunk, rows: None)
        self._fast = {name: fast_converter(spec) for name, spec in specs.items()}
        self._careful = {name: CarefulConverter(spec) for name, spec in specs.items()}
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_careful: sqlite3.Connection | None = None

    def close(self) -> None:
        """Close the SQLite connections."""
        for conn in (self._sqlite, self._sqlite_careful):
            if conn is not None:
                conn.close()

    @property
    def sqlite(self) -> sqlite3.Connection:
        if self._sqlite is None:
            self._sqlite = open_source(self.source)
        return self._sqlite

    async def load(self, chunk: Chunk) -> ChunkResult:
        """Load ``chunk`` and record it; rejects are stored with it. Raises
        :class:`~migrate.state.SupersededError` when another process took the run over."""
        try:
            result = await self._load_fast(chunk)
        except state.SupersededError:
            raise
        except Exception as exc:
            if not is_data_error(exc):
                if isinstance(exc, sqlite3.Error):
                    raise source_error(self.source, exc) from None
                raise
            result = await self._load_careful(chunk)
        result.seconds = time.perf_counter() - result.started
        return result

    async def _load_fast(self, chunk: Chunk) -> ChunkResult:
        spec = self.specs[chunk.table]
        convert = self._fast[chunk.table]
        result = ChunkResult(chunk)

        def rows() -> Generator[Sequence[Any], None, None]:
            for batch in read_fast(self.sqlite, spec, chunk):
                converted = convert(batch)
                result.read += len(batch)
                self.progress(chunk, result.read)
                yield converted

        stream = rows()
        try:
            async with self.con.transaction():
                await state.check_owner(self.con, self.run_id, self.owner)
                await self.con.copy_records_to_table(
                    spec.name,
                    records=itertools.chain.from_iterable(stream),
                    columns=spec.column_names,
                )
                result.loaded = result.read
                await self._record(result)
        finally:
            stream.close()  # ends SQLite's read at once when the COPY stopped early
        return result

    async def _load_careful(self, chunk: Chunk) -> ChunkResult:
        spec = self.specs[chunk.table]
        careful = self._careful[chunk.table]
        result = ChunkResult(chunk, careful=True)
        if self._sqlite_careful is None:
            self._sqlite_careful = open_careful(self.source)
        async with self.con.transaction():
            await state.check_owner(self.con, self.run_id, self.owner)
            try:
                batches = read_careful(self._sqlite_careful, spec, chunk)
                for batch in batches:
                    good: list[tuple[int | None, tuple[Any, ...], tuple[Any, ...]]] = []
                    for rowid, values in batch:
                        row, bad = careful.row(values)
                        if row is None:
                            self._reject(result, copy_record(spec, rowid, values, bad))
                        else:
                            good.append((rowid, values, row))
                    await self._copy_halving(spec, good, result)
                    result.read += len(batch)
                    self.progress(chunk, result.read)
            except sqlite3.Error as exc:
                raise source_error(self.source, exc) from None
            await self._record(result)
        return result

    def _reject(self, result: ChunkResult, record: dict[str, Any]) -> None:
        if self.strict:
            raise StrictStopError(record)
        result.rejects.append(record)

    async def _copy_halving(
        self,
        spec: TableSpec,
        items: Sequence[tuple[int | None, tuple[Any, ...], tuple[Any, ...]]],
        result: ChunkResult,
    ) -> None:
        """COPY ``items`` under a savepoint; when PostgreSQL refuses, split until each
        refused row is alone, and reject it with PostgreSQL's reason."""
        if not items:
            return
        try:
            async with self.con.transaction():
                await self.con.copy_records_to_table(
                    spec.name, records=[row for _, _, row in items], columns=spec.column_names
                )
            result.loaded += len(items)
            return
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(items) == 1:
                rowid, values, _row = items[0]
                self._reject(result, _server_record(spec, rowid, values, exc))
                return
        half = len(items) // 2
        await self._copy_halving(spec, items[:half], result)
        await self._copy_halving(spec, items[half:], result)

    async def _record(self, result: ChunkResult) -> None:
        await state.record_chunk(
            self.con,
            self.run_id,
            result.chunk,
            read=result.read,
            loaded=result.loaded,
            rejected=len(result.rejects),
            seconds=time.perf_counter() - result.started,
            careful=result.careful,
        )
        await state.insert_rejects(self.con, self.run_id, result.rejects)


def _copy_column(exc: BaseException, names: Sequence[str]) -> str | None:
    """The column a COPY error names in its context (``COPY t, line 1, column v: ...``)."""
    where = getattr(exc, "context", None) or ""
    for name in sorted(names, key=len, reverse=True):
        if f", column {name}: " in where or where.endswith(f", column {name}"):
            return name
    return None


def _server_record(
    spec: TableSpec, rowid: int | None, values: Sequence[object], exc: BaseException
) -> dict[str, Any]:
    names = spec.column_names
    column = getattr(exc, "column_name", None) or _copy_column(exc, names)
    value = values[names.index(column)] if column in names else None
    if column not in names:
        constraint = getattr(exc, "constraint_name", None)
        column = f"(constraint {constraint})" if constraint else "(row)"
        value = None
    record = copy_record(spec, rowid, values, [BadValue(str(column), value, _reason(exc))])
    if value is None:
        record["value"] = shown(None)
    return record
