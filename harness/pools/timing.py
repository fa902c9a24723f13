"""How long each cell runs and waits: shared by both drivers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.pools.cell import Activity, CellSamples

# Filling a pool of 64 connections with SCRAM authentication takes seconds on a busy server.
FILL_TIMEOUT_S = 60.0
# A client stuck past its acquire timeout plus this is reported rather than waited for.
JOIN_GRACE_S = 30.0


def error_line(exc: BaseException) -> str:
    """``Type: first line of the message``: what a cell's error examples show."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def cell_progress(console: Console) -> Progress:
    """The bar across a sweep's cells (started by the caller)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


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
