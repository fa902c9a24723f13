"""Run directory names: ``runs/<UTC stamp>-<name>``, with ``-2``, ``-3``... when a second run
starts within the same second."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def new_run_dir(runs_dir: Path, name: str) -> Path:
    """A path under ``runs_dir`` that does not exist yet (not created)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = runs_dir / f"{stamp}-{name}"
    n = 2
    while path.exists():
        path = runs_dir / f"{stamp}-{name}-{n}"
        n += 1
    return path
