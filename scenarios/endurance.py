"""Endurance (soak): 50 users for 60 minutes, to find leaks, growing queues and slow drift.

locust -f locustfiles/api.py,scenarios/endurance.py --host http://127.0.0.1:8000 --headless
harness run endurance --time-scale 0.05
"""

from harness.shapes import ScenarioShape

STAGES = [
    {"name": "ramp", "duration": "1m", "users": 50, "ramp": "1m"},
    {"name": "soak", "duration": "60m", "users": 50},
]
SLAS = ["errors<0.5%"]


class Endurance(ScenarioShape):
    """Ramp to 50 users in a minute, hold them for an hour."""
