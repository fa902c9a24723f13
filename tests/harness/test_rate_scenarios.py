"""Rate (open-model) scenarios: reading them, bad input, --rate/--duration/--time-scale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.scenario import (
    LATENCY_GUESS_S,
    ScenarioError,
    build_scenario,
    check_max_inflight,
    load_scenario,
)

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"


def _build(stages: list[dict[str, Any]], **kw: Any) -> Any:
    return build_scenario("s", Path("s.py"), stages, **kw)


@pytest.mark.parametrize("name", ["constant_rate", "ramping_rate", "spike_rate"])
def test_the_shipped_rate_scenarios_are_open_model(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.py")
    assert scenario.open_model
    assert all(s.rate is not None and s.rate > 0 for s in scenario.stages)
    assert scenario.inflight_bound() >= scenario.peak_rate


def test_spike_rate_jumps_and_recovers() -> None:
    stages = load_scenario(SCENARIOS / "spike_rate.py").stages
    rates = [s.rate or 0.0 for s in stages]
    assert rates[0] == rates[-1] and max(rates) == 10 * rates[0]


@pytest.mark.parametrize(
    ("stages", "says"),
    [
        (
            [{"name": "go", "duration": 5, "rate": 0}],
            "stage 1 ('go') 'rate': 'rate' must be a positive number",
        ),
        (
            [{"name": "go", "duration": 5, "rate": -3}],
            "must be a positive number of iterations per second",
        ),
        (
            [{"name": "up", "rate": 100, "ramp": "30s"}],
            "stage 1 ('up'): a ramp needs the stage's 'duration'",
        ),
        (
            [{"name": "up", "duration": "1m", "rate": 100, "ramp": "0s"}],
            "stage 1 ('up') 'ramp' (a ramp needs a positive duration)",
        ),
        (
            [
                {"name": "open", "duration": 5, "rate": 10},
                {"name": "closed", "duration": 5, "users": 10},
            ],
            "stage 2 ('closed'): sets 'users' but stage 1 sets 'rate'",
        ),
        (
            [{"name": "both", "duration": 5, "rate": 10, "users": 3}],
            "stage 1 ('both'): gives both 'rate' and 'users'",
        ),
        (
            [{"name": "x", "duration": 5, "rate": 10, "spawn_rate": 3}],
            "unknown key 'spawn_rate' in a rate stage",
        ),
        ([{"name": "x", "duration": 5, "rate": "fast"}], "cannot read rate 'fast'"),
    ],
)
def test_bad_rate_stages_name_the_stage_and_the_fix(
    stages: list[dict[str, Any]], says: str
) -> None:
    with pytest.raises(ScenarioError, match=None) as err:
        _build(stages)
    assert says in str(err.value)
    assert str(err.value).startswith("s.py: ")


def test_rates_read_per_second_or_per_minute() -> None:
    scenario = _build(
        [
            {"name": "a", "duration": 60, "rate": "600/m"},
            {"name": "b", "duration": 60, "rate": "25/s", "ramp": "10s"},
        ]
    )
    assert [s.rate for s in scenario.stages] == [10.0, 25.0]
    assert scenario.stages[1].ramp == 10.0


def test_max_inflight_below_one_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"--max-inflight must be a whole number >= 1"):
        check_max_inflight(0)
    with pytest.raises(ScenarioError, match="MAX_INFLIGHT"):
        _build([{"name": "a", "duration": 5, "rate": 5}], max_inflight=0)
    scenario = _build([{"name": "a", "duration": 5, "rate": 5}])
    assert scenario.inflight_bound() == max(10, round(5 * LATENCY_GUESS_S))
    assert scenario.inflight_bound(3) == 3


def test_rate_and_duration_override_and_time_scale_still_works() -> None:
    scenario = load_scenario(SCENARIOS / "spike_rate.py")
    faster = scenario.overridden(rate=50.0, duration=66.0)
    assert faster.peak_rate == pytest.approx(50.0)
    assert faster.stages[0].rate == pytest.approx(5.0)  # the spike's 10x shape is kept
    assert faster.duration == pytest.approx(66.0)
    quick = scenario.scaled(0.1, 0.5)
    assert quick.duration == pytest.approx(scenario.duration * 0.1)
    assert quick.stages[1].ramp == pytest.approx(1.0)
    assert quick.peak_rate == pytest.approx(100.0)  # --users-scale scales the load: the rate
    with pytest.raises(ScenarioError, match="--rate must be a positive number"):
        scenario.overridden(rate=0.0)
    with pytest.raises(ScenarioError, match="--rate needs an open-model scenario"):
        load_scenario(SCENARIOS / "steady.py").overridden(rate=10.0)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["constant_rate", "--rate", "0"], "--rate must be a positive number"),
        (["constant_rate", "--max-inflight", "0"], "--max-inflight must be a whole number >= 1"),
        (["steady", "--rate", "100"], "--rate needs an open-model scenario"),
        (["constant_rate", "--arrivals", "bursty"], "--arrivals must be one of even, poisson"),
        (["constant_rate", "--duration", "soon"], "cannot read duration 'soon'"),
    ],
)
def test_harness_run_refuses_bad_open_model_options_before_any_load(
    args: list[str], says: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", *args, "--target", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()
