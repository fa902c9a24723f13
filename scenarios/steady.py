"""Steady: 100 users for 10 minutes, the load a ranking service carries on a normal day.

locust -f locustfiles/api.py,scenarios/steady.py --host http://127.0.0.1:8000 --headless
harness run steady --quick
"""

from harness.shapes import ScenarioShape

STAGES = [
    {"name": "ramp", "duration": "30s", "users": 100, "ramp": "30s"},
    {"name": "steady", "duration": "10m", "users": 100},
]
SLAS = ["errors<1%"]


class Steady(ScenarioShape):
    """Ramp to 100 users in 30 s, hold them for 10 minutes."""
