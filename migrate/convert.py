"""Turning SQLite values into the values PostgreSQL's binary COPY takes, exactly or not at all.

Two paths per table, both built from the plan:

- the **fast path** converts a whole batch with one generated list comprehension. Columns
  whose stored values already have the target's Python type pass untouched; the others go
  through a converter that raises on anything it cannot convert exactly. A bad value makes
  the batch fail (here, in asyncpg's encoder, or in PostgreSQL), never changes silently.
- the **careful path** converts one row at a time with the strict converters and returns the
  values that cannot be taken, each with its column and reason, so the rest of the batch
  still loads.

asyncpg's encoders accept some values that would change on the way (a float in an integer
column is truncated, an integer above 2**53 in a double column is rounded, a float in a
numeric column becomes its binary expansion): the fast path lets a value reach an encoder
untouched only when the profile's exact storage counts say no such value is stored.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Conversion = Literal[
    "integer",
    "float",
    "numeric",
    "boolean",
    "timestamp",
    "timestamptz",
    "date",
    "json",
    "bytes",
    "text",
]
# Plausible epoch ranges: 1980-01-01 to 2100-01-01 in seconds and milliseconds; Julian days.
_EPOCH_S = (315_532_800, 4_102_444_800)
_EPOCH_MS = (315_532_800_000, 4_102_444_800_000)
_JULIAN_DAY = (2_444_239.5, 2_488_069.5)

# PostgreSQL's integer ranges by type; bigint holds every SQLite integer.
_INT_RANGES = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1)}
# ASCII digits only: Python's int() and float() also read other scripts' digits ('١٢').
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_FRACTION = re.compile(r"[T ]\d{2}:\d{2}(?::\d{2})?[.,](\d+)")
_TIME_PRECISION = re.compile(r"\((\d+)\)")
_NUMERIC_SCALE = re.compile(r"numeric\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
_EXACT_FLOAT_INT = 2**53
_BOOLEANS: dict[object, bool | None] = {None: None, 0: False, 1: True, "0": False, "1": True}
_EPOCH_2000_JULIAN = 2_451_544.5  # julian day number of 2000-01-01 00:00 UTC
_EPOCH_2000 = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class Rejected(ValueError):  # noqa: N818 - it names the outcome, as the reject file does
    """A value PostgreSQL cannot take as it is: the reason is the message."""


@dataclass(frozen=True)
class ColumnSpec:
    """What the copy needs to know about one loaded column."""

    name: str
    conversion: Conversion
    pg_type: str
    required: bool  # NOT NULL or part of the primary key
    storage: tuple[str, ...]  # SQLite storage classes the profile found (exact)


@dataclass(frozen=True)
class TableSpec:
    """One table as the copy sees it: the loaded columns in order, and how to key a row."""

    name: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...]
    without_rowid: bool
    timezone: str | None = None
    # How SQL names the rowid: "rowid", unless a column is called that (then "_rowid_" or
    # "oid"); None for a table without one, or whose columns take all three names.
    rowid: str | None = "rowid"

    @property
    def column_names(self) -> list[str]:
        """The loaded columns' names, in COPY order."""
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class BadValue:
    """One value the careful path refused: where it is, what it is, why."""

    column: str
    value: object
    reason: str


class InvalidText:
    """A text value whose bytes are not UTF-8, as the careful read finds it."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"InvalidText({self.raw!r})"


def number_shape(value: float) -> str | None:
    """``epoch_s``, ``epoch_ms`` or ``julian_day`` when a number plausibly is one."""
    if isinstance(value, int) and not isinstance(value, bool):
        if _EPOCH_S[0] <= value <= _EPOCH_S[1]:
            return "epoch_s"
        if _EPOCH_MS[0] <= value <= _EPOCH_MS[1]:
            return "epoch_ms"
        return None
    if math.isfinite(value) and _JULIAN_DAY[0] <= value <= _JULIAN_DAY[1]:
        return "julian_day"
    if math.isfinite(value) and _EPOCH_S[0] <= value <= _EPOCH_S[1]:
        return "epoch_s"
    return None


# -- strict converters: value -> target value, or Rejected -----------------------------------


def storage_class(value: object) -> str:
    """The SQLite storage class a Python value came from (``null`` for None)."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str | InvalidText):
        return "text"
    return "blob"


