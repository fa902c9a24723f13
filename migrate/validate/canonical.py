"""One text form per value that both engines produce identically, so rows can be hashed apart.

The form is decided by the **target** column's PostgreSQL type. A SQLite value is first
converted the way the migration converts it (:mod:`migrate.convert`'s strict converters:
the value PostgreSQL should hold), then written as:

========================  ===================================================  ==========
PostgreSQL type           form                                                 example
========================  ===================================================  ==========
NULL                      ``~``                                                ``~``
smallint/integer/bigint   decimal digits                                       ``-42``
double precision / real   the 8 IEEE-754 bytes of the double, hex (so a value  ``3ff8...``
                          stored as single precision differs, and -0 ≠ 0)
numeric                   digits without trailing zeros (``trim_scale``)       ``19.9``
boolean                   ``true`` / ``false``                                 ``true``
timestamp                 ``YYYY-MM-DDTHH:MM:SS.ffffff``
timestamptz               the same in UTC, then ``Z``
date                      ``YYYY-MM-DD``
text, varchar, json, …    length in characters, ``:``, the text (so the        ``3:a|b``
                          separator inside a value is never ambiguous and
                          NULL differs from the empty string ``0:``)
jsonb                     PostgreSQL's own jsonb text (keys by length then
                          bytes, ``", "`` and ``": "``), length-prefixed
bytea                     hex                                                  ``00ff``
========================  ===================================================  ==========

A row is its values joined by ``|``; a value the migration would have rejected is ``!``
and its reason, so the row can never match. PostgreSQL computes the same forms in SQL
(:func:`pg_expression`); SQLite's side is computed in Python (:class:`RowCanon`).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from migrate.convert import ColumnSpec, Conversion, InvalidText, Rejected, strict_converter
from migrate.names import pg_ident

_quote: Callable[[str], str] = json.encoder.encode_basestring

NULL = "~"
SEPARATOR = "|"
_TEXTUAL = ("text", "character varying", "character", "varchar", "char", "name", "citext")


def base_type(pg_type: str) -> str:
    """``numeric(12,2)`` -> ``numeric``; ``character varying(10)`` -> ``character varying``."""
    return pg_type.split("(")[0].strip().lower()


def conversion_of(pg_type: str) -> Conversion:
    """How a SQLite value becomes a value of ``pg_type`` (the migration's conversions)."""
    base = base_type(pg_type)
    if base in ("smallint", "integer", "bigint"):
        return "integer"
    if base in ("double precision", "real"):
        return "float"
    if base == "numeric":
        return "numeric"
    if base == "boolean":
        return "boolean"
    if base in ("timestamp without time zone", "timestamp"):
        return "timestamp"
    if base in ("timestamp with time zone", "timestamptz"):
        return "timestamptz"
    if base == "date":
        return "date"
    if base in ("jsonb", "json"):
        return "json"
    if base == "bytea":
        return "bytes"
    return "text"


# -- PostgreSQL's side ----------------------------------------------------------------------


def pg_expression(column: str, pg_type: str) -> str:
    """SQL giving the canonical form of ``column`` (quoted here) of type ``pg_type``."""
    x = pg_ident(column)
    base = base_type(pg_type)
    conversion = conversion_of(pg_type)
    if conversion == "integer":
        form = f"{x}::text"
    elif conversion == "float":
        form = f"encode(float8send({x}::float8), 'hex')"
    elif conversion == "numeric":
        form = f"trim_scale({x})::text"
    elif conversion == "boolean":
        form = f"{x}::text"
    elif conversion == "timestamp":
        form = f"to_char({x}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    elif conversion == "timestamptz":
        form = f"to_char({x} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    elif conversion == "date":
        form = f"to_char({x}, 'YYYY-MM-DD')"
    elif conversion == "bytes":
        form = f"encode({x}, 'hex')"
    elif base in _TEXTUAL:
        form = f"length({x})::text || ':' || {x}"
    else:
        form = f"length({x}::text)::text || ':' || {x}::text"
    return f"coalesce({form}, '{NULL}')"


def pg_row_expression(columns: Sequence[tuple[str, str]]) -> str:
    """SQL giving a row's canonical text from (column, pg_type) pairs."""
    parts = [pg_expression(name, pg_type) for name, pg_type in columns]
    return f"concat_ws('{SEPARATOR}', {', '.join(parts)})" if parts else "''"


# -- the Python side ------------------------------------------------------------------------


def _key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode()
    return len(raw), raw


_KEY_ORDERS: dict[tuple[str, ...], list[str]] = {}
_KEY_ORDERS_MAX = 4_096


def _ordered_keys(value: dict[str, Any]) -> list[str]:
    # Objects of one column mostly share their keys: sort each key set once.
    given = tuple(value)
    found = _KEY_ORDERS.get(given)
    if found is None:
        found = sorted(given, key=_key_order)
        if len(_KEY_ORDERS) < _KEY_ORDERS_MAX:
            _KEY_ORDERS[given] = found
    return found


def _jsonb_text(value: Any) -> str:
    """``value`` written the way PostgreSQL's jsonb prints it."""
    cls = value.__class__
    if cls is str:
        return _quote(value)  # the same escapes as PostgreSQL's: quote, backslash, controls
    if cls is int:
        return str(value)
    if cls is dict:
        # jsonb keeps the last of duplicate keys (so does json.loads) and orders keys by
        # length, then bytes.
        keys = _ordered_keys(value) if len(value) > 1 else list(value)
        return "{" + ", ".join([f"{_quote(k)}: {_jsonb_text(value[k])}" for k in keys]) + "}"
    if cls is list:
        return "[" + ", ".join([_jsonb_text(v) for v in value]) + "]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return _numeric_text(value, keep_scale=True)


def _numeric_text(value: Decimal, *, keep_scale: bool = False) -> str:
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0" if not keep_scale else format(abs(value), "f")
    text = format(value, "f")  # every digit, no exponent, whatever the precision
    if keep_scale:
        # jsonb numbers keep their scale (1.0 stays 1.0).
        return text
    # numeric's trim_scale: no trailing fractional zeros (normalize() would round to 28
    # digits).
    return text.rstrip("0").rstrip(".") if "." in text else text


# One decoder for every value (json.loads with options builds a new one per call).
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # jsonb refuses NaN and Infinity


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant)


