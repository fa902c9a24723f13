"""Quoting names for SQLite and PostgreSQL, and PostgreSQL's limits on them.

Every table, column, index and constraint name that reaches SQL goes through one of these
functions: SQLite applications name things freely (spaces, quotes, keywords), and a name
spliced into SQL unescaped is both a bug and an injection.
"""

from __future__ import annotations

import hashlib
import re

# PostgreSQL keeps the first NAMEDATALEN - 1 bytes of an identifier and drops the rest
# (NAMEDATALEN is 64 in every stock build).
PG_MAX_IDENTIFIER_BYTES = 63

_LINE_BREAKS = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\x85]")


def pg_ident(name: str) -> str:
    """``name`` as a quoted PostgreSQL identifier: in double quotes, quotes doubled (the
    rule psycopg's ``sql.Identifier`` applies; written out so the copy's worker processes
    need not load psycopg)."""
    if "\x00" in name:
        # PostgreSQL identifiers cannot hold NUL; the plan reports such names for a human.
        name = name.replace("\x00", "")
    return '"' + name.replace('"', '""') + '"'


def pg_literal(value: str) -> str:
    """``value`` as a PostgreSQL string literal (psycopg's escaping)."""
    from psycopg import sql

    return sql.Literal(value).as_string()


def sqlite_ident(name: str) -> str:
    """``name`` as a quoted SQLite identifier (double quotes, embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def comment_text(text: str) -> str:
    """``text`` made safe for a ``--`` comment: no line break can end the comment early.

    Names come from the source database, so a name holding a newline would otherwise turn
    the rest of its line into SQL.
    """
    return _LINE_BREAKS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def truncated_pg_name(name: str) -> str:
    """What PostgreSQL keeps of ``name``: its first 63 bytes, cut on a character boundary."""
    raw = name.encode()
    if len(raw) <= PG_MAX_IDENTIFIER_BYTES:
        return name
    return raw[:PG_MAX_IDENTIFIER_BYTES].decode(errors="ignore")


def derived_name(*parts: str, suffix: str) -> str:
    """A constraint name built like PostgreSQL's own (``table_col_fkey``) that fits 63 bytes.

    When the parts are too long they are cut and a short hash of the full name keeps two long
    names from colliding after the cut.
    """
    full = "_".join([*parts, suffix])
    if len(full.encode()) <= PG_MAX_IDENTIFIER_BYTES:
        return full
    digest = hashlib.sha1(full.encode(), usedforsecurity=False).hexdigest()[:8]
    tail = f"_{digest}_{suffix}"
    head = full.encode()[: PG_MAX_IDENTIFIER_BYTES - len(tail.encode())].decode(errors="ignore")
    return head + tail
