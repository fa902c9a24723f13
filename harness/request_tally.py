"""Requests folded into Prometheus histogram counts, by method, name and stage.

Locust workers fold each request into :class:`RequestTallies` and ship what they counted
since their last report inside Locust's worker report; the master merges the reports into its
own tallies, which :mod:`harness.live_metrics` serves. The bucket edges are dense around the
reference workload's SLA thresholds. No Locust import here: the tallies are plain data.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The reference workload's latency SLAs (DESIGN.md): critical queries p95 < 100 ms and
# p99 < 500 ms, the others p95 < 200 ms and p99 < 1 s, every API endpoint p95 < 500 ms.
SLA_THRESHOLDS_MS = (100.0, 200.0, 500.0, 1000.0)
# Around each threshold, edges 5% apart from -20% to +20%: a p95/p99 read off the histogram
# near the line is within 5% of the threshold, and the share of requests over it is exact.
_NEAR_THRESHOLD = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)
# Elsewhere a coarse ladder from 1 ms to 30 s, for health checks and for timeouts.
_LADDER_MS = (1, 2.5, 5, 10, 25, 50, 75, 150, 300, 400, 700, 1500, 2000, 3000, 5000, 10000, 30000)
BUCKETS_MS: tuple[float, ...] = tuple(
    sorted(
        {float(v) for v in _LADDER_MS}
        | {round(t * f, 3) for t in SLA_THRESHOLDS_MS for f in _NEAR_THRESHOLD}
    )
)

Key = tuple[str, str, str]  # method, name, stage


@dataclass
class Tally:
    """Counts for one (method, name, stage): per bucket (not cumulative), sum, failures."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    sum_ms: float = 0.0
    count: int = 0
    failures: int = 0


class RequestTallies:
    """Requests folded into histogram counts, per method, name and stage."""

    def __init__(self) -> None:
        self.by_key: dict[Key, Tally] = {}

    def add(self, key: Key, latency_ms: float, ok: bool) -> None:
        tally = self.by_key.get(key)
        if tally is None:
            tally = self.by_key[key] = Tally()
        # bisect_left: a latency equal to an edge belongs to that edge's bucket (le).
        tally.buckets[bisect.bisect_left(BUCKETS_MS, latency_ms)] += 1
        tally.sum_ms += latency_ms
        tally.count += 1
        tally.failures += 0 if ok else 1

    def drain(self) -> list[list[Any]]:
        """What was counted since the last drain, in a form Locust's messages carry."""
        out = [[*key, t.buckets, t.sum_ms, t.count, t.failures] for key, t in self.by_key.items()]
        self.by_key = {}
        return out

    def merge(self, drained: Iterable[list[Any]]) -> None:
        """Add a worker's drained counts."""
        for method, name, stage, buckets, sum_ms, count, failures in drained:
            if len(buckets) != len(BUCKETS_MS) + 1:
                continue  # a worker of another harness version: its buckets do not line up
            key = (str(method), str(name), str(stage))
            tally = self.by_key.get(key)
            if tally is None:
                tally = self.by_key[key] = Tally()
            tally.buckets = [a + int(b) for a, b in zip(tally.buckets, buckets, strict=True)]
            tally.sum_ms += float(sum_ms)
            tally.count += int(count)
            tally.failures += int(failures)


def cumulative_buckets(tally: Tally) -> list[tuple[str, float]]:
    """Prometheus histogram buckets: (upper bound in seconds, requests at or under it)."""
    out: list[tuple[str, float]] = []
    running = 0
    for edge_ms, n in zip(BUCKETS_MS, tally.buckets, strict=False):
        running += n
        out.append((f"{edge_ms / 1000.0:g}", running))
    out.append(("+Inf", tally.count))
    return out