def jsonb_form(text: str) -> str:
    """The text PostgreSQL's jsonb gives back for the JSON ``text``."""
    return _jsonb_text(_DECODER.decode(text))


def jsonb_value_form(text: str) -> str:
    """:func:`jsonb_form`, length-prefixed: the canonical form of a jsonb value."""
    try:
        form = jsonb_form(text)
    except (ValueError, ArithmeticError, RecursionError):
        return "!text is not valid JSON"
    return f"{len(form)}:{form}"


def _textual(value: str) -> str:
    return f"{len(value)}:{value}"


def value_form(value: Any, pg_type: str) -> str:
    """The canonical form of a value as PostgreSQL holds it (a psycopg result value)."""
    if value is None:
        return NULL
    conversion = conversion_of(pg_type)
    base = base_type(pg_type)
    if conversion == "integer":
        return str(int(value))
    if conversion == "float":
        number = float(value)
        if base == "real":
            # What a real column holds: the nearest single-precision value.
            number = struct.unpack(">f", struct.pack(">f", number))[0]
        return struct.pack(">d", number).hex()
    if conversion == "numeric":
        return _numeric_text(Decimal(value))
    if conversion == "boolean":
        return "true" if value else "false"
    if conversion in ("timestamp", "timestamptz"):
        assert isinstance(value, dt.datetime)
        if value.tzinfo is not None:
            utc = value.astimezone(dt.UTC).replace(tzinfo=None)
            return utc.isoformat(timespec="microseconds") + "Z"
        return value.isoformat(timespec="microseconds")
    if conversion == "date":
        return str(value.isoformat())
    if conversion == "bytes":
        return bytes(value).hex()
    if base == "jsonb":
        text = value if isinstance(value, str) else json.dumps(value)
        return _textual(jsonb_form(text))
    if base == "json" and not isinstance(value, str):
        return _textual(json.dumps(value))
    if base in ("character", "char", "bpchar"):
        return _textual(str(value).rstrip(" "))  # char(n) pads; its text form does not
    return _textual(str(value))


class RowCanon:
    """Canonical forms of SQLite rows for a target table's columns."""

    def __init__(self, columns: Sequence[tuple[str, str]], timezone: str | None = None) -> None:
        self.columns = list(columns)
        self._forms: list[Callable[[object], str]] = [
            self._former(pg_type, timezone) for _name, pg_type in columns
        ]

    @staticmethod
    def _former(pg_type: str, timezone: str | None) -> Callable[[object], str]:
        import zoneinfo

        conversion = conversion_of(pg_type)
        zone = zoneinfo.ZoneInfo(timezone) if timezone else dt.UTC
        spec = ColumnSpec("", conversion, base_type(pg_type), False, ())
        convert = strict_converter(spec, zone)

        def form(value: object) -> str:
            if value is None:
                return NULL
            if isinstance(value, InvalidText):
                return "!text is not valid UTF-8"
            try:
                converted = convert(value)
            except Rejected as why:
                return f"!{why}"
            if conversion == "json" and base_type(pg_type) == "jsonb":
                return jsonb_value_form(str(converted))
            return value_form(converted, pg_type)

        return form

    def values(self, row: Sequence[object]) -> list[str]:
        """Each value's canonical form."""
        return [form(v) for form, v in zip(self._forms, row, strict=True)]

    def text(self, row: Sequence[object]) -> str:
        """The row's canonical text."""
        return SEPARATOR.join([form(v) for form, v in zip(self._forms, row, strict=True)])
