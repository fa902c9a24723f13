"""Canonical row hashes of SQLite batches, fast: one generated comprehension per table.

Each column's value is formed inline when it has the expected Python type (an ``int`` in an
integer column, a ``str`` in a text or timestamp column...) and by the exact
:class:`~migrate.validate.canonical.RowCanon` former otherwise, so the result is always the
canonical form, only cheaper. A row's hash is the first 8 bytes of the MD5 of its canonical
text, read as a signed big-endian integer: exactly what PostgreSQL computes with
``('x' || substr(md5(row), 1, 16))::bit(64)::bigint``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Callable, Sequence
from typing import Any

from migrate.validate.canonical import (
    NULL,
    SEPARATOR,
    RowCanon,
    base_type,
    conversion_of,
    jsonb_value_form,
)

_DOUBLE = struct.Struct(">d").pack
_BOOLEANS = {None: NULL, 0: "false", 1: "true", "0": "false", "1": "true"}


def row_hash(text: str) -> int:
    """The signed 64-bit hash of a canonical row text (PostgreSQL computes the same)."""
    return int.from_bytes(
        hashlib.md5(text.encode(), usedforsecurity=False).digest()[:8], "big", signed=True
    )


def pg_row_hash(row_sql: str) -> str:
    """SQL of the same hash over a canonical row expression."""
    return f"('x' || substr(md5({row_sql}), 1, 16))::bit(64)::bigint"


def _seconds(text: str) -> str:
    """The canonical form of ``YYYY-MM-DD HH:MM:SS`` (or with ``T``), by slicing: formatting
    a datetime costs more than the rest of the row. Parsed first, so an impossible date
    still raises and goes to the exact former."""
    moment = dt.datetime.fromisoformat(text)
    if (
        moment.tzinfo is None
        and text[10] in " T"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    ):
        return f"{text[:10]}T{text[11:]}.000000"
    return moment.isoformat(timespec="microseconds")


def _expression(i: int, pg_type: str) -> str:
    v, slow = f"v{i}", f"_c{i}({'v' + str(i)})"
    conversion = conversion_of(pg_type)
    base = base_type(pg_type)
    if conversion == "integer":
        return f"(str({v}) if {v}.__class__ is int else {slow})"
    if conversion == "float" and base != "real":
        return f"(_double({v}).hex() if {v}.__class__ is float else {slow})"
    if conversion == "boolean":
        return f"(_booleans.get({v}) or {slow})"
    if conversion == "timestamp":
        # Up to 26 characters: at most microseconds (fromisoformat would cut finer digits,
        # which the strict converter refuses).
        return (
            f"(_seconds({v}) if {v}.__class__ is str and len({v}) == 19 else "
            f"_ts({v}).isoformat(timespec='microseconds') "
            f"if {v}.__class__ is str and len({v}) <= 26 else {slow})"
        )
    if conversion == "date":
        return f"(_date({v}).isoformat() if {v}.__class__ is str else {slow})"
    if conversion == "bytes":
        return f"({v}.hex() if {v}.__class__ is bytes else {slow})"
    if base == "jsonb":
        return f"(_jsonb({v}) if {v}.__class__ is str else {slow})"
    if (conversion == "text" and base not in ("character", "char", "bpchar")) or base == "json":
        return f"(f'{{len({v})}}:{{{v}}}' if {v}.__class__ is str else {slow})"
    return slow


def text_function(
    columns: Sequence[tuple[str, str]], timezone: str | None = None
) -> Callable[[Sequence[tuple[Any, ...]]], list[str]]:
    """A function turning a batch of SQLite rows into their canonical texts."""
    canon = RowCanon(columns, timezone)
    names: dict[str, object] = {
        "_double": _DOUBLE,
        "_booleans": _BOOLEANS,
        "_ts": dt.datetime.fromisoformat,
        "_date": dt.date.fromisoformat,
        "_jsonb": jsonb_value_form,
        "_seconds": _seconds,
    }
    for i, former in enumerate(canon._forms):
        names[f"_c{i}"] = former
    parts = [_expression(i, pg_type) for i, (_name, pg_type) in enumerate(columns)]
    if not parts:
        return lambda rows: ["" for _ in rows]
    variables = ", ".join(f"v{i}" for i in range(len(parts)))
    joined = f"'{SEPARATOR}'.join(({', '.join(parts)},))"
    # Built from column positions and helper names only: nothing from the database.
    source = f"lambda rows: [{joined} for ({variables},) in rows]"
    fast: Callable[[Sequence[tuple[Any, ...]]], list[str]] = eval(  # noqa: S307
        source,
        {
            "__builtins__": {"str": str, "len": len, "int": int, "float": float, "bytes": bytes},
            **names,
        },
    )

    def texts(rows: Sequence[tuple[Any, ...]]) -> list[str]:
        try:
            return fast(rows)
        except (ValueError, TypeError, ArithmeticError, AttributeError):
            # A value the inline forms cannot take (text that is no timestamp...): the exact
            # formers, row by row, which never raise.
            return [canon.text(row) for row in rows]

    return texts