def _to_integer(pg_type: str) -> Callable[[object], int]:
    low, high = _INT_RANGES.get(pg_type, (-(2**63), 2**63 - 1))

    def convert(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise Rejected(f"real {value!r} is not an integer")
            number = int(value)
        elif isinstance(value, str):
            if not _INTEGER_TEXT.fullmatch(value):
                raise Rejected(f"text is not an integer ({pg_type} column)")
            number = int(value)
        else:
            raise Rejected(f"{storage_class(value)} value in a {pg_type} column")
        if not low <= number <= high:
            raise Rejected(f"{number} is outside the {pg_type} range")
        return number

    return convert


def _to_float(value: object) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > _EXACT_FLOAT_INT and float(value) != value:
            raise Rejected(f"integer {value} has no exact double precision value")
        return float(value)
    if isinstance(value, str):
        if value == "":
            raise Rejected("empty string is not a number")
        if not _NUMBER_TEXT.fullmatch(value):
            raise Rejected("text is not a number (double precision column)")
        return float(value)
    raise Rejected(f"{storage_class(value)} value in a double precision column")


def _to_numeric(pg_type: str) -> Callable[[object], Decimal]:
    match = _NUMERIC_SCALE.fullmatch(pg_type.replace(" ", "")) or _NUMERIC_SCALE.fullmatch(pg_type)
    if match is None:
        return _to_decimal
    precision, scale = int(match.group(1)), int(match.group(2) or 0)

    def convert(value: object) -> Decimal:
        number = _to_decimal(value)
        # PostgreSQL would round to the scale (and refuse too many digits): never silently.
        if number.is_finite() and _decimal_places(number) > scale:
            raise Rejected(f"{number} has more decimal places than {pg_type} keeps")
        if number.is_finite() and number.adjusted() >= precision - scale:
            raise Rejected(f"{number} does not fit {pg_type}")
        return number

    return convert


def _decimal_places(number: Decimal) -> int:
    """Digits after the point once trailing zeros are gone (no rounding, any precision)."""
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    places = -exponent
    for digit in reversed(digits):
        if digit != 0 or places <= 0:
            break
        places -= 1
    return max(places, 0)


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest text that reads back as the same double: 0.1, not its
        # 55-digit binary expansion.
        return Decimal(repr(value))
    if isinstance(value, str):
        if value == "":
            raise Rejected("empty string is not a number")
        if not _NUMBER_TEXT.fullmatch(value):
            raise Rejected("text is not a number (numeric column)")
        try:
            return Decimal(value)
        except InvalidOperation:
            raise Rejected("text is not a number (numeric column)") from None
    raise Rejected(f"{storage_class(value)} value in a numeric column")


def _to_boolean(value: object) -> bool:
    if isinstance(value, int | float | str):
        found = _BOOLEANS.get(value)
        if found is not None:
            return found
    raise Rejected(f"boolean column holds {_shown_short(value)}; only 0 and 1 map to false/true")


def _shown_short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:23] + "…"


def _from_number(value: float) -> dt.datetime:
    """A plausible epoch (seconds or milliseconds since 1970, or a Julian day) as UTC."""
    shape = number_shape(value)
    if shape == "epoch_s":
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if shape == "epoch_ms":
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if shape == "julian_day":
        # SQLite's own date functions keep Julian days to the millisecond.
        ms = round((float(value) - _EPOCH_2000_JULIAN) * 86_400_000)
        return _EPOCH_2000 + dt.timedelta(milliseconds=ms)
    raise Rejected(f"number {value!r} is not a timestamp (nor a plausible epoch or Julian day)")


def _parse_iso(value: str) -> dt.datetime:
    fraction = _FRACTION.search(value)
    if fraction is not None and len(fraction.group(1)) > 6:
        raise Rejected("timestamp is more precise than a microsecond: PostgreSQL would round it")
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("text is not an ISO-8601 timestamp") from None


