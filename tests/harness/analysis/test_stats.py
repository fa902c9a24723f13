"""Exact statistics: percentiles identical to numpy's, groupings, windows, error kinds."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from harness.analysis import stats
from harness.analysis.stats import (
    QUANTILES,
    error_kind,
    error_kinds,
    exact_stats,
    percentiles_sorted,
    summarize,
    windows,
)


def _frame(n: int, seed: int = 1, n_endpoints: int = 5, n_stages: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    endpoints = np.array([f"GET /e{i}" for i in range(n_endpoints)])
    stages = np.array(["warm", "spike", "cool"][:n_stages])
    t = np.sort(rng.uniform(0, 90, n))
    return pd.DataFrame(
        {
            "endpoint": endpoints[rng.integers(0, n_endpoints, n)],
            "stage": stages[np.minimum((t // 30).astype(int), n_stages - 1)],
            # rounded values make ties, which interpolation must handle like numpy
            "latency_ms": np.round(rng.lognormal(3, 1, n), 1),
            "ok": rng.random(n) > 0.05,
            "start_time": 1_000.0 + t,
            "users": rng.integers(1, 50, n).astype(np.int32),
        }
    )


def _numpy(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q, method="linear"))


def test_known_distribution_known_percentiles() -> None:
    # 0, 1, ..., 1000: the linear-interpolation percentile p is exactly 10 * p.
    frame = pd.DataFrame(
        {
            "latency_ms": np.arange(1001, dtype=np.float64)[::-1],
            "ok": True,
            "start_time": 0.0,
        }
    )
    row = exact_stats(frame, []).iloc[0]
    known = [500.0, 750.0, 900.0, 950.0, 990.0, 999.0]
    assert [row[q] for q in QUANTILES] == pytest.approx(known, rel=1e-15)
    # ... and exactly what numpy says, float rounding included (99.9 / 100 * 1000)
    values = frame["latency_ms"].to_numpy()
    assert [row[q] for q in QUANTILES] == [_numpy(values, q) for q in QUANTILES.values()]
    assert (row["min"], row["max"], row["mean"], row["count"]) == (0.0, 1000.0, 500.0, 1001)
    # Four values: ranks interpolate between closest ranks (type 7).
    four = pd.DataFrame({"latency_ms": [4.0, 1.0, 3.0, 2.0], "ok": True, "start_time": 0.0})
    row = exact_stats(four, []).iloc[0]
    assert row["p50"] == 2.5
    assert row["p75"] == 3.25
    assert row["p90"] == pytest.approx(3.7)
    assert row["p99.9"] == pytest.approx(3.997)


@pytest.mark.parametrize("by", [[], ["endpoint"], ["stage"], ["stage", "endpoint"]])
def test_percentiles_identical_to_numpy(by: list[str]) -> None:
    frame = _frame(20_000)
    table = exact_stats(frame, by)
    lat = frame["latency_ms"].to_numpy()
    assert table["count"].sum() == len(frame)
    for rec in table.to_dict("records"):
        mask = np.ones(len(frame), dtype=bool)
        for key in by:
            mask &= (frame[key] == rec[key]).to_numpy()
        values = lat[mask]
        for name, q in QUANTILES.items():
            assert rec[name] == _numpy(values, q), (rec, name)  # bit for bit
        assert rec["min"] == values.min()
        assert rec["max"] == values.max()
        assert rec["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert rec["failures"] == int((~frame["ok"].to_numpy()[mask]).sum())


def test_percentiles_sorted_matches_numpy_on_many_group_sizes() -> None:
    rng = np.random.default_rng(3)
    sizes = [1, 2, 3, 4, 5, 7, 10, 11, 99, 100, 101, 999, 1000, 1001, 4096]
    groups = [np.sort(rng.lognormal(2, 1.5, n)) for n in sizes]
    groups.append(np.full(17, 5.0))  # all equal
    groups.append(np.sort(rng.integers(0, 3, 50).astype(np.float64)))  # heavy ties
    values = np.concatenate(groups)
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    qs = [0.0, 0.1, 1.0, 25.0, 33.3, 50.0, 66.7, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0]
    got = percentiles_sorted(values, starts, counts, qs)
    for i, g in enumerate(groups):
        for j, q in enumerate(qs):
            assert got[i, j] == _numpy(g, q), (len(g), q)


def test_categorical_and_string_keys_agree() -> None:
    frame = _frame(5_000)
    plain = exact_stats(frame, ["stage", "endpoint"])
    cats = exact_stats(stats.categorize(frame), ["stage", "endpoint"])
    pd.testing.assert_frame_equal(plain, cats)


def test_stage_order_and_rps_from_spans() -> None:
    frame = _frame(9_000)
    spans = {"warm": (1_000.0, 1_030.0), "spike": (1_030.0, 1_060.0), "cool": (1_060.0, 1_120.0)}
    table = exact_stats(frame, ["stage"], seconds=120.0, spans=spans)
    assert table["stage"].tolist() == ["warm", "spike", "cool"]  # spans order, not alphabetical
    assert table["seconds"].tolist() == [30.0, 30.0, 60.0]
    assert table["rps"].tolist() == pytest.approx((table["count"] / table["seconds"]).tolist())
    overall = exact_stats(frame, [], seconds=120.0)
    assert overall["rps"].iloc[0] == pytest.approx(len(frame) / 120.0)
    assert overall["error_rate"].iloc[0] == pytest.approx((~frame["ok"]).mean())


def test_summarize_equals_separate_tables() -> None:
    frame = stats.categorize(_frame(30_000))
    spans = {"warm": (1_000.0, 1_030.0), "spike": (1_030.0, 1_060.0), "cool": (1_060.0, 1_090.0)}
    groupings = [["stage", "endpoint"], ["endpoint"], ["stage"], []]
    result = summarize(
        frame, groupings, seconds=90.0, spans=spans, window_s=5.0, origin=1_000.0, end=1_090.0
    )
    for by in groupings:
        expected = exact_stats(frame, by, seconds=90.0, spans=spans)
        pd.testing.assert_frame_equal(result.stats[tuple(by)], expected)
    assert result.windows is not None
    pd.testing.assert_frame_equal(result.windows, windows(frame, 5.0, origin=1_000.0, end=1_090.0))


def test_windows_boundaries_gaps_users_and_stage() -> None:
    rows = [
        # start, latency, ok, users, stage
        (100.0, 10.0, True, 1, "a"),
        (109.999, 20.0, False, 3, "a"),
        (110.0, 30.0, True, 2, "b"),  # exactly on the boundary: the later window
        (135.0, 40.0, True, 7, "b"),  # windows 2 (120-130) is empty
    ]
    frame = pd.DataFrame(rows, columns=["start_time", "latency_ms", "ok", "users", "stage"])
    win = windows(frame, 10.0, origin=100.0, end=140.0)
    assert win["window"].tolist() == [0, 1, 2, 3]
    assert win["count"].tolist() == [2, 1, 0, 1]
    assert win["failures"].tolist() == [1, 0, 0, 0]
    assert win["users"].tolist()[:2] == [3, 2]
    assert win["stage"].tolist() == ["a", "b", "b", "b"]
    assert win.loc[0, "p50"] == 15.0
    assert np.isnan(win.loc[2, "p50"])
    assert win["rps"].tolist() == [0.2, 0.1, 0.0, 0.1]
    assert win["t"].tolist() == [0.0, 10.0, 20.0, 30.0]


def test_windows_per_endpoint_match_numpy() -> None:
    frame = _frame(8_000)
    win = windows(frame, 10.0, by=["endpoint"])
    lat = frame["latency_ms"].to_numpy()
    idx = np.floor((frame["start_time"] - frame["start_time"].min()) / 10.0).astype(int)
    for rec in win.sample(n=10, random_state=1).to_dict("records"):
        mask = (idx == rec["window"]).to_numpy() & (frame["endpoint"] == rec["endpoint"]).to_numpy()
        assert rec["count"] == mask.sum()
        assert rec["p95"] == _numpy(lat[mask], 95)


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        ("HTTPError: 500 Server Error: Internal Server Error for url: /x", 500, "HTTP 500"),
        ("HTTPError: 503 Server Error", None, "HTTP 503"),
        ("CatchResponseError: unexpected status 404", None, "HTTP 404"),
        ("BadStatusCode: ('http://127.0.0.1/x', 'code=502')", 0, "HTTP 502"),
        ("ConnectionRefusedError: [Errno 111] Connection refused", None, "ConnectionRefusedError"),
        ("ConnectionRefusedError: [Errno 111] Connection refused", 0, "ConnectionRefusedError"),
        ("gevent.timeout.Timeout: 30 seconds", None, "Timeout"),
        (None, 429, "HTTP 429"),
        (None, None, "failed (no error text)"),
        ("OperationalError: database is locked", None, "OperationalError"),
    ],
)
def test_error_kind(error: str | None, status: int | None, kind: str) -> None:
    assert error_kind(error, status) == kind


def test_error_kinds_counts_and_shares() -> None:
    frame = pd.DataFrame(
        {
            "endpoint": ["GET /a"] * 5 + ["GET /b"] * 3,
            "ok": [False, False, False, True, False, False, False, True],
            "status": [500, 500, None, 200, 503, None, None, 200],
            "error": [
                "HTTPError: 500 Server Error",
                "HTTPError: 500 Server Error for url: /a?id=7",
                "ConnectionResetError: [Errno 104] reset",
                None,
                "HTTPError: 503",
                "ConnectionResetError: [Errno 104] reset",
                "ConnectionResetError: [Errno 104] reset",
                None,
            ],
        }
    )
    per = error_kinds(frame, ["endpoint"])
    assert per[["endpoint", "kind", "count"]].values.tolist() == [
        ["GET /a", "HTTP 500", 2],
        ["GET /a", "ConnectionResetError", 1],
        ["GET /a", "HTTP 503", 1],
        ["GET /b", "ConnectionResetError", 2],
    ]
    assert per["share"].tolist() == [0.5, 0.25, 0.25, 1.0]
    assert per.loc[0, "example"] == "HTTPError: 500 Server Error"
    total = error_kinds(frame)
    assert total[["kind", "count"]].values.tolist() == [
        ["ConnectionResetError", 3],
        ["HTTP 500", 2],
        ["HTTP 503", 1],
    ]
    assert error_kinds(frame[frame["ok"]], ["endpoint"]).empty


def test_empty_frames() -> None:
    empty = _frame(10).iloc[:0]
    assert exact_stats(empty, ["endpoint"]).empty
    assert windows(empty).empty
    assert error_kinds(empty).empty


@pytest.mark.slow
def test_ten_million_samples_in_seconds() -> None:
    n = 10_000_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "endpoint": pd.Categorical.from_codes(
                rng.integers(0, 10, n), [f"GET /e{i}" for i in range(10)]
            ),
            "stage": pd.Categorical.from_codes(rng.integers(0, 4, n), ["a", "b", "c", "d"]),
            "latency_ms": rng.lognormal(3, 1, n),
            "ok": rng.random(n) > 0.01,
            "start_time": rng.uniform(0, 3600, n),
            "users": rng.integers(1, 200, n).astype(np.int32),
        }
    )
    started = time.process_time()
    table = exact_stats(frame, ["stage", "endpoint"])
    took = time.process_time() - started
    assert len(table) == 40
    assert took < 6.0, f"{took:.1f} s of CPU for 10M samples x 40 groups"
    last = table.iloc[-1]
    mask = (frame["stage"] == last["stage"]).to_numpy() & (
        frame["endpoint"] == last["endpoint"]
    ).to_numpy()
    assert last["p99"] == _numpy(frame["latency_ms"].to_numpy()[mask], 99)
