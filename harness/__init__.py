"""Load testing and SQLite-to-PostgreSQL migration harness.

The names below are the public surface; everything else is an implementation detail.
"""

from harness.errors import (
    ConfigError,
    DatabaseError,
    DatasetError,
    HarnessError,
    ServiceError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DatabaseError",
    "DatasetError",
    "HarnessError",
    "ServiceError",
    "__version__",
]
