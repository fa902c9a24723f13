"""The migration package's public surface and its error family."""

from __future__ import annotations

import migrate
from harness.errors import HarnessError


def test_all_is_sorted_and_imports() -> None:
    assert migrate.__all__ == sorted(migrate.__all__)
    assert all(getattr(migrate, name, None) is not None for name in migrate.__all__)


def test_errors_are_harness_errors_with_their_own_exit_codes() -> None:
    errors = [
        migrate.SourceNotFoundError,
        migrate.NotSQLiteError,
        migrate.CorruptSourceError,
        migrate.SourceLockedError,
    ]
    assert all(issubclass(e, migrate.SourceError) for e in errors)
    assert issubclass(migrate.MigrationError, HarnessError)
    assert sorted(e.exit_code for e in errors) == [21, 22, 23, 24]
    assert migrate.PlanOptionError.exit_code == 2
