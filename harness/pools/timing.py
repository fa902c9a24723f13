"""How long each cell runs and waits: shared by both drivers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.pools.cell import Activity, CellSamples


@dataclass(frozen=True)
class CellTiming:
    """Warm-up and measured window of every cell, and the pool's acquire timeout."""

    warmup_s: float
    duration_s: float
    acquire_timeout_s: float
    seed: int


@dataclass
class CellRun:
    """What one cell measured, before its figures are computed."""

    driver: str
    pool_size: int
    concurrency: int
    samples: CellSamples
    activity: Activity
    window_s: float
    client_cpu_s: float


#: Called with each cell as soon as it is measured (saves it; may raise KeyboardInterrupt).
OnCell = Callable[[CellRun], None]
