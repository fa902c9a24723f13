"""Arrival schedules: the shape of the plan, exactly (no clocks involved)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.arrivals import RateStage, planned_count, schedule, total_due


def _offsets(stages: list[RateStage], **kw: object) -> np.ndarray:
    return np.array([a.offset for a in schedule(stages, **kw)])  # type: ignore[arg-type]


def test_a_constant_rate_is_evenly_spaced_and_holds_rate_times_duration() -> None:
    stages = [RateStage("steady", 10.0, 40.0)]
    offsets = _offsets(stages)
    assert len(offsets) == 400 == planned_count(stages)["steady"]
    assert np.allclose(np.diff(offsets), 1 / 40)
    assert offsets[0] == pytest.approx(0.5 / 40)  # each arrival in the middle of its slot
    assert {a.stage for a in schedule(stages)} == {"steady"}


def test_processes_split_the_schedule_exactly_and_interleave() -> None:
    stages = [RateStage("a", 3.0, 33.0), RateStage("b", 2.0, 71.0, ramp=1.0)]
    whole = [(a.index, a.offset) for a in schedule(stages)]
    shares = [list(schedule(stages, process=i, processes=3)) for i in range(3)]
    assert sum(len(s) for s in shares) == len(whole)
    assert sorted((a.index, a.offset) for s in shares for a in s) == whole
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1
    # Process i fires arrivals i, i+3, ...: never two processes at the same instant.
    merged = sorted((a.offset, i) for i, s in enumerate(shares) for a in s)
    assert [i for _, i in merged[:6]] == [0, 1, 2, 0, 1, 2]


def test_a_ramp_between_two_rates_follows_the_linear_schedule() -> None:
    stages = [RateStage("low", 2.0, 10.0), RateStage("up", 4.0, 50.0, ramp=4.0)]
    arrivals = list(schedule(stages))
    ramp = np.array([a.offset for a in arrivals if a.stage == "up"])
    # The area under a rate going 10 -> 50 over 4 s is 120 iterations.
    assert len(ramp) == 120 == planned_count(stages)["up"]
    gaps = np.diff(ramp)
    assert (np.diff(gaps) < 1e-12).all()  # arrivals come closer and closer together
    # Per second of the ramp: 15, 25, 35, 45 iterations (the mean rate of each second).
    per_second = np.histogram(ramp, bins=[2, 3, 4, 5, 6])[0]
    assert per_second.tolist() == [15, 25, 35, 45]
    assert total_due(stages) == pytest.approx(140.0)


def test_poisson_arrivals_are_seeded_and_average_the_rate() -> None:
    stages = [RateStage("steady", 100.0, 50.0)]
    first = _offsets(stages, mode="poisson", seed=7)
    assert np.array_equal(first, _offsets(stages, mode="poisson", seed=7))
    assert not np.array_equal(first, _offsets(stages, mode="poisson", seed=8))
    assert abs(len(first) - 5000) < 4 * np.sqrt(5000)  # Poisson count, seeded
    gaps = np.diff(first)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.1)  # exponential gaps
    split = [_offsets(stages, mode="poisson", seed=7, process=i, processes=2) for i in (0, 1)]
    assert np.array_equal(np.sort(np.concatenate(split)), first)


def test_a_bad_mode_or_process_is_refused() -> None:
    stages = [RateStage("s", 1.0, 1.0)]
    with pytest.raises(ValueError, match="arrivals must be one of"):
        list(schedule(stages, mode="bursty"))
    with pytest.raises(ValueError, match="does not exist"):
        list(schedule(stages, process=2, processes=2))
