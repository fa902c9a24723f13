"""Stress: add 20 users every 30 s until an SLA breaks or errors pass 5%; report the step.

Each step is judged on its own samples when it ends (the SLAs below, and the error limit).
The run stops at the first broken step and names it, with its user count.

    locust -f locustfiles/api.py,scenarios/stress.py --host http://127.0.0.1:8000 --headless
    harness run stress --time-scale 0.2
"""

from harness.shapes import ScenarioShape

STRESS = {
    "start_users": 20,
    "step_users": 20,
    "step_duration": "30s",
    "max_users": 400,
    "error_limit": "5%",
}
SLAS = ["p95<500ms"]


class Stress(ScenarioShape):
    """Step users up by 20 every 30 s, up to 400, until p95 passes 500 ms or errors pass 5%."""
