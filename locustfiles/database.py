"""The workload's critical queries straight against a database: pick the user for the backend.

    locust -f locustfiles/database.py PostgresUser --host postgresql://user:pw@127.0.0.1/db \\
        --headless -u 20 -r 20 -t 1m
    locust -f locustfiles/database.py SqliteUser --host .harness/datasets/signals.db \\
        --headless -u 20 -r 20 -t 1m

Always name the class: without one Locust runs both, and the one that does not match
``--host`` stops the run with an error. The target may also come from ``HARNESS_PG_URL`` or
``HARNESS_SQLITE_PATH`` when ``--host`` is not given. Each request is one query
(``top_discoveries``, ``topic_timeline``, ``citations_out``, ``citations_in``,
``recent_discoveries``, ``entity_profile``; type ``PG`` or ``SQLITE``). Tune with
``HARNESS_DB_WEIGHTS="top_discoveries=5,entity_profile=1"``, ``HARNESS_PG_POOL_SIZE``,
``HARNESS_SQLITE_THREADS``, ``HARNESS_THINK_TIME``, ``HARNESS_ZIPF_EXPONENT``, ``HARNESS_SEED``.
"""

from harness.users import PostgresUser, SqliteUser

__all__ = ["PostgresUser", "SqliteUser"]
