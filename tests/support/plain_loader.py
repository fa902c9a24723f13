"""Test fixtures load PostgreSQL through the package's seeding module."""

from harness.target.seed import load_into_postgres

__all__ = ["load_into_postgres"]
