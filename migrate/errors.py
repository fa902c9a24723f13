"""The migration's errors: one family under :class:`harness.errors.HarnessError`.

Each message is the single line the CLI prints: what failed, on which file or object, and
what to do about it. Exit codes 20 and up are the migration's own (the README's table lists
the harness-wide ones below 20).
"""

from __future__ import annotations

from harness.errors import HarnessError


class MigrationError(HarnessError):
    """Base of every error the migration raises on purpose."""

    exit_code = 20


class SourceError(MigrationError):
    """The SQLite database to migrate cannot be read."""

    exit_code = 21


class SourceNotFoundError(SourceError):
    """The SQLite path does not exist or is not a regular file."""

    exit_code = 21


class NotSQLiteError(SourceError):
    """The file exists but is not a SQLite database (empty, another format, encrypted)."""

    exit_code = 22


class CorruptSourceError(SourceError):
    """SQLite reads the header but the file is damaged (``PRAGMA quick_check`` fails)."""

    exit_code = 23


class SourceLockedError(SourceError):
    """Another process holds a lock that keeps even a read-only reader out."""

    exit_code = 24


class PlanOptionError(MigrationError):
    """A plan option is wrong: an override naming no column, an unknown type or time zone."""

    exit_code = 2


class StrictStopError(MigrationError):
    """``--strict``: the first rejected row stopped the run (nothing of its chunk loaded)."""

    exit_code = 26

    def __init__(self, record: dict[str, object]) -> None:
        self.record = record
        where = ""
        if record.get("rowid") is not None:
            where = f"rowid {record['rowid']}, "
        elif record.get("key"):
            where = f"key {record['key']}, "
        super().__init__(
            f"--strict: stopped at the first reject: table {record['table']!r}, {where}"
            f"column {record['column']!r}: {record['reason']} (value {record['value']!r}); "
            "nothing of that chunk was loaded. Run with --resume (without --strict) to load the "
            "rest and collect every reject, or roll back, fix the source and run again"
        )


class TargetError(MigrationError):
    """The PostgreSQL target cannot take this migration as asked: tables already there, no
    CREATE right, nothing to resume, a run already in progress."""

    exit_code = 27


class ResumeError(MigrationError):
    """A run cannot be resumed: its source changed, or it was planned differently."""

    exit_code = 28


class CopyError(MigrationError):
    """The copy stopped (a worker failed, the server went away); the run can be resumed."""

    exit_code = 29
