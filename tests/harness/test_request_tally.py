"""The histogram counts workers send to the master for the live metrics."""

from __future__ import annotations

from harness.request_tally import (
    BUCKETS_MS,
    SLA_THRESHOLDS_MS,
    RequestTallies,
    cumulative_buckets,
)

KEY = ("GET", "/discoveries", "spike")


def _cumulative(tallies: RequestTallies) -> dict[str, float]:
    return dict(cumulative_buckets(tallies.by_key[KEY]))


def test_every_sla_threshold_is_an_edge_with_neighbours_within_five_percent() -> None:
    assert list(BUCKETS_MS) == sorted(set(BUCKETS_MS))
    for threshold in SLA_THRESHOLDS_MS:
        i = BUCKETS_MS.index(threshold)
        assert BUCKETS_MS[i - 1] >= threshold * 0.95
        assert BUCKETS_MS[i + 1] <= threshold * 1.05


def test_a_latency_on_an_edge_counts_at_that_edge_and_above_it_beyond() -> None:
    tallies = RequestTallies()
    tallies.add(KEY, 500.0, ok=True)
    tallies.add(KEY, 500.001, ok=True)
    tallies.add(KEY, 0.2, ok=False)
    got = _cumulative(tallies)
    assert got["0.001"] == 1
    assert got["0.5"] == 2
    assert got["0.525"] == 3
    assert got["+Inf"] == 3
    tally = tallies.by_key[KEY]
    assert tally.failures == 1 and tally.count == 3
    assert tally.sum_ms == 500.0 + 500.001 + 0.2


def test_what_workers_drain_the_master_adds_up() -> None:
    worker_a, worker_b, master = RequestTallies(), RequestTallies(), RequestTallies()
    for latency in (12.0, 95.0, 180.0):
        worker_a.add(KEY, latency, ok=True)
    worker_b.add(KEY, 2500.0, ok=False)
    worker_b.add(("POST", "/artifacts", "spike"), 40.0, ok=True)
    master.merge(worker_a.drain())
    master.merge(worker_b.drain())
    assert worker_a.by_key == {} and worker_b.by_key == {}  # a drain starts the next report
    worker_a.add(KEY, 30.0, ok=True)
    master.merge(worker_a.drain())
    got = _cumulative(master)
    assert got["0.1"] == 3 and got["0.2"] == 4 and got["+Inf"] == 5
    assert master.by_key[KEY].failures == 1
    assert master.by_key[("POST", "/artifacts", "spike")].count == 1


def test_counts_with_other_bucket_edges_are_left_out() -> None:
    master = RequestTallies()
    master.merge([["GET", "/x", "run", [1, 2, 3], 10.0, 6, 0]])
    assert master.by_key == {}
