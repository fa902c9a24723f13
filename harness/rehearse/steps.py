"""The rehearsal's steps, in order, and what each leaves in the rehearsal directory."""

from __future__ import annotations

from typing import Literal

Step = Literal[
    "source", "audit", "baseline", "migrate", "validate", "pool", "candidate", "compare",
    "rollback",
]  # fmt: skip
STEPS: tuple[Step, ...] = (
    "source",
    "audit",
    "baseline",
    "migrate",
    "validate",
    "pool",
    "candidate",
    "compare",
    "rollback",
)
TITLES: dict[str, str] = {
    "source": "Source: the SQLite database",
    "audit": "Audit: the PostgreSQL schema, and what needs a human",
    "baseline": "Baseline: the scenario against the API on SQLite",
    "migrate": "Migrate: every row into PostgreSQL",
    "validate": "Validate: prove nothing was lost",
    "pool": "Pool: the connection pool size",
    "candidate": "Candidate: the same scenario against the API on PostgreSQL",
    "compare": "Compare: candidate against baseline",
    "rollback": "Rollback drill: the API back on SQLite",
}
