"""Load testing and SQLite-to-PostgreSQL migration harness.

The names below are the public surface; everything else is an implementation detail.
They load lazily: ``import harness`` pulls in neither Locust (which monkey-patches the
process with gevent) nor pandas, until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.errors import (
    ConfigError,
    DatabaseError,
    DatasetError,
    HarnessError,
    ServiceError,
)

__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "ApiUser": "harness.users",
    "PostgresUser": "harness.users",
    "RunLoadError": "harness.analysis.load",
    "ScenarioShape": "harness.shapes",
    "SqliteUser": "harness.users",
    "compare_runs": "harness.analysis.compare",
    "load_run": "harness.analysis.load",
    "read_samples": "harness.recorder",
    "scale_report": "harness.analysis.scale",
    "write_dataset": "harness.dataset",
    "write_report": "harness.analysis.report",
}

__all__ = [
    "ApiUser",
    "ConfigError",
    "DatabaseError",
    "DatasetError",
    "HarnessError",
    "PostgresUser",
    "RunLoadError",
    "ScenarioShape",
    "ServiceError",
    "SqliteUser",
    "__version__",
    "compare_runs",
    "load_run",
    "read_samples",
    "scale_report",
    "write_dataset",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