def _to_timestamp(value: object) -> dt.datetime:
    if isinstance(value, str):
        parsed = _parse_iso(value)
        if parsed.tzinfo is not None:
            raise Rejected(
                "timestamp carries a UTC offset but the column is timestamp without time zone"
            )
        return parsed
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_number(value).replace(tzinfo=None)
    raise Rejected(f"{storage_class(value)} value in a timestamp column")


def _to_timestamptz(zone: dt.tzinfo) -> Callable[[object], dt.datetime]:
    def convert(value: object) -> dt.datetime:
        if isinstance(value, str):
            parsed = _parse_iso(value)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _from_number(value)
        raise Rejected(f"{storage_class(value)} value in a timestamptz column")

    return convert


def _to_date(value: object) -> dt.date:
    if not isinstance(value, str):
        raise Rejected(f"{storage_class(value)} value in a date column")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    _parse_iso(value)  # raises for text that is no timestamp at all
    raise Rejected("timestamp has a time of day but the column is date")


def _to_json(value: object) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Rejected(f"{value!r} is not a JSON number")
        return repr(value)
    else:
        raise Rejected(f"{storage_class(value)} value in a JSON column")
    try:
        json.loads(text, parse_constant=_no_constant)
    except ValueError:
        raise Rejected("text is not valid JSON") from None
    if "\\u0000" in text:
        raise Rejected("JSON holds \\u0000, which PostgreSQL's jsonb cannot store")
    if "\x00" in text:
        raise Rejected("text holds a NUL byte, which PostgreSQL cannot store")
    return text


def _no_constant(name: str) -> object:
    raise ValueError(name)


def _to_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()  # what SQLite's CAST(text AS BLOB) gives
    raise Rejected(f"{storage_class(value)} value in a bytea column")


def _to_text(value: object) -> str:
    if isinstance(value, str):
        if "\x00" in value:
            raise Rejected("text holds a NUL byte, which PostgreSQL cannot store")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same double
    if isinstance(value, bytes):
        try:
            text = value.decode()
        except UnicodeDecodeError:
            raise Rejected("blob is not UTF-8 text") from None
        if "\x00" in text:
            raise Rejected("blob holds a NUL byte, which PostgreSQL text cannot store")
        return text
    raise Rejected(f"{storage_class(value)} value in a text column")


def _limited_precision(
    convert: Callable[[object], dt.datetime], pg_type: str
) -> Callable[[object], object]:
    """``timestamp(p)`` keeps ``p`` fractional digits and rounds the rest: refuse those."""
    match = _TIME_PRECISION.search(pg_type)
    if match is None:
        return convert
    digits = int(match.group(1))

    def limited(value: object) -> dt.datetime:
        moment = convert(value)
        if moment.microsecond % 10 ** (6 - min(digits, 6)):
            raise Rejected(f"more fractional seconds than {pg_type} keeps")
        return moment

    return limited


def strict_converter(column: ColumnSpec, zone: dt.tzinfo) -> Callable[[object], object]:
    """The converter that takes exactly the values ``column``'s type can hold."""
    conversion = column.conversion
    if conversion in ("timestamp", "timestamptz") and "(" in column.pg_type:
        plain = ColumnSpec(column.name, conversion, conversion, column.required, column.storage)
        base = strict_converter(plain, zone)
        return _limited_precision(base, column.pg_type)  # type: ignore[arg-type]
    if conversion == "integer":
        return _to_integer(column.pg_type)
    if conversion == "numeric":
        return _to_numeric(column.pg_type)
    if conversion == "timestamptz":
        return _to_timestamptz(zone)
    table: dict[str, Callable[[object], object]] = {
        "float": _to_float,
        "boolean": _to_boolean,
        "timestamp": _to_timestamp,
        "date": _to_date,
        "json": _to_json,
        "bytes": _to_bytes,
        "text": _to_text,
    }
    return table[conversion]


def zone_of(spec: TableSpec) -> dt.tzinfo:
    """The zone naive timestamps are read in: the plan's ``--timezone``, else UTC."""
    return zoneinfo.ZoneInfo(spec.timezone) if spec.timezone else dt.UTC


# -- the fast path --------------------------------------------------------------------------

