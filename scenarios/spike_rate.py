"""Spike (open model): a 20 iterations/s baseline jumps to 200/s within 10 s, holds, recovers.

The rate form of ``spike``: the arrivals keep coming during the spike whatever the target
does, so queueing shows as latency (from each request's intended start) or as dropped
iterations, never as a quieter load.

    locust -f locustfiles/api.py,scenarios/spike_rate.py --host http://127.0.0.1:8000 --headless
    harness run spike_rate --time-scale 0.1
"""

from harness.shapes import ScenarioShape

STAGES = [
    {"name": "baseline", "duration": "2m", "rate": 20},
    {"name": "spike", "duration": "1m", "rate": 200, "ramp": "10s"},
    {"name": "recovery", "duration": "30s", "rate": 20, "ramp": "10s"},
    {"name": "observe", "duration": "2m", "rate": 20},
]
SLAS = ["errors<1%", "p99<1s@baseline", "p99<1s@observe"]


class SpikeRate(ScenarioShape):
    """Baseline 20/s, spike to 200/s within 10 s for a minute, recover, observe."""
