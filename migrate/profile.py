"""What each column really stores: SQLite's declared types are advice, not rules.

Per table, two cheap reads:

1. A bounded sample: at most ``sample_rows`` rows, read in a fixed order from evenly spread
   rowid ranges (the first and the last rows included), so two runs see the same rows and a
   table's early and late history are both represented. The sample finds the *shapes* of
   text values (ISO timestamps, epoch numbers, 0/1, JSON).
2. One aggregate scan with exact counts: rows, NULLs, values stored in an unexpected storage
   class, and, for the columns whose cast depends on it, how many values are really ISO
   timestamps, valid JSON or 0/1. A column holding several storage classes gets one more
   ``GROUP BY typeof()`` scan for its exact breakdown.

Tables are profiled in parallel threads (SQLite releases the GIL while it steps), largest
first, each on its own read-only connection.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.convert import number_shape, storage_class
from migrate.names import sqlite_ident
from migrate.source import SourceColumn, SourceSchema, SourceTable
from migrate.sqlite_file import DEFAULT_BUSY_TIMEOUT_S, open_source, reading

# 2,000 rows per table show a column's shapes (a 1-in-1,000 oddity is seen with probability
# ~86%) at a cost of milliseconds; exact counts come from the aggregate scan, not from here.
DEFAULT_SAMPLE_ROWS = 2_000
# Ranges the sample is spread over: the first rows, the last rows and six between.
SAMPLE_SEGMENTS = 8
# Example values kept per shape or storage class, and how much of each (characters).
EXAMPLES = 3
EXAMPLE_CHARS = 40

# Exact checks the aggregate scan can run for a column (on top of the storage counts).
CHECK_ISO = "iso"  # ISO-8601 date/timestamp text SQLite's date functions accept
CHECK_JSON = "json"  # json_valid() text
CHECK_BOOL = "bool01"  # integer 0 or 1
CHECK_INT_RANGE = "int_range"  # min and max of the integer values

STORAGE_CLASSES = ("integer", "real", "text", "blob")
# Declared types that may map to a PostgreSQL integer narrower than bigint.
SMALL_INTEGER_TYPES = frozenset({"SMALLINT", "INT2", "TINYINT", "MEDIUMINT", "INT4"})

# Text shapes, most specific first.
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iso_date", re.compile(r"\d{4}-\d{2}-\d{2}")),
    ("iso_timestamp", re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")),
    (
        "iso_timestamp_offset",
        re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)? ?(Z|[+-]\d{2}:?\d{2})"),
    ),
    ("bool01_text", re.compile(r"[01]")),
    ("integer_text", re.compile(r"[+-]?\d+")),
    ("decimal_text", re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+")),
    ("boolean_word", re.compile(r"(?i)true|false|yes|no|on|off|t|f|y|n")),
)
ISO_SHAPES = frozenset({"iso_date", "iso_timestamp", "iso_timestamp_offset"})


@dataclass
class ColumnProfile:
    """What one column holds: exact counts from the scan, shapes from the sample."""

    name: str
    rows: int = 0
    nulls: int = 0
    storage: dict[str, int] = field(default_factory=dict)  # exact, non-NULL values only
    int_min: int | None = None
    int_max: int | None = None
    sampled: int = 0  # non-NULL values the sample looked at
    shapes: dict[str, int] = field(default_factory=dict)  # sample counts by shape
    exact: dict[str, int] = field(default_factory=dict)  # exact counts of CHECK_* shapes
    examples: dict[str, list[str]] = field(default_factory=dict)  # by storage class or shape

    @property
    def non_null(self) -> int:
        """Values that are not NULL."""
        return self.rows - self.nulls

    def stored(self, *classes: str) -> int:
        """How many values are stored in any of ``classes`` (exact)."""
        return sum(self.storage.get(c, 0) for c in classes)

    @property
    def mixed(self) -> bool:
        """True when the values use more than one storage class."""
        return sum(1 for n in self.storage.values() if n) > 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "rows": self.rows,
            "nulls": self.nulls,
            "storage": dict(self.storage),
            "int_min": self.int_min,
            "int_max": self.int_max,
            "sampled": self.sampled,
            "shapes": dict(self.shapes),
            "exact": dict(self.exact),
            "examples": {k: list(v) for k, v in self.examples.items()},
        }


@dataclass
class TableProfile:
    """One table's profile: row count, sample size, per-column facts, time taken."""

    name: str
    rows: int
    sampled_rows: int
    max_rowid: int | None
    seconds: float
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "rows": self.rows,
            "sampled_rows": self.sampled_rows,
            "max_rowid": self.max_rowid,
            "seconds": round(self.seconds, 3),
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
        }


