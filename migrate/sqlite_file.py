"""Opening a SQLite file read-only, and SQLite's failures as the migration's one-line errors.

Kept apart from the schema reader so the copy's worker processes open files without loading
the SQL tokenizer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from migrate.errors import (
    CorruptSourceError,
    NotSQLiteError,
    SourceError,
    SourceLockedError,
    SourceNotFoundError,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
# How long a read waits for another process's write lock before giving up (seconds). A
# writer's transaction normally lasts milliseconds; longer means a stuck or bulk writer.
DEFAULT_BUSY_TIMEOUT_S = 5.0

Integrity = Literal["quick", "full", "none"]

# sqlite3 error codes (primary result codes, see https://sqlite.org/rescode.html).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


def source_error(path: Path, exc: sqlite3.Error) -> SourceError:
    """The one-line error for a failure SQLite reported while reading ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    detail = str(exc)
    if primary is None and "locked" in detail:
        primary = _SQLITE_BUSY
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return SourceLockedError(
            f"{path}: locked by another process (SQLite: {detail}); let the writer finish, "
            f"or migrate a copy made with: sqlite3 {path} '.backup copy.db'"
        )
    if primary == _SQLITE_NOTADB:
        return NotSQLiteError(
            f"{path}: SQLite says it is not a database ({detail}); it may be encrypted or "
            "another format"
        )
    if primary in (_SQLITE_CORRUPT, _SQLITE_IOERR):
        return CorruptSourceError(
            f"{path}: the database is damaged (SQLite: {detail}); recover what it holds with "
            f"`sqlite3 {path} .recover | sqlite3 recovered.db` and migrate recovered.db"
        )
    if primary == _SQLITE_CANTOPEN:
        return SourceError(
            f"{path}: SQLite cannot open it read-only ({detail}); a WAL database needs its "
            "folder to be writable for the shared-memory file: copy it to a writable folder"
        )
    return SourceError(f"{path}: SQLite cannot read it ({detail})")


def open_source(path: Path | str, *, timeout: float = DEFAULT_BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open ``path`` read-only (``mode=ro``): the migration never writes to its source.

    Raises :class:`SourceNotFoundError`, :class:`NotSQLiteError`, :class:`SourceLockedError`
    or :class:`SourceError` with one line naming the problem.
    """
    p = Path(path)
    if not p.exists():
        raise SourceNotFoundError(
            f"{p}: no such file; give the path of the SQLite database to migrate"
        )
    if not p.is_file():
        raise SourceNotFoundError(f"{p}: not a file; give the path of a SQLite database file")
    try:
        with p.open("rb") as fh:
            header = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise SourceError(f"{p}: cannot read it ({exc.strerror}); check its permissions") from None
    if not header:
        raise NotSQLiteError(f"{p}: empty file, not a SQLite database")
    if header != SQLITE_MAGIC:
        raise NotSQLiteError(
            f"{p}: not a SQLite database (no SQLite header); give the database file itself, "
            "not a dump or an export"
        )
    # quote(): a path holding '?' or '#' would otherwise end the file name inside the URI.
    uri = f"file:{quote(str(p.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise source_error(p, exc) from None
    return conn


@contextlib.contextmanager
def reading(path: Path, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Turn any SQLite error raised inside the block into the migration's one-line error."""
    try:
        yield conn
    except sqlite3.Error as exc:
        raise source_error(path, exc) from None


def check_integrity(conn: sqlite3.Connection, path: Path, mode: Integrity = "quick") -> None:
    """Raise :class:`CorruptSourceError` unless SQLite's own check passes.

    ``quick`` runs ``PRAGMA quick_check`` (every page and record, not index contents: about
    3 s per GB); ``full`` runs ``integrity_check``; ``none`` skips it.
    """
    if mode == "none":
        return
    pragma = "quick_check" if mode == "quick" else "integrity_check"
    with reading(path, conn):
        # At most 3 messages: the first names the damage, more only lengthen the line.
        rows = conn.execute(f"PRAGMA {pragma}(3)").fetchall()
    messages = [str(r[0]) for r in rows]
    if messages != ["ok"]:
        raise CorruptSourceError(
            f"{path}: PRAGMA {pragma} failed ({'; '.join(messages)}); recover what it holds "
            f"with `sqlite3 {path} .recover | sqlite3 recovered.db` and migrate recovered.db"
        )
