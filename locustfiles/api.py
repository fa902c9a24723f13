"""Production-like traffic on the reference API.

    locust -f locustfiles/api.py --host http://127.0.0.1:8000 --headless -u 50 -r 10 -t 1m

The mix, think time and id skew come from :class:`harness.users.ApiUser`; change them for a
run with ``HARNESS_API_WEIGHTS="discoveries=20,health=1"`` (tasks not named get 0),
``HARNESS_THINK_TIME="0.5-1.5"`` (or ``0``), ``HARNESS_ZIPF_EXPONENT=1.0``, ``HARNESS_SEED=7``,
or subclass ``ApiUser`` in a file of your own.
"""

from harness.users import ApiUser

__all__ = ["ApiUser"]
