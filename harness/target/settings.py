"""Settings of one reference API process, from arguments or ``HARNESS_API_*`` variables.

``harness serve --workers N`` starts N processes that each build their settings from the
environment, so every setting has a variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import datetime

from harness.errors import ConfigError

# Pool defaults follow SQLAlchemy's own (5 + 10 overflow, 30 s timeout); `harness pools`
# measures what they should be.
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 10
DEFAULT_POOL_TIMEOUT = 30.0


def _default_ttls() -> dict[str, float]:
    # Seconds. Rankings move slowly; an entity profile changes only on ingestion.
    return {"discoveries": 30.0, "topics_trending": 60.0, "entity": 300.0}


@dataclass(frozen=True)
class ApiSettings:
    """Everything a reference API process needs to start."""

    db: str
    redis_url: str | None = None
    admin_token: str | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    max_overflow: int = DEFAULT_MAX_OVERFLOW
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    cache_ttls: dict[str, float] = field(default_factory=_default_ttls)
    fallback_cache_size: int = 10_000
    # Fixed "now" for reproducible answers (tests comparing backends); None = the wall clock.
    now: datetime | None = None
    # Statements slower than ``slow_query_ms`` go to this JSONL file (None: no log).
    slow_query_log: str | None = None
    slow_query_ms: float = 100.0

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ConfigError(f"--pool-size must be at least 1 (got {self.pool_size})")
        if self.max_overflow < 0:
            raise ConfigError(f"--max-overflow must be 0 or more (got {self.max_overflow})")
        if self.pool_timeout <= 0:
            raise ConfigError(f"--pool-timeout must be positive (got {self.pool_timeout})")
        if self.slow_query_ms < 0:
            raise ConfigError(f"--slow-query-ms must be 0 or more (got {self.slow_query_ms})")

    def to_env(self) -> dict[str, str]:
        """Variables from which :meth:`from_env` rebuilds these settings in a worker."""
        env = {
            "HARNESS_API_DB": self.db,
            "HARNESS_API_POOL_SIZE": str(self.pool_size),
            "HARNESS_API_MAX_OVERFLOW": str(self.max_overflow),
            "HARNESS_API_POOL_TIMEOUT": str(self.pool_timeout),
        }
        if self.redis_url:
            env["HARNESS_REDIS_URL"] = self.redis_url
        if self.admin_token:
            env["HARNESS_ADMIN_TOKEN"] = self.admin_token
        if self.now is not None:
            env["HARNESS_API_NOW"] = self.now.isoformat()
        if self.slow_query_log:
            env["HARNESS_API_SLOW_LOG"] = self.slow_query_log
            env["HARNESS_API_SLOW_MS"] = str(self.slow_query_ms)
        return env

    @classmethod
    def from_env(cls) -> ApiSettings:
        """Build settings from the variables :meth:`to_env` writes."""
        db = os.environ.get("HARNESS_API_DB")
        if not db:
            raise ConfigError("HARNESS_API_DB is not set; start the API with `harness serve --db`")
        now = os.environ.get("HARNESS_API_NOW")
        try:
            return cls(
                db=db,
                redis_url=os.environ.get("HARNESS_REDIS_URL") or None,
                admin_token=os.environ.get("HARNESS_ADMIN_TOKEN") or None,
                pool_size=int(os.environ.get("HARNESS_API_POOL_SIZE", DEFAULT_POOL_SIZE)),
                max_overflow=int(os.environ.get("HARNESS_API_MAX_OVERFLOW", DEFAULT_MAX_OVERFLOW)),
                pool_timeout=float(
                    os.environ.get("HARNESS_API_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT)
                ),
                now=datetime.fromisoformat(now) if now else None,
                slow_query_log=os.environ.get("HARNESS_API_SLOW_LOG") or None,
                slow_query_ms=float(os.environ.get("HARNESS_API_SLOW_MS", "100")),
            )
        except ValueError as exc:
            raise ConfigError(f"bad HARNESS_API_* setting: {exc}") from None


SETTING_NAMES = tuple(f.name for f in fields(ApiSettings))