# Storage classes whose Python value every encoder of the conversion takes unchanged.
_PASS_THROUGH: dict[str, frozenset[str]] = {
    "integer": frozenset({"integer"}),
    "float": frozenset({"real"}),
    "json": frozenset({"text"}),
    "bytes": frozenset({"blob"}),
    "text": frozenset({"text"}),
}


def _fast_expression(i: int, column: ColumnSpec) -> tuple[str, str | None]:
    """Python source converting variable ``v{i}``, and the name of the helper it calls."""
    v = f"v{i}"
    passes = _PASS_THROUGH.get(column.conversion)
    if passes is not None and set(column.storage) <= passes:
        # Anything else arriving here fails in asyncpg's encoder or in PostgreSQL.
        return v, None
    if column.conversion == "boolean":
        return f"_f{i}[{v}]", "booleans"
    if column.conversion == "timestamp" and "(" not in column.pg_type:
        # 26 characters hold a timestamp to the microsecond; longer text (more digits, an
        # offset) goes to the strict converter, which refuses what would be cut.
        return f"(None if {v} is None else _f{i}({v}) if len({v}) <= 26 else _s{i}({v}))", "time"
    return f"(None if {v} is None else _f{i}({v}))", "convert"


def fast_converter(
    spec: TableSpec,
) -> Callable[[Sequence[tuple[Any, ...]]], Sequence[tuple[Any, ...]]]:
    """A function converting a batch of rows for the fast path (raises on any bad value)."""
    zone = zone_of(spec)
    names: dict[str, object] = {}
    parts: list[str] = []
    for i, column in enumerate(spec.columns):
        expression, helper = _fast_expression(i, column)
        parts.append(expression)
        if helper == "booleans":
            names[f"_f{i}"] = _BOOLEANS
        elif helper == "convert":
            names[f"_f{i}"] = _fast_function(column, zone)
        elif helper == "time":
            names[f"_f{i}"] = dt.datetime.fromisoformat
            names[f"_s{i}"] = strict_converter(column, zone)
    if all(p == f"v{i}" for i, p in enumerate(parts)):
        return _unchanged
    variables = ", ".join(f"v{i}" for i in range(len(parts)))
    # The code is built from indexes and helper names only: no value or name of the source
    # database reaches it.
    source = f"lambda rows: [({', '.join(parts)},) for ({variables},) in rows]"
    return eval(source, {"__builtins__": {"len": len}, **names})  # type: ignore[no-any-return]  # noqa: S307


def _unchanged(rows: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
    return rows


def _fast_function(column: ColumnSpec, zone: dt.tzinfo) -> Callable[[Any], object]:
    # C-implemented parsers where they are exact; asyncpg refuses what they let through
    # (an aware datetime in a timestamp column, a number where text is due).
    if column.conversion == "timestamp" and "(" not in column.pg_type:
        return dt.datetime.fromisoformat
    if column.conversion == "date":
        return dt.date.fromisoformat
    return strict_converter(column, zone)


# -- the careful path -----------------------------------------------------------------------


class CarefulConverter:
    """Row-by-row conversion that reports bad values instead of raising."""

    def __init__(self, spec: TableSpec) -> None:
        zone = zone_of(spec)
        self.spec = spec
        self._converters = [strict_converter(c, zone) for c in spec.columns]

    def row(self, values: Sequence[object]) -> tuple[tuple[Any, ...] | None, list[BadValue]]:
        """The converted row, or None and every bad value in it."""
        out: list[object] = []
        bad: list[BadValue] = []
        for column, convert, value in zip(self.spec.columns, self._converters, values, strict=True):
            if isinstance(value, InvalidText):
                bad.append(BadValue(column.name, value, "text is not valid UTF-8"))
                out.append(None)
                continue
            if value is None:
                if column.required:
                    bad.append(BadValue(column.name, None, "NULL in a NOT NULL column"))
                out.append(None)
                continue
            try:
                out.append(convert(value))
            except Rejected as exc:
                bad.append(BadValue(column.name, value, str(exc)))
            except ArithmeticError as exc:  # a number decimal cannot even represent
                bad.append(BadValue(column.name, value, f"not a number PostgreSQL keeps ({exc})"))
        return (None, bad) if bad else (tuple(out), [])
