"""SQLite to PostgreSQL migration: plan the schema and the casts, then copy every row.

The public surface is below; the modules hold the work: :mod:`migrate.source` reads the
SQLite schema, :mod:`migrate.profile` measures what is stored, :mod:`migrate.casts` picks
each column's type, :mod:`migrate.translate` rewrites expressions with sqlglot,
:mod:`migrate.plan` puts it together as DDL, JSON and a table, and :mod:`migrate.run` copies
the rows (:mod:`migrate.parallel`, :mod:`migrate.worker`, :mod:`migrate.loader`), finishes
the schema (:mod:`migrate.postload`) and keeps its state (:mod:`migrate.state`).

Names load lazily, so the copy's worker processes import only what they use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from migrate.errors import (
    CorruptSourceError,
    MigrationError,
    NotSQLiteError,
    PlanOptionError,
    SourceError,
    SourceLockedError,
    SourceNotFoundError,
)

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use
    from migrate.casts import Cast
    from migrate.plan import Plan, make_plan, render_plan
    from migrate.profile import profile_schema
    from migrate.rollback import rollback_migration
    from migrate.run import MigrateOptions, MigrationResult, run_migration
    from migrate.source import read_schema
    from migrate.status import migration_status

_LAZY = {
    "Cast": "migrate.casts",
    "MigrateOptions": "migrate.run",
    "MigrationResult": "migrate.run",
    "Plan": "migrate.plan",
    "make_plan": "migrate.plan",
    "migration_status": "migrate.status",
    "profile_schema": "migrate.profile",
    "read_schema": "migrate.source",
    "render_plan": "migrate.plan",
    "rollback_migration": "migrate.rollback",
    "run_migration": "migrate.run",
}

__all__ = [
    "Cast",
    "CorruptSourceError",
    "MigrateOptions",
    "MigrationError",
    "MigrationResult",
    "NotSQLiteError",
    "Plan",
    "PlanOptionError",
    "SourceError",
    "SourceLockedError",
    "SourceNotFoundError",
    "make_plan",
    "migration_status",
    "profile_schema",
    "read_schema",
    "render_plan",
    "rollback_migration",
    "run_migration",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'migrate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
