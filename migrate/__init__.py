"""SQLite to PostgreSQL migration: plan the schema and the casts, then copy every row.

The public surface is below; the modules hold the work: :mod:`migrate.source` reads the
SQLite schema, :mod:`migrate.profile` measures what is stored, :mod:`migrate.casts` picks
each column's type, :mod:`migrate.translate` rewrites expressions with sqlglot, and
:mod:`migrate.plan` puts it together as DDL, JSON and a table.
"""

from __future__ import annotations

from migrate.casts import Cast
from migrate.errors import (
    CorruptSourceError,
    MigrationError,
    NotSQLiteError,
    PlanOptionError,
    SourceError,
    SourceLockedError,
    SourceNotFoundError,
)
from migrate.plan import Plan, make_plan, render_plan
from migrate.profile import profile_schema
from migrate.source import read_schema

__all__ = [
    "Cast",
    "CorruptSourceError",
    "MigrationError",
    "NotSQLiteError",
    "Plan",
    "PlanOptionError",
    "SourceError",
    "SourceLockedError",
    "SourceNotFoundError",
    "make_plan",
    "profile_schema",
    "read_schema",
    "render_plan",
]
