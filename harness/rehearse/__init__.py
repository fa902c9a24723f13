"""``harness rehearse``: the whole SQLite-to-PostgreSQL rehearsal in one command."""

from harness.rehearse.run import RehearseOptions, RehearseResult, rehearse

__all__ = ["RehearseOptions", "RehearseResult", "rehearse"]
