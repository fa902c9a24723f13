"""Run-to-run comparison on synthetic run directories with known distributions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.compare import (
    ALL_ENDPOINTS,
    ALL_STAGES,
    EXIT_REGRESSION,
    IMPROVEMENT,
    INSUFFICIENT,
    NO_CHANGE,
    REGRESSION,
    Comparison,
    compare_runs,
    weighted_percentiles,
    write_comparison,
)
from harness.analysis.load import Run, load_run
from harness.errors import ConfigError
from harness.sla import EXIT_PARTIAL, EXIT_SLA_FAILED
from tests.harness.analysis.synthetic_runs import (
    FloatArray,
    LatencyFn,
    StageSpec,
    lognormal,
    write_run,
)

STAGES = [StageSpec("warm", 60, 10), StageSpec("steady", 120, 20)]
ENDPOINTS: dict[str, LatencyFn] = {
    "GET /a": lognormal(20.0),
    "GET /b": lognormal(50.0),
    "POST /c": lognormal(100.0, 0.3),
}


def rate(endpoint: str, stage: StageSpec) -> float:
    return 0.8 * stage.users  # requests/s per endpoint


def slower(draw: LatencyFn, factor: float) -> LatencyFn:
    def scaled(rng: np.random.Generator, endpoint: str, stage: StageSpec, n: int) -> FloatArray:
        return draw(rng, endpoint, stage, n) * factor

    return scaled


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("compare")
    slow_b = {**ENDPOINTS, "GET /b": slower(ENDPOINTS["GET /b"], 1.3)}
    made = {
        "base": write_run(root / "base", STAGES, rate, ENDPOINTS, seed=1, error_rate=0.01),
        "same": write_run(root / "same", STAGES, rate, ENDPOINTS, seed=2, error_rate=0.01),
        "slow": write_run(root / "slow", STAGES, rate, slow_b, seed=3, error_rate=0.01),
    }
    return {name: load_run(path) for name, path in made.items()}


def row(c: Comparison, endpoint: str, stage: str, metric: str) -> pd.Series:
    r = c.rows
    picked = r[(r["endpoint"] == endpoint) & (r["stage"] == stage) & (r["metric"] == metric)]
    assert len(picked) == 1
    return picked.iloc[0]


def test_same_distribution_is_not_flagged(runs: dict[str, Run]) -> None:
    c = compare_runs(runs["base"], runs["same"])
    assert c.regressions == []
    assert c.improvements == []
    assert c.exit_code == 0
    assert c.warnings == []
    verdicts = set(c.rows["verdict"])
    assert verdicts <= {NO_CHANGE, INSUFFICIENT}
    # every latency interval of the whole run straddles zero change
    overall = c.rows[(c.rows["endpoint"] == ALL_ENDPOINTS) & (c.rows["stage"] == ALL_STAGES)]
    assert len(overall) == 5
    for r in overall.itertuples():
        assert r.ci_low <= 0.0 <= r.ci_high, r


def test_30_percent_p95_regression_is_flagged(runs: dict[str, Run]) -> None:
    c = compare_runs(runs["base"], runs["slow"])
    p95 = row(c, "GET /b", ALL_STAGES, "p95")
    assert p95["verdict"] == REGRESSION
    assert 0.2 < p95["change"] < 0.4
    assert p95["ci_low"] > 0.10
    assert p95["ci_low"] < p95["change"] < p95["ci_high"]
    assert row(c, "GET /b", "steady", "p95")["verdict"] == REGRESSION
    # the endpoints that did not change are not flagged
    others = c.rows[c.rows["endpoint"].isin(["GET /a", "POST /c"])]
    assert REGRESSION not in set(others["verdict"])
    assert c.exit_code == EXIT_REGRESSION
    assert any(line.startswith("GET /b @ all stages: p95") for line in c.regressions)
    # and the other way round it is an improvement
    back = compare_runs(runs["slow"], runs["base"], resamples=400)
    assert row(back, "GET /b", ALL_STAGES, "p95")["verdict"] == IMPROVEMENT
    assert back.exit_code == 0


def test_point_estimates_are_numpy_exact(runs: dict[str, Run]) -> None:
    c = compare_runs(runs["base"], runs["slow"], resamples=200)
    for name, side in (("base", "base"), ("slow", "new")):
        s = runs[name].samples
        lat = s.loc[(s["endpoint"] == "GET /b") & (s["stage"] == "steady"), "latency_ms"]
        for metric, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            assert row(c, "GET /b", "steady", metric)[side] == np.percentile(lat.to_numpy(), q)
        seconds = 120.0
        assert row(c, "GET /b", "steady", "throughput")[side] == pytest.approx(len(lat) / seconds)


def test_error_rate_regression_is_absolute(tmp_path: Path, runs: dict[str, Run]) -> None:
    failing = load_run(
        write_run(tmp_path / "failing", STAGES, rate, ENDPOINTS, seed=4, error_rate=0.08)
    )
    c = compare_runs(runs["base"], failing, resamples=400)
    errors = row(c, ALL_ENDPOINTS, ALL_STAGES, "error_rate")
    assert errors["change_kind"] == "absolute"
    assert errors["change"] == pytest.approx(0.07, abs=0.01)
    assert errors["verdict"] == REGRESSION
    assert row(c, ALL_ENDPOINTS, ALL_STAGES, "p95")["verdict"] == NO_CHANGE


def test_same_seed_same_intervals(runs: dict[str, Run]) -> None:
    a = compare_runs(runs["base"], runs["same"], resamples=200, seed=7)
    b = compare_runs(runs["base"], runs["same"], resamples=200, seed=7)
    pd.testing.assert_frame_equal(a.rows, b.rows)


def test_not_comparable_runs_warn(tmp_path: Path, runs: dict[str, Run]) -> None:
    other_stages = [StageSpec("warm", 180, 30), StageSpec("steady", 360, 60)]
    other = load_run(
        write_run(
            tmp_path / "other",
            other_stages,
            rate,
            ENDPOINTS,
            seed=5,
            scenario="spike",
            target="http://10.0.0.9:8000",
        )
    )
    c = compare_runs(runs["base"], other, resamples=200)
    text = "\n".join(c.warnings)
    assert "different scenarios: base ran 'steady', new ran 'spike'" in text
    assert "different targets" in text
    assert "different user counts per stage: base [10, 20], new [30, 60]" in text
    assert "very different durations: base 180 s, new 540 s" in text


def test_stage_missing_from_one_run(tmp_path: Path, runs: dict[str, Run]) -> None:
    extra = [*STAGES, StageSpec("spike", 30, 40)]
    longer = load_run(write_run(tmp_path / "longer", extra, rate, ENDPOINTS, seed=6))
    c = compare_runs(runs["base"], longer, resamples=200)
    assert any("only in new: spike" in w for w in c.warnings)
    spike = row(c, ALL_ENDPOINTS, "spike", "p95")
    assert spike["verdict"] == INSUFFICIENT
    assert spike["note"] == "only in the new run"


def test_approximate_input_compares_point_estimates(tmp_path: Path, runs: dict[str, Run]) -> None:
    def stats_csv(path: Path, p95_b: float) -> Path:
        frame = pd.DataFrame(
            {
                "Type": ["GET", "GET", ""],
                "Name": ["/a", "/b", "Aggregated"],
                "Request Count": [1000, 1000, 2000],
                "Failure Count": [0, 0, 0],
                "Requests/s": [10.0, 10.0, 20.0],
                "50%": [20, 50, 30],
                "95%": [45, p95_b, 110],
                "99%": [60, 160, 150],
            }
        )
        frame.to_csv(path, index=False)
        return path

    base = load_run(stats_csv(tmp_path / "base_stats.csv", 110))
    new = load_run(stats_csv(tmp_path / "new_stats.csv", 150))
    c = compare_runs(base, new)
    assert any("approximate" in w for w in c.warnings)
    assert row(c, "GET /b", ALL_STAGES, "p95")["verdict"] == REGRESSION
    assert row(c, "GET /a", ALL_STAGES, "p95")["verdict"] == NO_CHANGE
    assert math.isnan(row(c, "GET /b", ALL_STAGES, "p95")["ci_low"])
    assert c.exit_code == EXIT_REGRESSION
    html = write_comparison(c, tmp_path / "out")["html"].read_text()
    assert "approximate" in html and "<svg" in html


def test_exit_code_is_documented_and_distinct() -> None:
    assert EXIT_REGRESSION == 12
    assert EXIT_REGRESSION not in {0, 1, 2, 6, EXIT_SLA_FAILED, EXIT_PARTIAL}


def test_bad_settings_are_refused(runs: dict[str, Run]) -> None:
    with pytest.raises(ConfigError, match="confidence"):
        compare_runs(runs["base"], runs["same"], confidence=1.5)
    with pytest.raises(ConfigError, match="tolerance"):
        compare_runs(runs["base"], runs["same"], tolerance=-0.1)
    with pytest.raises(ConfigError, match="resamples"):
        compare_runs(runs["base"], runs["same"], resamples=5)


@pytest.mark.parametrize("n", [1, 7, 400, 5000])
def test_bootstrap_percentiles_match_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    values = np.sort(rng.lognormal(3.0, 0.7, n))
    n_windows = 13
    window = rng.integers(0, n_windows, n)
    draws = rng.multinomial(n_windows, np.full(n_windows, 1 / n_windows), size=60)
    got = weighted_percentiles(values, window, draws, [0.0, 50.0, 95.0, 99.0, 100.0])
    for b in range(len(draws)):
        expanded = np.repeat(values, draws[b][window])
        if len(expanded) == 0:
            assert np.isnan(got[:, b]).all()
        else:
            want = np.percentile(expanded, [0.0, 50.0, 95.0, 99.0, 100.0])
            np.testing.assert_allclose(got[:, b], want, rtol=1e-12, atol=0)


def test_write_comparison(tmp_path: Path, runs: dict[str, Run]) -> None:
    c = compare_runs(runs["base"], runs["slow"], resamples=200)
    paths = write_comparison(c, tmp_path / "out")
    assert set(paths) == {"md", "html"}
    md = paths["md"].read_text()
    assert md.startswith("# Comparison: base -> slow")
    assert "REGRESSION" in md
    assert "GET /b @ all stages: p95" in md
    html = paths["html"].read_text()
    assert html.count("<svg") >= 4  # p95 bars, change forest, throughput, CDF
    assert "<script" not in html and "<link" not in html and 'src="http' not in html
    assert 'class="fail"' in html
