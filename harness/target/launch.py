"""What ``harness serve`` does: pick the database and cache, announce, serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import config
from harness.target.settings import ApiSettings
from harness.urls import mask_url

# Small enough to generate in seconds on a fresh machine, large enough for skewed traffic.
DEFAULT_ARTIFACTS = 20_000


def default_dataset(console: Any = None) -> Path:
    """The dataset ``harness serve`` uses when given no ``--db``, generated on first use."""
    from harness.dataset import DatasetSpec, write_with_progress

    spec = DatasetSpec(artifacts=DEFAULT_ARTIFACTS)
    # One per day: the data's "now" (its anchor) must match the API's clock, or the
    # "last 7 days" endpoints would find nothing a week later.
    folder = config.home() / "datasets"
    path = folder / f"reference-{DEFAULT_ARTIFACTS}-{spec.anchor:%Y%m%d}.db"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"reference-{DEFAULT_ARTIFACTS}-*.db"):
            stale.unlink(missing_ok=True)
        if console is not None:
            console.print(f"generating the reference dataset at {path}")
        write_with_progress(path, spec, console=console)
    return path


def launch(
    *,
    db: str | None,
    redis: str | None,
    no_redis: bool,
    host: str,
    port: int,
    workers: int,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float,
    admin_token: str | None,
    slow_query_log: Path | None = None,
    slow_query_ms: float = 100.0,
    console: Any = None,
) -> None:
    """Resolve the database, Redis and token, then serve until interrupted."""
    from harness.services import redis_url
    from harness.target.server import serve

    database = db or str(default_dataset(console))
    cache_url = None if no_redis else redis_url(redis)
    settings = ApiSettings(
        db=database,
        redis_url=cache_url,
        admin_token=config.setting("admin_token", admin_token),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        slow_query_log=str(slow_query_log.resolve()) if slow_query_log else None,
        slow_query_ms=slow_query_ms,
    )
    if console is not None:
        console.print(
            f"reference API on http://{host}:{port}  db={mask_url(database)}  "
            f"cache={'redis ' + mask_url(cache_url) if cache_url else 'in-process'}  "
            f"workers={workers}  (Ctrl-C stops)"
        )
    serve(settings, host=host, port=port, workers=workers)
