"""Ramping rate: from 10 to 200 iterations per second over 5 minutes, then hold.

Where latency bends as arrivals climb is the capacity of the target, measured without the
closed model's feedback (users that wait cannot add load). Arrivals are Poisson, as
independent users' are; set HARNESS_SEED to repeat the exact arrival times.

    locust -f locustfiles/api.py,scenarios/ramping_rate.py --host http://127.0.0.1:8000 --headless
    harness run ramping_rate --time-scale 0.2
"""

from harness.shapes import ScenarioShape

ARRIVALS = "poisson"
STAGES = [
    {"name": "warm", "duration": "30s", "rate": 10},
    {"name": "ramp", "duration": "5m", "rate": 200, "ramp": "5m"},
    {"name": "hold", "duration": "1m", "rate": 200},
]
SLAS = ["errors<1%", "p99<1s@warm"]


class RampingRate(ScenarioShape):
    """10/s warm-up, linear ramp to 200/s over 5 minutes, hold a minute."""
