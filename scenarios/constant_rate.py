"""Constant rate: 50 iterations per second for 5 minutes, however slowly the target answers.

An open-model run: each iteration starts when the schedule says, not when the previous
response came back, so a stall shows in the latencies instead of hiding in them. Latency is
timed from each request's intended start; dropped iterations (every in-flight slot busy)
are counted and fail the verdict.

    locust -f locustfiles/api.py,scenarios/constant_rate.py --host http://127.0.0.1:8000 --headless
    harness run constant_rate --rate 100 --duration 1m --max-inflight 400
"""

from harness.shapes import ScenarioShape

STAGES = [
    {"name": "steady", "duration": "5m", "rate": 50},
]
SLAS = ["errors<1%"]


class ConstantRate(ScenarioShape):
    """50 iterations/s for 5 minutes, evenly spaced."""
