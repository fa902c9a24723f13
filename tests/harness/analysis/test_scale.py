"""Scaling reports: USL fits on known curves, points from stress and steady runs, SLA capacity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq  # type: ignore[import-untyped]

from harness.analysis.load import Run, load_run
from harness.analysis.scale import (
    SCHEMA,
    ScaleError,
    fit_usl,
    max_users_under_sla,
    scale_points,
    scale_report,
    usl,
    write_scale,
)
from tests.harness.analysis.synthetic_runs import FloatArray, StageSpec, write_run

# The system the synthetic runs measure: a closed model with think time Z, USL throughput,
# lognormal latencies whose mean is R(N) = N/X(N) - Z (Little's law).
SIGMA, KAPPA, Z, R1, SPREAD = 0.005, 0.00002, 1.0, 0.02, 0.5
LAM = 1.0 / (Z + R1)
ENDPOINTS = ("GET /a", "GET /b")
Z95 = 1.6448536269514722


def true_x(n: float) -> float:
    return float(usl(np.array([n], dtype=np.float64), SIGMA, KAPPA, LAM)[0])


def true_p95_ms(n: float) -> float:
    mean = n / true_x(n) - Z
    return math.exp(math.log(mean) - SPREAD**2 / 2 + Z95 * SPREAD) * 1000.0


def latency(rng: np.random.Generator, endpoint: str, stage: StageSpec, n: int) -> FloatArray:
    mean_ms = (stage.users / true_x(stage.users) - Z) * 1000.0
    return rng.lognormal(math.log(mean_ms) - SPREAD**2 / 2, SPREAD, n)


def rate(endpoint: str, stage: StageSpec) -> float:
    return true_x(stage.users) / len(ENDPOINTS)


@pytest.fixture(scope="module")
def stress_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    steps = [StageSpec(f"step-{i + 1}", 30.0, 20 * (i + 1), spawn_rate=20.0) for i in range(20)]
    path = write_run(
        tmp_path_factory.mktemp("scale") / "stress",
        steps,
        rate,
        dict.fromkeys(ENDPOINTS, latency),
        seed=11,
        scenario="stress",
        stress=True,
        exact_counts=True,
    )
    return load_run(path)


# -- fit_usl -----------------------------------------------------------------------------------


def test_usl_fit_recovers_known_sigma_and_kappa() -> None:
    sigma, kappa, lam = 0.05, 0.0002, 3.0
    n = np.r_[1, np.arange(10, 210, 10)].astype(np.float64)
    rng = np.random.default_rng(0)
    x = usl(n, sigma, kappa, lam) * (1 + rng.normal(0.0, 0.01, len(n)))  # 1 % noise
    fit = fit_usl(n, x)
    assert fit.sigma == pytest.approx(sigma, rel=0.10)
    assert fit.kappa == pytest.approx(kappa, rel=0.10)
    assert fit.lam == pytest.approx(lam, rel=0.05)
    assert fit.peak_n == pytest.approx(math.sqrt((1 - sigma) / kappa), rel=0.10)
    assert fit.peak_n == pytest.approx(math.sqrt((1 - fit.sigma) / fit.kappa))
    assert fit.r2 > 0.99
    assert fit.warnings == ()
    assert fit.stderr is not None


def test_usl_without_coherency_has_no_peak() -> None:
    n = np.array([1, 2, 4, 8, 16, 32, 64], dtype=np.float64)
    fit = fit_usl(n, usl(n, 0.1, 0.0, 10.0))
    assert fit.kappa == 0.0
    assert fit.peak_n == math.inf
    assert fit.sigma == pytest.approx(0.1, rel=1e-3)
    assert fit.peak_throughput == pytest.approx(10.0 / 0.1, rel=1e-3)


def test_usl_poor_fit_is_flagged() -> None:
    rng = np.random.default_rng(3)
    n = np.arange(1, 21, dtype=np.float64)
    fit = fit_usl(n, rng.uniform(10.0, 50.0, len(n)))
    assert fit.r2 < 0.9
    assert any("poor USL fit" in w for w in fit.warnings)


def test_usl_three_points_is_flagged_without_optimizer_warnings() -> None:
    fit = fit_usl([1, 10, 50], [4.0, 30.0, 50.0])
    assert any("only 3 points" in w for w in fit.warnings)
    assert fit.stderr is None
    with pytest.raises(ScaleError, match="3 or more user counts"):
        fit_usl([10, 20], [5.0, 9.0])


# -- points and capacity from a stress run ------------------------------------------------------


def test_stress_points_follow_the_steps(stress_run: Run) -> None:
    points, warnings = scale_points([stress_run])
    assert warnings == []
    assert points["users"].tolist() == [20 * (i + 1) for i in range(20)]
    assert points["stage"].tolist()[:2] == ["step-1", "step-2"]
    for p in points.itertuples():
        assert p.throughput == pytest.approx(true_x(p.users), rel=0.02)
        # the spawn time (20 users at 20/s) is left out of every step
        assert p.seconds == pytest.approx(29.0)


def test_stress_run_recovers_usl_and_sla_capacity(stress_run: Run) -> None:
    result = scale_report([stress_run], "p95<1s")
    fit = result.fit
    assert fit is not None
    assert fit.sigma == pytest.approx(SIGMA, rel=0.10)
    assert fit.kappa == pytest.approx(KAPPA, rel=0.10)
    assert fit.peak_n == pytest.approx(math.sqrt((1 - SIGMA) / KAPPA), rel=0.10)
    # truth: p95 is 790 ms at 60 users and 1108 ms at 80, crossing 1 s near 74
    assert true_p95_ms(60) < 950 and true_p95_ms(80) > 1050
    crossing = brentq(lambda n: true_p95_ms(n) - 1000.0, 60, 80)
    cap = result.capacity
    assert cap.measured == 60
    assert cap.first_failing == 80
    assert cap.predicted is not None
    assert cap.predicted == pytest.approx(crossing, abs=3.0)
    assert "interpolated" in cap.method
    assert result.summary.startswith("The API holds 60 users under p95 < 1 s (about 73")
    assert f"Throughput peaks near {fit.peak_n:.0f} users at" in result.summary  # N* = 223


def test_capacity_beyond_the_measured_range_is_extrapolated(stress_run: Run) -> None:
    result = scale_report([stress_run], "p95<15s")
    cap = result.capacity
    assert cap.measured == 400 and cap.first_failing is None
    truth = brentq(lambda n: true_p95_ms(n) - 15000.0, 400, 2000)
    assert cap.predicted is not None
    assert cap.predicted == pytest.approx(truth, rel=0.10)
    assert "Little's law" in cap.method
    assert result.think_time_s == pytest.approx(Z, rel=0.10)


def test_sla_broken_at_the_first_level(stress_run: Run) -> None:
    cap = scale_report([stress_run], "p95<100ms").capacity
    assert cap.measured is None and cap.first_failing == 20 and cap.predicted is None


def test_sla_scope_must_match_the_points(stress_run: Run) -> None:
    points, _ = scale_points([stress_run], scope="GET /a")
    assert set(points["scope"]) == {"GET /a"}
    assert max_users_under_sla(points, "GET /a:p95<1s").measured == 60
    with pytest.raises(ScaleError, match="scale_points"):
        max_users_under_sla(points, "p95<1s")
    with pytest.raises(ScaleError, match="latency or error"):
        scale_report([stress_run], "rps>10")


def test_write_scale(tmp_path: Path, stress_run: Run) -> None:
    result = scale_report([stress_run], "p95<1s")
    paths = write_scale(result, tmp_path / "out")
    assert set(paths) == {"md", "html", "json"}
    data = json.loads(paths["json"].read_text())
    assert data["schema"] == SCHEMA
    assert data["capacity"]["measured"] == 60
    assert data["fit"]["sigma"] == pytest.approx(SIGMA, rel=0.10)
    assert len(data["points"]) == 20
    assert data["summary"] == result.summary
    html = paths["html"].read_text()
    assert html.count("<svg") >= 2 and "<script" not in html
    assert result.summary.split(";")[0] in paths["md"].read_text()


# -- points from several runs --------------------------------------------------------------------


def test_several_runs_give_one_point_each(tmp_path: Path) -> None:
    runs = []
    for users in (25, 50, 100, 150, 200, 300):
        stages = [
            StageSpec("ramp", 10.0, users, spawn_rate=users / 10.0),
            StageSpec("hold", 40.0, users, spawn_rate=users / 10.0),
        ]
        path = write_run(
            tmp_path / f"steady-{users}",
            stages,
            rate,
            dict.fromkeys(ENDPOINTS, latency),
            seed=users,
            exact_counts=True,
        )
        runs.append(load_run(path))
    result = scale_report(runs[::-1], "p95<1s")
    points = result.points
    assert points["users"].tolist() == [25, 50, 100, 150, 200, 300]
    assert set(points["stage"]) == {"hold"}
    assert points["run"].tolist()[0] == "steady-25"
    assert result.fit is not None
    assert result.fit.sigma == pytest.approx(SIGMA, rel=0.15)
    assert result.capacity.measured == 50 and result.capacity.first_failing == 100
