"""The experiment's grid: pool sizes x client concurrency x driver, checked before anything runs.

The rules of thumb the grid includes and the analysis checks against the measurements:

- ``(2 x cores) + 5``: the starting point capacity planners quote (DESIGN.md);
- HikariCP's "About Pool Sizing" formula, ``connections = (core_count x 2) +
  effective_spindle_count``, with one spindle for an SSD-backed server by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.errors import ConfigError

DRIVERS = ("psycopg", "asyncpg")
DEFAULT_CONCURRENCY = (10, 50, 100, 200)
QUICK_CONCURRENCY = (10, 50)
# The default sizes; the (2 x cores) + 5 value joins them.
BASE_POOL_SIZES = (1, 2, 4, 8, 16, 32, 64)
QUICK_BASE_POOL_SIZES = (1, 4, 16)
# Cell timing: short cells keep the default grid (64 cells) near four minutes on 2 cores;
# a 3 s window still holds thousands of queries per cell, enough for a p99.
DEFAULT_WARMUP_S = 0.5
DEFAULT_DURATION_S = 3.0
QUICK_WARMUP_S = 0.4
QUICK_DURATION_S = 1.5
DEFAULT_ACQUIRE_TIMEOUT_S = 2.0
DEFAULT_WRITE_SHARE = 0.1
# One thread (psycopg) or task (asyncpg) per concurrent client; above this the client, not
# the pool, is what a sweep would measure.
MAX_CONCURRENCY = 2_000
# The experiment's own monitoring connection, besides the pool.
MONITOR_CONNECTIONS = 1


def rule_of_thumb(cores: int) -> int:
    """The ``(2 x cores) + 5`` pool size."""
    return 2 * cores + 5


def hikari_formula(cores: int, spindles: int) -> int:
    """HikariCP's ``(core_count x 2) + effective_spindle_count``."""
    return 2 * cores + spindles


@dataclass(frozen=True)
class ServerLimits:
    """What the server allows: ``max_connections`` and how many are free for the pool."""

    max_connections: int
    reserved: int
    in_use: int

    @property
    def available(self) -> int:
        """Connections a pool may take now, leaving the experiment's monitor one."""
        return self.max_connections - self.reserved - self.in_use - MONITOR_CONNECTIONS


@dataclass(frozen=True)
class Grid:
    """The cells to measure, in the order they run."""

    drivers: tuple[str, ...]
    pool_sizes: tuple[int, ...]
    concurrencies: tuple[int, ...]
    #: Sizes of the default list left out because the server has no room for them.
    dropped: tuple[int, ...] = field(default=())

    @property
    def cells(self) -> int:
        return len(self.drivers) * len(self.pool_sizes) * len(self.concurrencies)


def parse_sizes(text: str, what: str) -> tuple[int, ...]:
    """``"1,2,4"`` as sorted distinct positive ints; a clear error otherwise."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(f"--{what}: {part!r} is not a whole number") from None
        values.append(value)
    if not values:
        raise ConfigError(f"--{what} needs at least one value, e.g. 1,4,16")
    return tuple(sorted(set(values)))


def parse_drivers(text: str) -> tuple[str, ...]:
    """``both``, ``psycopg`` or ``asyncpg`` (comma-separated allowed)."""
    if text.strip() == "both":
        return DRIVERS
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in DRIVERS]
    if unknown or not names:
        raise ConfigError(
            f"--driver {text!r}: choose psycopg, asyncpg or both (psycopg = psycopg_pool on "
            "threads, asyncpg = asyncpg's pool on asyncio)"
        )
    return names


def build_grid(
    limits: ServerLimits,
    cores: int,
    *,
    drivers: tuple[str, ...] = DRIVERS,
    pool_sizes: tuple[int, ...] | None = None,
    concurrencies: tuple[int, ...] | None = None,
    quick: bool = False,
) -> Grid:
    """The grid to run: given sizes are checked against the server, default ones capped by it."""
    conc = concurrencies or (QUICK_CONCURRENCY if quick else DEFAULT_CONCURRENCY)
    for c in conc:
        if c < 1:
            raise ConfigError(f"--concurrency {c}: each value must be at least 1")
        if c > MAX_CONCURRENCY:
            raise ConfigError(
                f"--concurrency {c}: at most {MAX_CONCURRENCY} concurrent clients per run; "
                "beyond that the client process, not the pool, is what gets measured"
            )
    room = limits.available
    if room < 1:
        raise ConfigError(
            f"the server has no free connection: max_connections is {limits.max_connections}, "
            f"{limits.reserved} reserved, {limits.in_use} in use; close some or raise "
            "max_connections"
        )
    if pool_sizes is not None:
        for size in pool_sizes:
            if size < 1:
                raise ConfigError(
                    f"--pool-sizes {size}: a pool needs at least 1 connection "
                    f"(the server's max_connections is {limits.max_connections})"
                )
            if size > room:
                raise ConfigError(
                    f"--pool-sizes {size}: the server's max_connections is "
                    f"{limits.max_connections} ({limits.reserved} reserved, {limits.in_use} in "
                    f"use, 1 for the experiment's monitor), so a pool can have at most {room}; "
                    "use smaller sizes or raise max_connections"
                )
        return Grid(drivers, pool_sizes, conc)
    base = QUICK_BASE_POOL_SIZES if quick else BASE_POOL_SIZES
    wanted = sorted({*base, rule_of_thumb(cores)})
    kept = tuple(s for s in wanted if s <= room)
    dropped = tuple(s for s in wanted if s > room)
    return Grid(drivers, kept, conc, dropped)
