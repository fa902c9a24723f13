"""Reject records: every row PostgreSQL could not take, with where it was and why.

A record is one JSON object per line in ``rejects/<table>.jsonl``: the table, the phase that
refused it (``copy``, ``keys`` or ``foreign_keys``), the SQLite rowid when there is one, the
primary key, the column, the value (control characters as ``\\xNN``, bytes as ``x'hex'``,
cut at 200 characters), its SQLite storage class, the reason, and the whole row (shown the
same way) so it can be fixed and loaded by hand.
The run's state in PostgreSQL holds the same records, written in the same transaction as the
rows that were loaded; the files are rewritten from it when a run ends or resumes, so a crash
can never leave a reject twice in a file, or missing from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from migrate.convert import BadValue, InvalidText, TableSpec, storage_class

VALUE_CHARS = 200  # characters of a value kept in a record
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def shown(value: object) -> Any:
    """``value`` as JSON can hold it: numbers as they are, text truncated, bytes as hex."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, InvalidText):
        value = value.raw
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = "x'" + raw[: VALUE_CHARS // 2].hex() + "'"
        return text + ("…" if len(raw) > VALUE_CHARS // 2 else "")
    text = str(value)
    cut = text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + "…"
    # Control characters are shown as \xNN: visible to a reader, and storable in jsonb
    # (which refuses NUL).
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", cut)


def copy_record(
    spec: TableSpec,
    rowid: int | None,
    values: Sequence[object],
    bad: Sequence[BadValue],
) -> dict[str, Any]:
    """The record of one row the copy refused: its first bad value, and every reason."""
    first = bad[0]
    row = {c.name: shown(v) for c, v in zip(spec.columns, values, strict=True)}
    return {
        "table": spec.name,
        "phase": "copy",
        "rowid": rowid,
        "key": {k: row.get(k) for k in spec.primary_key},
        "column": first.column,
        "value": shown(first.value),
        "value_type": storage_class(first.value),
        "reason": first.reason,
        "also": [{"column": b.column, "reason": b.reason} for b in bad[1:]],
        "row": row,
    }


def loaded_row_record(
    table: str,
    phase: str,
    primary_key: Sequence[str],
    row: Mapping[str, Any],
    columns: Sequence[str],
    reason: str,
) -> dict[str, Any]:
    """The record of a row removed after the load (a duplicate key, an orphan): ``row`` is
    the row as PostgreSQL held it, ``columns`` the columns the reason is about."""
    value: Any = [shown(row.get(c)) for c in columns]
    return {
        "table": table,
        "phase": phase,
        "rowid": None,
        "key": {k: shown(row.get(k)) for k in primary_key},
        "column": ", ".join(columns),
        "value": value[0] if len(value) == 1 else value,
        "value_type": None,
        "reason": reason,
        "also": [],
        "row": {k: shown(v) for k, v in row.items()},
    }


def file_name(table: str) -> str:
    """A file name for ``table``'s rejects that no table name can turn into a path trick."""
    safe = _UNSAFE_FILE_CHARS.sub("_", table)[:80].lstrip(".") or "table"
    if safe != table:
        digest = hashlib.sha1(table.encode(), usedforsecurity=False).hexdigest()[:8]
        safe = f"{safe}-{digest}"
    return f"{safe}.jsonl"


def encode(record: Mapping[str, Any]) -> str:
    """One JSONL line (no trailing newline)."""
    return json.dumps(record, ensure_ascii=False, default=str)


def append(folder: Path, table: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Append records to the table's file in one write, so parallel workers never interleave
    lines (the file is rewritten from the state when the run ends)."""
    text = "".join(encode(r) + "\n" for r in records)
    if not text:
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / file_name(table), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def rewrite(folder: Path, by_table: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, Path]:
    """Write every table's file from scratch (atomically) and remove files of tables that
    have no reject any more; return table -> file."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for table, records in by_table.items():
        path = folder / file_name(table)
        partial = path.with_suffix(".jsonl.partial")
        with partial.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(encode(record) + "\n")
        partial.replace(path)
        written[table] = path
    keep = {p.name for p in written.values()}
    for stale in folder.glob("*.jsonl"):
        if stale.name not in keep:
            stale.unlink()
    return written
