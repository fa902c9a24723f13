"""How a lost worker is told: one sentence from its ``run.json`` record.

``run.json`` keeps ``lost_workers``: one entry per Locust worker that stopped answering the
master mid-run (``worker``, ``lost_at_epoch``, ``seconds_into_run``, ``samples_kept``). The
verdict and the report both tell it with :func:`describe`. No Locust import here: analysis
reads it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe(entry: Mapping[str, Any]) -> str:
    """One line for one lost worker."""
    kept = int(entry.get("samples_kept") or 0)
    into = float(entry.get("seconds_into_run") or 0.0)
    return (
        f"worker {entry.get('worker')} stopped answering the master {into:.1f} s into the run; "
        f"its {kept:,} samples up to then are kept, and the load it ran after that is missing"
    )


def warnings_of(meta: Mapping[str, Any]) -> list[str]:
    """One warning per worker ``run.json`` says was lost."""
    entries = meta.get("lost_workers") or []
    return [describe(e) for e in entries if isinstance(e, Mapping)]
