"""Open-model runs, end to end: plain Locust against a loopback server that stalls on a
fixed schedule. Each run lasts a few seconds and stops by itself.

Only counts and the schedule's shape are asserted, never how long anything took: a stall
is checked by what it implies (a request held by the server until its stall ended cannot
have been answered before), never against a clock tolerance.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.errors import EXIT_GENERATOR_LIMITED
from harness.recorder import read_iterations, read_samples
from harness.sla import EXIT_SLA_FAILED
from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR
from tests.harness.stall_server import Stalls, StallServer, stall_server
from tests.harness.test_load_runs import _processes

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120
LOCUSTFILE = '''"""One GET per iteration, against the stall server."""
import time

from locust import FastHttpUser, task

import harness.users  # noqa: F401  (the recorder and the open-model executor)


class Probe(FastHttpUser):
    @task
    def root(self) -> None:
        self.client.get("/", name="/")


class Burner(FastHttpUser):
    """Holds the CPU for 30 ms per iteration without yielding: at 60/s one process cannot
    keep up, whatever the machine."""

    @task
    def burn(self) -> None:
        end = time.perf_counter() + 0.03
        while time.perf_counter() < end:
            pass
        self.client.get("/", name="/")
'''
SCENARIO = '''"""A short open-model scenario for tests."""
from harness.shapes import ScenarioShape

STAGES = %r


class Short(ScenarioShape):
    """Test stages."""
'''
ENV = {**os.environ, "HARNESS_SLA": "", "HARNESS_NO_DEFAULT_SLAS": "1"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("open_model")
    (path / "probe.py").write_text(LOCUSTFILE)
    return path


@pytest.fixture
def stalling() -> Iterator[StallServer]:
    """Stalls of 0.6 s every 2 s: every run of a few seconds meets one or two."""
    with stall_server(Stalls(first=time.time(), period=2.0, length=0.6)) as server:
        yield server


def _scenario(folder: Path, name: str, stages: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.py"
    path.write_text(SCENARIO % (stages,))
    return path


def _locust(
    folder: Path, scenario: Path, host: str, run_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{folder / 'probe.py'},{scenario}",
            "--headless",
            "--host",
            host,
            "--run-dir",
            str(run_dir),
            "--only-summary",
            *extra,
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def _iterations(run_dir: Path) -> pd.DataFrame:
    result = read_iterations(run_dir)
    assert result is not None, "an open-model run logs its iterations"
    return result.table.to_pandas().sort_values("intended_start", ignore_index=True)


def _verdict(run_dir: Path) -> dict[str, Any]:
    verdict: dict[str, Any] = json.loads((run_dir / "verdict.json").read_text())
    return verdict


def test_a_constant_rate_keeps_its_schedule_and_times_stalls_from_the_intended_start(
    folder: Path, stalling: StallServer, tmp_path: Path
) -> None:
    scenario = _scenario(folder, "constant", [{"name": "steady", "duration": 3, "rate": 50}])
    run_dir = tmp_path / "run"
    done = _locust(folder, scenario, stalling.url, run_dir, "Probe")
    assert done.returncode in (0, EXIT_GENERATOR_LIMITED), done.stderr[-2000:]

    iterations = _iterations(run_dir)
    # 50/s for 3 s: 150 iterations, every one started and finished (achieved within 1%).
    assert len(iterations) == 150
    assert (iterations["outcome"] == "done").all()
    assert np.allclose(np.diff(iterations["intended_start"]), 1 / 50, rtol=0, atol=1e-6)
    stage = _verdict(run_dir)["open_model"]["stages"][0]
    assert stage["target_rate"] == 50.0
    assert abs(stage["achieved_rate"] - 50.0) <= 0.5

    samples = read_samples(run_dir).table.to_pandas()
    assert len(samples) == 150 == stalling.served  # every iteration one request, none omitted
    assert samples["intended_start"].notna().all()
    assert set(samples["stage"]) == {"steady"}
    # Response time from the intended start = service time + how late the request went out.
    sent_late_ms = (samples["start_time"] - samples["intended_start"]) * 1000
    assert (sent_late_ms >= 0).all()
    assert (samples["latency_ms"] >= sent_late_ms).all()
    # Requests meant for a stall were sent on schedule and held: each is timed until the
    # stall's end at least, from when it was meant to go out.
    stalls = Stalls(first=stalling.server.stalls.first, period=2.0, length=0.6)  # type: ignore[union-attr]
    held = 0
    for intended, latency in zip(samples["intended_start"], samples["latency_ms"], strict=True):
        end = stalls.end_of(intended)
        if end is not None:
            held += 1
            assert intended + latency / 1000 >= end - 0.002
    assert held >= 20  # at least one 0.6 s stall at 50/s fell inside the run


def test_a_full_pool_records_dropped_iterations_instead_of_omitting_them(
    folder: Path, stalling: StallServer, tmp_path: Path
) -> None:
    scenario = _scenario(folder, "tight", [{"name": "steady", "duration": 3, "rate": 50}])
    run_dir = tmp_path / "run"
    done = _locust(folder, scenario, stalling.url, run_dir, "--max-inflight", "3", "Probe")
    assert done.returncode in (EXIT_SLA_FAILED, EXIT_GENERATOR_LIMITED), done.stderr[-2000:]

    iterations = _iterations(run_dir)
    assert len(iterations) == 150  # every scheduled iteration is accounted for
    dropped = iterations[iterations["outcome"] == "dropped"]
    assert len(dropped) > 0
    assert set(dropped["stage"]) == {"steady"} and dropped["lag_ms"].isna().all()
    assert len(read_samples(run_dir).table) == (iterations["outcome"] != "dropped").sum()
    verdict = _verdict(run_dir)
    assert not verdict["passed"]
    row = next(o for o in verdict["outcomes"] if o["sla"] == "no dropped iterations")
    assert not row["passed"] and f"{len(dropped):,} of 150 iterations dropped" in row["note"]
    assert "dropped iterations" in done.stderr or "dropped" in done.stderr


def test_two_processes_split_the_rate_exactly_and_interleave(
    folder: Path, stalling: StallServer, tmp_path: Path
) -> None:
    scenario = _scenario(folder, "split", [{"name": "steady", "duration": 3, "rate": 40}])
    run_dir = tmp_path / "run"
    done = _locust(folder, scenario, stalling.url, run_dir, *_processes(2), "Probe")
    assert done.returncode in (0, EXIT_GENERATOR_LIMITED), done.stderr[-2000:]

    iterations = _iterations(run_dir)
    assert len(iterations) == 120  # the workers' shares add up to the target exactly
    per_worker = iterations.groupby("worker").size()
    assert len(per_worker) == 2 and per_worker.tolist() == [60, 60]
    order = iterations["worker"].tolist()
    assert all(a != b for a, b in itertools.pairwise(order))  # never in lockstep
    assert np.allclose(np.diff(iterations["intended_start"]), 1 / 40, rtol=0, atol=1e-6)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["open_model"]["processes"] == 2
    assert sorted(meta["open_model"]["cpu"]) == sorted(per_worker.index)  # CPU from both


def test_a_ramp_between_two_rates_follows_the_schedule(folder: Path, tmp_path: Path) -> None:
    stages = [
        {"name": "low", "duration": 1, "rate": 20},
        {"name": "up", "duration": 2, "rate": 80, "ramp": 2},
    ]
    scenario = _scenario(folder, "ramp", stages)
    run_dir = tmp_path / "run"
    with stall_server() as server:
        done = _locust(folder, scenario, server.url, run_dir, "Probe")
    assert done.returncode in (0, EXIT_GENERATOR_LIMITED), done.stderr[-2000:]

    iterations = _iterations(run_dir)
    counts = iterations.groupby("stage").size().to_dict()
    assert counts == {"low": 20, "up": 100}  # 20/s for 1 s, then the area of 20 -> 80 in 2 s
    ramp = iterations.loc[iterations["stage"] == "up", "intended_start"].to_numpy()
    assert (np.diff(np.diff(ramp)) < 1e-6).all()  # arrivals come closer and closer together
    origin = ramp[0] - (np.diff(ramp)[0] / 2)  # approximately the ramp's start
    first, second = (ramp < origin + 1).sum(), (ramp >= origin + 1).sum()
    assert (first, second) == (35, 65)  # the mean rate of each second: 35/s, then 65/s
    stages_out = _verdict(run_dir)["open_model"]["stages"]
    assert [s["planned"] for s in stages_out] == [20, 100]


def test_the_verdict_marks_a_generator_limited_run(folder: Path, tmp_path: Path) -> None:
    scenario = _scenario(folder, "burn", [{"name": "steady", "duration": 3, "rate": 60}])
    run_dir = tmp_path / "run"
    with stall_server() as server:
        done = _locust(folder, scenario, server.url, run_dir, "Burner")
    assert done.returncode == EXIT_GENERATOR_LIMITED, done.stderr[-2000:]
    verdict = _verdict(run_dir)
    assert verdict["generator_limited"] and not verdict["passed"]
    assert any("scheduler lag p99" in r for r in verdict["open_model"]["reasons"])
    assert "generator-limited" in done.stderr


@pytest.fixture
def api(reference_db: Path, tmp_path: Path) -> Iterator[str]:
    """The reference API on a private copy (ApiUser writes)."""
    db = tmp_path / "api.db"
    shutil.copyfile(reference_db, db)
    with running_api(ApiSettings(db=str(db), now=ANCHOR)) as base:
        yield base


@pytest.mark.slow
def test_plain_locust_drives_api_user_at_a_constant_rate(api: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{REPO / 'locustfiles' / 'api.py'},{REPO / 'scenarios' / 'constant_rate.py'}",
            "--headless",
            "--host",
            api,
            "--run-dir",
            str(run_dir),
            "--only-summary",
            "--rate",
            "30",
            "--duration",
            "4s",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode in (0, EXIT_SLA_FAILED, EXIT_GENERATOR_LIMITED), done.stderr[-2000:]
    iterations = _iterations(run_dir)
    assert len(iterations) == 120 and set(iterations["user_class"]) == {"ApiUser"}
    samples = read_samples(run_dir).table.to_pandas()
    # ApiUser's own mix, one request per task, each timed from its intended start.
    assert samples["name"].nunique() >= 5
    assert samples["intended_start"].notna().all()
    assert len(samples) == (iterations["outcome"] != "dropped").sum()


@pytest.mark.slow
def test_database_users_run_their_queries_at_a_rate(reference_db: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{REPO / 'locustfiles' / 'database.py'},{REPO / 'scenarios' / 'constant_rate.py'}",
            "SqliteUser",
            "--headless",
            "--host",
            str(reference_db),
            "--run-dir",
            str(run_dir),
            "--only-summary",
            "--rate",
            "20",
            "--duration",
            "3s",
            "--arrivals",
            "poisson",
        ],
        env={**ENV, "HARNESS_SEED": "5"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode in (0, EXIT_SLA_FAILED, EXIT_GENERATOR_LIMITED), done.stderr[-2000:]
    iterations = _iterations(run_dir)
    assert set(iterations["user_class"]) == {"SqliteUser"}
    samples = read_samples(run_dir).table.to_pandas()
    assert set(samples["request_type"]) == {"SQLITE"}
    assert len(samples) == (iterations["outcome"] != "dropped").sum() > 0
    assert _verdict(run_dir)["open_model"]["arrivals"] == "poisson"


@pytest.mark.slow
def test_harness_run_reports_both_latencies_for_an_open_model_run(api: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "spike_rate",
            "--target",
            api,
            "--rate",
            "40",
            "--duration",
            "6s",
            "--max-inflight",
            "100",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        env={**ENV, "HARNESS_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode in (0, EXIT_SLA_FAILED, EXIT_GENERATOR_LIMITED), done.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["closed_model_note"] is None
    generator = summary["open_model"]["generator"]
    assert [s["stage"] for s in generator["stages"]] == [
        "baseline",
        "spike",
        "recovery",
        "observe",
    ]
    assert max(s["target_rate"] for s in generator["stages"]) <= 40
    report = (run_dir / "report.md").read_text()
    assert "response p50" in report and "service p50" in report and "achieved/s" in report


@pytest.mark.parametrize(
    ("stages", "extra", "says"),
    [
        (
            [{"name": "steady", "duration": 2, "users": 2}],
            ["--rate", "10"],
            "--rate need an open-model scenario, but scenario 'closed' sets users",
        ),
        (
            [{"name": "steady", "duration": 2, "rate": 10}],
            ["--max-inflight", "0"],
            "--max-inflight must be a whole number >= 1",
        ),
    ],
)
def test_plain_locust_refuses_bad_open_model_options_in_one_line(
    folder: Path, tmp_path: Path, stages: list[dict[str, Any]], extra: list[str], says: str
) -> None:
    scenario = _scenario(folder, "closed", stages)
    done = _locust(folder, scenario, "http://127.0.0.1:9", tmp_path / "run", *extra, "Probe")
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
