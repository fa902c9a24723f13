"""Spike: a 20-user baseline jumps to 200 users within one minute, holds, then recovers.

The recovery and observe stages show whether latency returns to the baseline's after the
spike, or stays high (queues, pool exhaustion, a cold cache).

    locust -f locustfiles/api.py,scenarios/spike.py --host http://127.0.0.1:8000 --headless
    harness run spike --time-scale 0.1
"""

from harness.shapes import ScenarioShape

STAGES = [
    {"name": "baseline", "duration": "2m", "users": 20, "ramp": "10s"},
    {"name": "spike", "duration": "1m", "users": 200, "ramp": "1m"},
    {"name": "hold", "duration": "2m", "users": 200},
    {"name": "recovery", "duration": "1m", "users": 20, "ramp": "10s"},
    {"name": "observe", "duration": "2m", "users": 20},
]
SLAS = ["errors<1%", "p99<1s@baseline", "p99<1s@observe"]


class Spike(ScenarioShape):
    """Baseline 20 users, spike to 200 within a minute, hold 2 minutes, recover, observe."""
