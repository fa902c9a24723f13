"""The pool analysis on synthetic curves whose knee is known."""

from __future__ import annotations

from typing import Any

from harness.analysis.pools import analyze, check_little, find_knee

SIZES = (1, 2, 4, 8, 16, 32)


def curve(
    throughput: list[float], p99: list[float], concurrency: int = 50, driver: str = "psycopg"
) -> list[dict[str, Any]]:
    cells = []
    for size, tp, p in zip(SIZES, throughput, p99, strict=True):
        window = 3.0
        iterations = round(tp * window)
        cells.append(
            {
                "driver": driver,
                "pool_size": size,
                "concurrency": concurrency,
                "throughput": tp,
                "p95": p * 0.6,
                "p99": p,
                "iterations": iterations,
                "timeouts": 0,
                "errors": 0,
                "window_s": window,
                # Consistent with Little's law: L = X x R.
                "mean_all_ms": concurrency / tp * 1000.0,
            }
        )
    return cells


def test_knee_is_the_smallest_pool_near_the_best_throughput() -> None:
    cells = curve([100, 190, 370, 400, 405, 380], [50, 30, 20, 19, 19, 25])
    found = find_knee(cells)
    assert found is not None
    knee, best = found
    assert best["pool_size"] == 16
    assert knee["pool_size"] == 8  # 4 is 9% below the best; 8 is within 5%


def test_knee_needs_a_p99_within_ten_percent_of_the_best() -> None:
    # Pool 4 has the throughput but a p99 twice the best's.
    cells = curve([100, 190, 399, 400, 405, 380], [50, 30, 40, 19, 19, 25])
    found = find_knee(cells)
    assert found is not None and found[0]["pool_size"] == 8


def test_knee_rejects_a_pool_that_fails_more() -> None:
    cells = curve([100, 190, 400, 401, 405, 380], [50, 30, 19, 19, 19, 25])
    cells[2]["timeouts"] = 60  # 5% of its iterations timed out waiting for the pool
    found = find_knee(cells)
    assert found is not None and found[0]["pool_size"] == 8


def test_overall_size_fits_every_concurrency_and_rules_are_placed() -> None:
    light = curve([300, 380, 400, 401, 402, 390], [10, 8, 7, 7, 7, 8], concurrency=10)
    heavy = curve([100, 190, 370, 400, 405, 380], [90, 60, 40, 30, 30, 45], concurrency=200)
    result = analyze(light + heavy, {"(2 x cores) + 5": 9, "HikariCP": 5})
    knees = {k.concurrency: k.pool_size for k in result.knees}
    assert knees == {10: 4, 200: 8}
    (overall,) = result.overall
    assert overall.pool_size == 8 and overall.everywhere
    hikari = [f for f in result.formulas if f.formula == "HikariCP"]
    assert all(f.how == "interpolated between 4 and 8" for f in hikari)
    at_heavy = next(f for f in hikari if f.concurrency == 200)
    # log2(5) sits 32% of the way from 4 to 8: 370 + 0.32 x 30 = 379.7 -> 94% of 405.
    assert at_heavy.throughput_share is not None
    assert abs(at_heavy.throughput_share - 379.66 / 405) < 0.001
    assert at_heavy.acceptable is False
    rule = [f for f in result.formulas if f.formula == "(2 x cores) + 5"]
    assert all(f.how.startswith("interpolated between 8 and 16") for f in rule)
    assert all(f.acceptable for f in rule)
    text = " ".join(result.recommendation)
    assert "use a pool of 8" in text and "HikariCP rule gives 5" in text
    assert "outside the margins" in text and "more than needed" in text


def test_sla_unreachable_is_said_plainly() -> None:
    cells = curve([100, 190, 370, 400, 405, 380], [900, 800, 700, 650, 640, 700])
    result = analyze(cells, {"(2 x cores) + 5": 9})
    assert result.overall[0].sla_unreachable == (50,)
    assert "no pool size holds the SLA" in " ".join(result.recommendation)


def test_littles_law_flags_a_doctored_cell() -> None:
    cells = curve([100, 190, 370, 400, 405, 380], [50, 30, 20, 19, 19, 25])
    assert all(check_little(c).ok for c in cells)
    doctored = dict(cells[3], iterations=cells[3]["iterations"] * 2)
    check = check_little(doctored)
    assert not check.ok and check.ratio is not None and abs(check.ratio - 2.0) < 0.01
    result = analyze([*cells[:3], doctored, *cells[4:]], {})
    assert [c.pool_size for c in result.little_flagged] == [8]
    assert "Little's law does not hold" in " ".join(result.recommendation)


def test_without_a_size_that_fits_everywhere_the_best_compromise_is_chosen() -> None:
    # Light load peaks at 4 and falls; heavy load needs 16. No size is within 5% of both.
    light = curve([300, 380, 400, 340, 330, 300], [10, 8, 7, 9, 9, 10], concurrency=10)
    heavy = curve([100, 190, 300, 360, 400, 390], [90, 60, 40, 35, 30, 31], concurrency=200)
    result = analyze(light + heavy, {})
    (overall,) = result.overall
    assert not overall.everywhere
    # min share: 4 -> 0.75, 8 -> 0.85, 16 -> 0.825: 8 is the best compromise.
    assert overall.pool_size == 8 and abs(overall.worst_share - 0.85) < 1e-9
    assert "best compromise: at worst 85%" in " ".join(result.recommendation)
