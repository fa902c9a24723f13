import harness.locust_hooks  # noqa: F401  (registers the recorder, scenario options and SLA checks)

# The import above must come first (the hooks expect to be registered before any user class).
__doc__ = """Locust user classes: the reference API's clients and the database's direct users.

Import this package only inside Locust (``locust -f locustfiles/...``): Locust monkey-patches
the process with gevent before it loads a locustfile, and both psycopg's gevent-aware waiting
and this package's locks rely on that having happened first. ``import harness`` alone never
imports locust or gevent.

- :class:`ApiUser`: production-like traffic on the reference API (FastHttpUser).
- :class:`PostgresUser`, :class:`SqliteUser`: the critical queries straight on a database.

Any of them (or your own user class) runs as an open model under a scenario whose stages set
a ``rate``: see :mod:`harness.users.open_model`.

Settings: class attributes a subclass overrides, or the ``HARNESS_*`` variables of
:mod:`harness.users.settings` for one run.
"""

import locust  # noqa: F401  (gevent monkey-patching before psycopg is imported, if not done)

from harness.users.api import REQUEST_NAMES, ApiUser
from harness.users.base import WeightedTasks
from harness.users.database import DatabaseUser, PostgresUser, SqliteUser

__all__ = [
    "REQUEST_NAMES",
    "ApiUser",
    "DatabaseUser",
    "PostgresUser",
    "SqliteUser",
    "WeightedTasks",
]
