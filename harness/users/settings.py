"""Load-user settings from environment variables, parsed once with one-line errors.

Every knob a user class has as a class attribute can also be set for a whole run from the
environment, so a scenario or the ``harness`` CLI can change the mix without a new locustfile:

=========================  ==================================================================
``HARNESS_API_WEIGHTS``    ``ApiUser`` task mix, ``name=weight,...``; tasks not named get 0
``HARNESS_DB_WEIGHTS``     the database users' query mix, same form
``HARNESS_THINK_TIME``     seconds between tasks: ``"0.5-1.5"`` (uniform), ``"1"`` or ``"0"``
``HARNESS_ZIPF_EXPONENT``  skew of id popularity (0 uniform, 1 classic Zipf)
``HARNESS_SEED``           seeds every user's draws (per user index) and the hot-id set
``HARNESS_PG_URL``         PostgreSQL URL for ``PostgresUser`` when ``--host`` is not given
``HARNESS_PG_POOL_SIZE``   connections in the per-process pool of ``PostgresUser``
``HARNESS_SQLITE_PATH``    SQLite file for ``SqliteUser`` when ``--host`` is not given
``HARNESS_SQLITE_THREADS`` native threads running ``SqliteUser`` queries, per process
=========================  ==================================================================

This module imports neither locust nor gevent; the rest of :mod:`harness.users` does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping

from harness.errors import ConfigError

API_WEIGHTS_ENV = "HARNESS_API_WEIGHTS"
DB_WEIGHTS_ENV = "HARNESS_DB_WEIGHTS"
THINK_TIME_ENV = "HARNESS_THINK_TIME"
ZIPF_EXPONENT_ENV = "HARNESS_ZIPF_EXPONENT"
SEED_ENV = "HARNESS_SEED"
PG_URL_ENV = "HARNESS_PG_URL"
PG_POOL_SIZE_ENV = "HARNESS_PG_POOL_SIZE"
SQLITE_PATH_ENV = "HARNESS_SQLITE_PATH"
SQLITE_THREADS_ENV = "HARNESS_SQLITE_THREADS"


def parse_weights(text: str, valid: Iterable[str], *, source: str) -> dict[str, int]:
    """Parse ``"name=weight,name=weight"`` into a task mix over the ``valid`` task names.

    The text gives the whole mix: a task it does not name gets weight 0, so
    ``"health=1"`` means health checks only.
    """
    names = sorted(valid)
    weights: dict[str, int] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"{source}: {item!r} is not name=weight (e.g. discoveries=20)")
        if name not in names:
            raise ConfigError(
                f"{source}: unknown task {name!r}; valid task names: {', '.join(names)}"
            )
        if name in weights:
            raise ConfigError(f"{source}: task {name!r} is given twice")
        weights[name] = _non_negative_int(value.strip(), f"{source}: weight of {name!r}")
    if not any(weights.values()):
        raise ConfigError(f"{source}: {text!r} gives no task a positive weight")
    return weights


def check_weights(weights: Mapping[str, int], valid: Iterable[str], *, source: str) -> None:
    """Raise :class:`ConfigError` when a mix names a task that does not exist or is negative."""
    names = sorted(valid)
    for name, weight in weights.items():
        if name not in names:
            raise ConfigError(
                f"{source}: unknown task {name!r}; valid task names: {', '.join(names)}"
            )
        if not isinstance(weight, int) or weight < 0:
            raise ConfigError(f"{source}: weight of {name!r} must be an integer >= 0")


def parse_think_time(text: str, *, source: str = THINK_TIME_ENV) -> tuple[float, float]:
    """Parse ``"0.5-1.5"`` (uniform between), ``"1"`` (constant) or ``"0"`` (none)."""
    low_text, sep, high_text = text.strip().partition("-")
    low = _non_negative_float(low_text, source)
    high = _non_negative_float(high_text, source) if sep else low
    if high < low:
        raise ConfigError(f"{source}: {text!r} has its upper bound below its lower one")
    return (low, high)


def check_think_time(value: tuple[float, float], *, source: str) -> tuple[float, float]:
    """Validate a ``(low, high)`` think time given in code."""
    low, high = (float(v) for v in value)
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
        raise ConfigError(f"{source}: think time must be (low, high) with 0 <= low <= high")
    return (low, high)


def zipf_exponent(default: float) -> float:
    """The Zipf exponent from ``HARNESS_ZIPF_EXPONENT``, else ``default``."""
    text = os.environ.get(ZIPF_EXPONENT_ENV)
    if not text:
        return check_exponent(default, source="zipf_exponent")
    return check_exponent(_non_negative_float(text, ZIPF_EXPONENT_ENV), source=ZIPF_EXPONENT_ENV)


def check_exponent(value: float, *, source: str) -> float:
    """Validate a Zipf exponent (finite, >= 0)."""
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{source}: Zipf exponent must be a number >= 0 (got {value})")
    return float(value)


def seed() -> int | None:
    """The run's seed from ``HARNESS_SEED``, or None for fresh randomness."""
    text = os.environ.get(SEED_ENV)
    if not text:
        return None
    return _non_negative_int(text.strip(), SEED_ENV)


def env_positive_int(name: str, default: int) -> int:
    """A positive integer from variable ``name``, else ``default``."""
    text = os.environ.get(name)
    value = _non_negative_int(text.strip(), name) if text else default
    if value < 1:
        raise ConfigError(f"{name} must be at least 1 (got {value})")
    return value


def _non_negative_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a whole number") from None
    if value < 0:
        raise ConfigError(f"{what}: {text!r} is negative")
    return value


def _non_negative_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what}: {text!r} must be a finite number >= 0")
    return value