def example(value: object) -> str:
    """A value as a short, printable example: repr-escaped, truncated."""
    if isinstance(value, bytes):
        text = "x'" + value[:16].hex() + ("…" if len(value) > 16 else "") + "'"
    else:
        text = repr(value)
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def text_shape(value: str) -> str:
    """The shape of one text value: an ISO form, a number, a boolean, JSON, empty or other."""
    if value == "":
        return "empty"
    for name, pattern in _SHAPES:
        if pattern.fullmatch(value):
            return name
    if value[0] in "{[" and _is_json(value):
        return "json"
    return "other_text"


def _lenient_text(raw: bytes) -> str:
    # Text that is not UTF-8 must not stop the plan: the copy rejects it, value by value.
    return raw.decode("utf-8", errors="replace")


def _open(path: Path, timeout: float) -> sqlite3.Connection:
    conn = open_source(path, timeout=timeout)
    conn.text_factory = _lenient_text
    return conn


def _reject_constant(name: str) -> object:
    raise ValueError(name)


def _is_json(value: str) -> bool:
    try:
        # NaN and Infinity are not JSON; PostgreSQL's jsonb refuses them.
        json.loads(value, parse_constant=_reject_constant)
    except ValueError:
        return False
    return True


# -- sampling -------------------------------------------------------------------------------


