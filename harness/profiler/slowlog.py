"""The reference API's slow-query log: every statement slower than a threshold, one JSON line.

Hooked on SQLAlchemy's ``before/after_cursor_execute`` events of the API's engine, so it sees
exactly what the driver ran. Each line holds the statement as sent (placeholders, never
values), its normalised form (sqlglot: literals folded, whitespace canonical), the
parameters masked, the duration and the endpoint that ran it.

Masking: text and bytes become ``"<text:N>"`` / ``"<bytes:N>"`` (their length only); numbers,
booleans, NULLs and timestamps are kept, because ``harness db recommend-indexes`` re-runs the
statement with them to measure an index, and they are ids, limits and cut-offs, not secrets.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from sqlalchemy import event
from sqlalchemy.engine import Engine

DEFAULT_THRESHOLD_MS = 100.0
LOG_NAME = "slow_queries.jsonl"
# The ASGI scope of the request being served (its route is known once routing is done).
_request_scope: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "harness_request_scope", default=None
)


def mask(value: Any) -> Any:
    """A parameter as the log keeps it (see the module's docstring)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | dtime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<bytes:{len(bytes(value))}>"
    if isinstance(value, str):
        return f"<text:{len(value)}>"
    return f"<{type(value).__name__}>"


def unmask(value: Any) -> Any:
    """A logged parameter back as a value to bind; raises ValueError for a masked one."""
    if isinstance(value, dict) and "$datetime" in value:
        text = str(value["$datetime"])
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return date.fromisoformat(text)
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        raise ValueError(f"parameter masked in the log ({value})")
    return value


@functools.lru_cache(maxsize=4096)
def normalise(statement: str, dialect: str) -> str:
    """One spelling per statement shape: literals become ``?``, whitespace canonical."""
    try:
        tree = sqlglot.parse_one(statement, read=dialect)
    except sqlglot.errors.ParseError:
        return " ".join(statement.split())

    def fold(node: sqlglot.exp.Expression) -> sqlglot.exp.Expression:
        if isinstance(node, sqlglot.exp.Literal):
            return sqlglot.exp.Placeholder()
        return node

    return tree.transform(fold).sql(dialect=dialect)


def endpoint_of(scope: Mapping[str, Any] | None) -> str | None:
    """``"GET /artifacts/{artifact_id}"`` for a request scope (its route template)."""
    if scope is None:
        return None
    route = scope.get("route")
    template = getattr(route, "path", None) or scope.get("path")
    return f"{scope.get('method', '')} {template}".strip()


def endpoint_middleware(app: Any) -> Any:
    """Wrap an ASGI app so statements know the endpoint that ran them."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        token = _request_scope.set(scope)
        try:
            await app(scope, receive, send)
        finally:
            _request_scope.reset(token)

    return wrapped


class SlowQueryLog:
    """Appends statements slower than ``threshold_ms`` to ``path`` (one JSON object a line)."""

    def __init__(self, path: Path, threshold_ms: float, dialect: str) -> None:
        if threshold_ms < 0:
            raise ValueError("the slow-query threshold must be 0 ms or more")
        self.path = path
        self.threshold_s = threshold_ms / 1000.0
        self.dialect = dialect
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: lines from several API worker processes never interleave mid-line.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def attach(self, engine: Engine) -> None:
        """Listen on ``engine`` (an async engine's ``sync_engine``)."""
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(
        self, _conn: Any, _cursor: Any, _stmt: str, _params: Any, ctx: Any, _m: bool
    ) -> None:
        if ctx is not None:
            ctx._harness_started = time.perf_counter()

    def _after(
        self, _conn: Any, _cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        started = getattr(ctx, "_harness_started", None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        if elapsed < self.threshold_s:
            return
        self.write(statement, params, elapsed * 1000.0, many)

    def write(self, statement: str, params: Any, duration_ms: float, many: bool = False) -> None:
        """Append one record."""
        record = {
            "ts": datetime.now(UTC).isoformat(),
            "duration_ms": round(duration_ms, 3),
            "endpoint": endpoint_of(_request_scope.get()),
            "dialect": self.dialect,
            "statement": normalise(statement, self.dialect),
            "sql": statement,
            "params": _masked(params, many),
            "executemany": many,
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode())

    def close(self) -> None:
        os.close(self._fd)


def _masked(params: Any, many: bool) -> Any:
    if many:
        return f"<{len(params)} rows>" if isinstance(params, Sequence) else "<rows>"
    if isinstance(params, Mapping):
        return {str(k): mask(v) for k, v in params.items()}
    if isinstance(params, Sequence) and not isinstance(params, str | bytes):
        return [mask(v) for v in params]
    return mask(params)
