"""Scenario files: the shipped ones, scaling, and a clear error for every typo."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, find_scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_shipped_scenarios_match_the_workload_they_name() -> None:
    steady = load_scenario(SCENARIOS / "steady.py")
    assert steady.stages[-1].users == 100 and steady.stages[-1].duration == 600
    spike = load_scenario(SCENARIOS / "spike.py")
    by_name = {s.name: s for s in spike.stages}
    assert by_name["baseline"].users == 20 and by_name["spike"].users == 200
    # from 20 to 200 users within the spike's one minute
    assert (200 - 20) / by_name["spike"].spawn_rate <= 60
    assert {"recovery", "observe"} <= set(by_name)
    endurance = load_scenario(SCENARIOS / "endurance.py")
    assert endurance.stages[-1].users == 50 and endurance.stages[-1].duration == 3600
    stress = load_scenario(SCENARIOS / "stress.py")
    assert stress.stress is not None
    assert [s.users for s in stress.stages[:3]] == [20, 40, 60]
    assert stress.stages[-1].users == 400
    assert all(s.name.startswith("step-") for s in stress.stages)


def test_scaling_shrinks_time_and_users() -> None:
    spike = load_scenario(SCENARIOS / "spike.py").scaled(0.1, 0.5)
    assert spike.duration == pytest.approx(48.0)
    assert max(s.users for s in spike.stages) == 100
    assert spike.stage_at(0.0) is not None and spike.stage_at(0.0).name == "baseline"  # type: ignore[union-attr]
    assert spike.stage_at(48.0) is None
    names = [name for name, _, _ in spike.timeline()]
    assert names == ["baseline", "spike", "hold", "recovery", "observe"]


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.py"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            'STAGES = [{"name": "a", "duration": "1m", "userz": 5}]',
            "stage 1 ('a'): unknown key 'userz'; valid keys: duration, end, name, ramp, "
            "spawn_rate, users",
        ),
        (
            'STAGES = [{"name": "a", "duration": "1m", "users": -5}]',
            "stage 1 ('a'): 'users' must be a whole number >= 0",
        ),
        (
            'STAGES = [{"name": "a", "end": "2m", "users": 5},'
            ' {"name": "b", "end": "1m", "users": 5}]',
            "stage 2 ('b'): stages out of order",
        ),
        (
            'STAGES = [{"name": "a", "duration": "1m", "users": 5},'
            ' {"name": "a", "duration": "1m", "users": 5}]',
            "name 'a' is used twice",
        ),
        (
            'STAGES = [{"name": "a", "duration": "10s", "users": 5, "ramp": "1m"}]',
            "'ramp' (60 s) is longer than the stage (10 s)",
        ),
        ('STAGES = [{"name": "a", "duration": "soon", "users": 5}]', "cannot read duration 'soon'"),
        ('STAGES = [{"name": "a", "users": 5}]', "exactly one of 'duration'"),
        ("STAGES = []", "non-empty list"),
        ('SLAS = ["p95<1s"]', "define STAGES"),
        (
            'STAGES = [{"name": "a", "duration": 60, "users": 5}]\nSLAS = ["p95 < soon"]',
            "cannot read the value",
        ),
        (
            'STAGES = [{"name": "a", "duration": 6 * 10, "users": 5}]',
            "STAGES must be written as a literal",
        ),
        (
            'STRESS = {"start_users": 10, "step_users": 5}',
            "STRESS: missing max_users, step_duration",
        ),
        ("STAGES = [", "not valid Python"),
    ],
)
def test_typos_name_the_file_the_stage_and_the_fix(tmp_path: Path, body: str, says: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message
    assert says in message


def test_unknown_scenario_name_lists_the_known_ones() -> None:
    known = "known: constant_rate, endurance, ramping_rate, spike, spike_rate, steady, stress"
    with pytest.raises(ScenarioError, match=known):
        find_scenario("spkie", SCENARIOS)


def test_a_short_stage_without_ramp_is_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, 'STAGES = [{"name": "a", "duration": 3, "users": 9}]')
    [stage] = load_scenario(path).stages
    assert stage.spawn_rate == 3.0  # reaches its users within its own 3 s