def _sample(
    conn: sqlite3.Connection, table: SourceTable, rows: int, limit: int
) -> tuple[list[tuple[Any, ...]], int | None]:
    """Up to ``limit`` rows in a fixed order, and the largest rowid (None without rowid)."""
    name = sqlite_ident(table.name)
    cols = ", ".join(sqlite_ident(c.name) for c in table.columns)
    if rows == 0 or limit <= 0:
        max_rowid = None
        if not table.without_rowid:
            max_rowid = conn.execute(f"SELECT max(rowid) FROM {name}").fetchone()[0]  # noqa: S608
        return [], max_rowid
    if table.without_rowid:
        order = ", ".join(sqlite_ident(c) for c in table.primary_key)
        desc = ", ".join(f"{sqlite_ident(c)} DESC" for c in table.primary_key)
        half = max(1, limit // 2)
        if rows <= limit:
            return conn.execute(f"SELECT {cols} FROM {name} ORDER BY {order}").fetchall(), None  # noqa: S608
        head = conn.execute(f"SELECT {cols} FROM {name} ORDER BY {order} LIMIT ?", (half,))  # noqa: S608
        tail = conn.execute(f"SELECT {cols} FROM {name} ORDER BY {desc} LIMIT ?", (half,))  # noqa: S608
        return [*head.fetchall(), *reversed(tail.fetchall())], None
    lo, hi = conn.execute(f"SELECT min(rowid), max(rowid) FROM {name}").fetchone()  # noqa: S608
    if rows <= limit:
        found = conn.execute(f"SELECT {cols} FROM {name} ORDER BY rowid").fetchall()  # noqa: S608
        return found, hi
    per = max(1, limit // SAMPLE_SEGMENTS)
    picked: dict[int, tuple[Any, ...]] = {}
    query = f"SELECT rowid, {cols} FROM {name} WHERE rowid >= ? ORDER BY rowid LIMIT ?"  # noqa: S608
    for i in range(SAMPLE_SEGMENTS - 1):
        start = lo + (hi - lo) * i // (SAMPLE_SEGMENTS - 1)
        for row in conn.execute(query, (start, per)):
            picked[row[0]] = row[1:]
    last = f"SELECT rowid, {cols} FROM {name} ORDER BY rowid DESC LIMIT ?"  # noqa: S608
    for row in conn.execute(last, (per,)):
        picked[row[0]] = row[1:]
    return [picked[k] for k in sorted(picked)], hi


def _shape_sample(profile: ColumnProfile, values: Iterable[object]) -> None:
    shapes: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for value in values:
        if value is None:
            continue
        profile.sampled += 1
        if isinstance(value, str):
            shape = text_shape(value)
        elif isinstance(value, int | float):
            shape = number_shape(value) or storage_class(value)
        else:
            shape = "blob"
        shapes[shape] += 1
        kept = examples.setdefault(shape, [])
        if len(kept) < EXAMPLES:
            kept.append(example(value))
    profile.shapes = dict(shapes.most_common())
    profile.examples.update(examples)


# -- the exact scan -------------------------------------------------------------------------

_DATE_PREFIX = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"
# The form SQLite's own datetime() writes: tried first, a GLOB costs far less than datetime().
_SQLITE_TIMESTAMP = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]"


def _check_sql(col: str, check: str) -> list[str]:
    c = sqlite_ident(col)
    text = f"typeof({c}) = 'text'"
    if check == CHECK_ISO:
        # One test per value: the GLOB of SQLite's own format answers for almost every value,
        # datetime() (ten times dearer) only for the rest. Offsets and date-only values are
        # counted in the sample, not here: each extra pass over a column costs a second per
        # few million rows.
        return [
            f"count(CASE WHEN {c} GLOB '{_SQLITE_TIMESTAMP}' OR "
            f"({text} AND {c} GLOB '{_DATE_PREFIX}' AND datetime({c}) IS NOT NULL) THEN 1 END)"
        ]
    if check == CHECK_JSON:
        return [f"count(CASE WHEN {text} AND json_valid({c}) THEN 1 END)"]
    if check == CHECK_BOOL:
        return [f"count(CASE WHEN typeof({c}) = 'integer' AND {c} IN (0, 1) THEN 1 END)"]
    if check == CHECK_INT_RANGE:
        return [
            f"min(CASE WHEN typeof({c}) = 'integer' THEN {c} END)",
            f"max(CASE WHEN typeof({c}) = 'integer' THEN {c} END)",
        ]
    raise ValueError(f"unknown check {check!r}")


_CHECK_KEYS = {
    CHECK_ISO: ("iso",),
    CHECK_JSON: ("json",),
    CHECK_BOOL: ("bool01",),
}


def column_affinity(declared: str) -> str:
    """SQLite's type affinity for a declared type (https://sqlite.org/datatype3.html 3.1)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t.strip():
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"


def profile_table(
    conn: sqlite3.Connection,
    table: SourceTable,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    checks: Mapping[str, Iterable[str]] | None = None,
    auto_checks: bool = True,
) -> TableProfile:
    """Profile one table on an open connection.

    ``checks`` maps a column name to exact checks to run (``CHECK_*``); with ``auto_checks``
    the checks a column's declared type or sampled shapes call for are added.
    """
    started = time.perf_counter()
    name = sqlite_ident(table.name)
    rows = int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # noqa: S608
    sample, max_rowid = _sample(conn, table, rows, sample_rows)
    profiles = {c.name: ColumnProfile(c.name, rows=rows) for c in table.columns}
    sample_classes: dict[str, Counter[str]] = {}
    for pos, col in enumerate(table.columns):
        values = [row[pos] for row in sample]
        _shape_sample(profiles[col.name], values)
        sample_classes[col.name] = Counter(storage_class(v) for v in values if v is not None)
    wanted: dict[str, set[str]] = {c.name: set() for c in table.columns}
    for col_name, extra in (checks or {}).items():
        if col_name in wanted:
            wanted[col_name].update(extra)
    if auto_checks:
        for col in table.columns:
            wanted[col.name].update(auto_checks_for(col, profiles[col.name]))
    expected = {
        col.name: _majority(sample_classes[col.name], col.declared_type) for col in table.columns
    }
    parts: list[str] = []
    layout: list[tuple[str, str]] = []  # (column, what) for each selected value
    for col in table.columns:
        c = sqlite_ident(col.name)
        parts.append(f"count({c})")
        layout.append((col.name, "non_null"))
        # The rowid and a STRICT table's typed columns cannot hold another storage class.
        enforced = table.strict and col.declared_type.upper() != "ANY"
        if col.name != table.rowid_alias and not enforced:
            # Counts NULLs too (typeof is 'null'): subtracted below. A plain <> is about
            # half the cost of NOT IN ('null', ...) on a scan of millions of rows.
            parts.append(f"count(CASE WHEN typeof({c}) <> '{expected[col.name]}' THEN 1 END)")
            layout.append((col.name, "unexpected"))
        for check in sorted(wanted[col.name]):
            exprs = _check_sql(col.name, check)
            parts += exprs
            keys = _CHECK_KEYS.get(check, ("int_min", "int_max"))
            layout += [(col.name, k) for k in keys]
    found: Sequence[Any]
    if rows and parts:
        found = conn.execute(f"SELECT {', '.join(parts)} FROM {name}").fetchone()  # noqa: S608
    else:
        found = (0,) * len(parts)
    unexpected: list[str] = []
    for (col_name, what), value in zip(layout, found, strict=True):
        prof = profiles[col_name]
        if what == "non_null":
            prof.nulls = rows - int(value)
            if value:
                prof.storage = {expected[col_name]: int(value)}
        elif what == "unexpected":
            if int(value) > prof.nulls:  # the columns' non_null entry comes first
                unexpected.append(col_name)
        elif what == "int_min":
            prof.int_min = None if value is None else int(value)
        elif what == "int_max":
            prof.int_max = None if value is None else int(value)
        else:
            prof.exact[what] = int(value)
    for col_name in unexpected:
        _storage_breakdown(conn, table, profiles[col_name])
    return TableProfile(
        name=table.name,
        rows=rows,
        sampled_rows=len(sample),
        max_rowid=max_rowid,
        seconds=time.perf_counter() - started,
        columns=profiles,
    )


def _majority(classes: Counter[str], declared: str) -> str:
    if classes:
        return classes.most_common(1)[0][0]
    affinity = column_affinity(declared)
    return {"INTEGER": "integer", "REAL": "real", "TEXT": "text", "BLOB": "blob"}.get(
        affinity, "integer"
    )


def _storage_breakdown(conn: sqlite3.Connection, table: SourceTable, prof: ColumnProfile) -> None:
    """Exact counts per storage class, with the smallest and largest value of each."""
    c = sqlite_ident(prof.name)
    query = (
        f"SELECT typeof({c}), count(*), min({c}), max({c}) FROM {sqlite_ident(table.name)} "  # noqa: S608
        f"WHERE {c} IS NOT NULL GROUP BY 1"
    )
    storage: dict[str, int] = {}
    for kind, count, low, high in conn.execute(query):
        storage[str(kind)] = int(count)
        seen = [example(low)] + ([example(high)] if high != low else [])
        prof.examples[f"storage:{kind}"] = seen
    prof.storage = dict(sorted(storage.items(), key=lambda kv: -kv[1]))


def auto_checks_for(column: SourceColumn, profile: ColumnProfile) -> set[str]:
    """The exact checks a column's declared type or sampled shapes make worth running."""
    declared = column.declared_type.upper()
    words = set(re.findall(r"[A-Z0-9]+", declared))
    wanted: set[str] = set()
    if words & {"BOOLEAN", "BOOL"}:
        wanted.add(CHECK_BOOL)
    if words & {"DATE", "DATETIME", "TIMESTAMP", "TIMESTAMPTZ"}:
        wanted.add(CHECK_ISO)
    if words & {"JSON", "JSONB"}:
        wanted.add(CHECK_JSON)
    # The range decides smallint/integer, so only types that could become one need it.
    if words & SMALL_INTEGER_TYPES or CHECK_BOOL in wanted:
        wanted.add(CHECK_INT_RANGE)
    if any(profile.shapes.get(s, 0) for s in ISO_SHAPES):
        wanted.add(CHECK_ISO)
    if profile.shapes.get("json", 0):
        wanted.add(CHECK_JSON)
    return wanted


def profile_schema(
    path: Path | str,
    schema: SourceSchema,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    checks: Mapping[str, Mapping[str, Iterable[str]]] | None = None,
    workers: int | None = None,
    timeout: float = DEFAULT_BUSY_TIMEOUT_S,
) -> dict[str, TableProfile]:
    """Profile every table of ``schema``; ``checks`` adds exact checks per table and column.

    Runs ``workers`` tables at a time (default: the number of CPUs), largest tables first.
    """
    p = Path(path)
    tables = list(schema.tables)
    if not tables:
        return {}
    conn = _open(p, timeout)
    try:
        with reading(p, conn):
            sizes = {
                t.name: conn.execute(f"SELECT count(*) FROM {sqlite_ident(t.name)}").fetchone()[0]  # noqa: S608
                for t in tables
            }
    finally:
        conn.close()
    tables.sort(key=lambda t: -int(sizes[t.name]))
    n = max(1, min(workers or os.cpu_count() or 1, len(tables)))

    def one(table: SourceTable) -> TableProfile:
        own = _open(p, timeout)
        try:
            with reading(p, own):
                return profile_table(
                    own,
                    table,
                    sample_rows=sample_rows,
                    checks=(checks or {}).get(table.name),
                )
        finally:
            own.close()

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="profile") as pool:
        done = list(pool.map(one, tables))
    by_name = {t.name: t for t in done}
    return {t.name: by_name[t.name] for t in schema.tables}


def describe_storage(profile: ColumnProfile, classes: Sequence[str]) -> str:
    """``"12 text (e.g. '12k'), 3 blob"``: the values stored in ``classes``, with examples."""
    parts = []
    for kind in classes:
        n = profile.storage.get(kind, 0)
        if not n:
            continue
        seen = profile.examples.get(f"storage:{kind}") or profile.examples.get(kind) or []
        parts.append(f"{n} {kind}" + (f" (e.g. {', '.join(seen[:2])})" if seen else ""))
    return ", ".join(parts)
