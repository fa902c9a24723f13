"""Arrival schedules for open-model runs: when each iteration is meant to start.

A rate plan is a list of stages, each holding a rate (iterations per second) that is either
constant or ramps linearly from the previous stage's rate over the stage's first ``ramp``
seconds. Its cumulative count ``L(t)`` (iterations due by ``t`` seconds into the run) is
piecewise quadratic, so the ``k``-th arrival is found by inverting ``L`` exactly:

* **even** arrivals sit in the middle of their slots: ``L(t_k) = k + 1/2``, so a constant
  rate ``r`` gives ``t_k = (k + 1/2) / r`` and a stage of ``r * d`` whole iterations holds
  exactly that many;
* **poisson** arrivals come from a seeded unit-rate Poisson process mapped through ``L``
  (time rescaling): ``L(t_k) = E_1 + ... + E_k`` with ``E_i`` exponential draws, which gives
  an inhomogeneous Poisson process with rate ``r(t)``. The same seed gives the same times.

Several processes share one schedule without overlap or gaps: process ``i`` of ``n`` takes
arrivals ``i, i + n, i + 2n, ...`` of the one global sequence, so the processes' rates add
up to the target exactly and their arrivals interleave instead of firing together.

Nothing here imports Locust or gevent; the executor (:mod:`harness.users.open_model`) sleeps
until each arrival, and the analysis counts the planned iterations with :func:`planned_count`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

ARRIVAL_MODES = ("even", "poisson")
# Exponential draws are made this many at a time (one numpy call instead of one per arrival).
_POISSON_CHUNK = 4096


@dataclass(frozen=True)
class RateSegment:
    """A span of the plan with a linear rate: ``start_rate`` at ``start`` to ``end_rate``."""

    stage: str
    start: float  # seconds since the run's origin
    duration: float
    start_rate: float
    end_rate: float
    due_before: float  # iterations due before this segment starts: L(start)

    @property
    def count(self) -> float:
        """Iterations due within the segment (the area under its rate)."""
        return (self.start_rate + self.end_rate) / 2.0 * self.duration

    def time_of(self, due: float) -> float:
        """The time at which ``L`` reaches ``due`` (which lies within this segment)."""
        c = due - self.due_before
        slope = (self.end_rate - self.start_rate) / self.duration  # rate change per second
        # Solve start_rate * x + slope / 2 * x^2 = c; this form of the root is stable for any
        # slope, including 0 and a ramp that starts at rate 0.
        root = math.sqrt(max(self.start_rate**2 + 2.0 * slope * c, 0.0))
        denominator = self.start_rate + root
        x = 2.0 * c / denominator if denominator > 0 else 0.0
        return self.start + min(max(x, 0.0), self.duration)


@dataclass(frozen=True)
class RateStage:
    """One named stage of a rate plan (see :class:`harness.scenario.Stage`)."""

    name: str
    duration: float
    rate: float
    ramp: float = 0.0  # seconds from the previous stage's rate to ``rate``


def segments(stages: Sequence[RateStage]) -> list[RateSegment]:
    """The plan as linear-rate segments (a stage with a ramp gives two)."""
    out: list[RateSegment] = []
    t, due, previous = 0.0, 0.0, 0.0
    for stage in stages:
        parts: list[tuple[float, float, float]] = []
        if stage.ramp > 0:
            parts.append((stage.ramp, previous, stage.rate))
        if stage.duration > stage.ramp:
            parts.append((stage.duration - stage.ramp, stage.rate, stage.rate))
        for length, r0, r1 in parts:
            segment = RateSegment(stage.name, t, length, r0, r1, due)
            out.append(segment)
            t += length
            due += segment.count
        previous = stage.rate
    return out


def total_due(stages: Sequence[RateStage]) -> float:
    """``L`` at the end of the plan: iterations due over the whole run."""
    return sum(s.count for s in segments(stages))


def planned_count(stages: Sequence[RateStage], mode: str = "even") -> dict[str, float]:
    """Iterations each stage is meant to start: exact whole numbers for even arrivals, the
    expected number for Poisson ones."""
    out: dict[str, float] = {s.name: 0.0 for s in stages}
    for seg in segments(stages):
        if mode == "even":
            # Arrivals k with due_before <= k + 1/2 < due_before + count.
            lo = math.ceil(seg.due_before - 0.5 - 1e-9)
            hi = math.ceil(seg.due_before + seg.count - 0.5 - 1e-9)
            out[seg.stage] += max(hi - lo, 0)
        else:
            out[seg.stage] += seg.count
    return out


@dataclass(frozen=True)
class Arrival:
    """One iteration's place in the schedule."""

    index: int  # its number in the global sequence, from 0
    offset: float  # seconds since the run's origin
    stage: str


def _even_dues(first: int, step: int) -> Iterator[tuple[int, float]]:
    k = first
    while True:
        yield k, k + 0.5
        k += step


def _poisson_dues(first: int, step: int, seed: int) -> Iterator[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    k, due = 0, 0.0
    while True:
        for gap in rng.exponential(1.0, _POISSON_CHUNK).tolist():
            due += gap
            if k >= first and (k - first) % step == 0:
                yield k, due
            k += 1


def schedule(
    stages: Sequence[RateStage],
    *,
    mode: str = "even",
    process: int = 0,
    processes: int = 1,
    seed: int = 0,
) -> Iterator[Arrival]:
    """This process's share of the plan's arrivals, in time order."""
    if mode not in ARRIVAL_MODES:
        raise ValueError(f"arrivals must be one of {', '.join(ARRIVAL_MODES)}, not {mode!r}")
    if processes < 1 or not 0 <= process < processes:
        raise ValueError(f"process {process} of {processes} does not exist")
    segs = segments(stages)
    if not segs:
        return
    end = segs[-1].due_before + segs[-1].count
    dues = (
        _even_dues(process, processes)
        if mode == "even"
        else _poisson_dues(process, processes, seed)
    )
    i = 0
    for k, due in dues:
        if due >= end:
            return
        while due >= segs[i].due_before + segs[i].count and i < len(segs) - 1:
            i += 1
        seg = segs[i]
        yield Arrival(k, seg.time_of(due), seg.stage)
