"""Short real load runs: Locust as a child process against the reference API on loopback.

Each run is bounded by its scenario (a few seconds) and a subprocess timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.recorder import read_samples
from harness.run import default_sigint
from harness.sla import EXIT_SLA_FAILED
from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
API_LOCUSTFILE = REPO / "locustfiles" / "api.py"
TINY = '''"""Two short stages, for tests."""
from harness.shapes import ScenarioShape

STAGES = [
    {"name": "warm", "duration": 2.5, "users": 3, "ramp": 0.5},
    {"name": "busy", "duration": 2.5, "users": 6, "ramp": 0.5},
]


class Tiny(ScenarioShape):
    """Warm up with 3 users, then 6."""
'''
RUN_TIMEOUT_S = 90
ENV = {
    **os.environ,
    "HARNESS_THINK_TIME": "0.02-0.05",
    "HARNESS_REDIS_URL": "",
    "HARNESS_SLA": "",
    # The reference API's SLAs are not these tests' subject; a busy CI box could break them.
    "HARNESS_NO_DEFAULT_SLAS": "1",
}


@pytest.fixture(scope="module")
def tiny_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenarios") / "tiny.py"
    path.write_text(TINY)
    return path


@pytest.fixture
def api(reference_db: Path, tmp_path: Path) -> Iterator[str]:
    """The reference API on a private copy (ApiUser writes)."""
    db = tmp_path / "api.db"
    shutil.copyfile(reference_db, db)
    with running_api(ApiSettings(db=str(db), now=ANCHOR)) as base:
        yield base


def _locust(
    scenario: Path, host: str, run_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{API_LOCUSTFILE},{scenario}",
        "--headless",
        "--host",
        host,
        "--run-dir",
        str(run_dir),
        "--only-summary",
        *extra,
    ]
    return subprocess.run(
        cmd, env=ENV, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def _served(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics/prometheus").text
    served: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "harness_api_requests":
            for s in family.samples:
                if s.name.endswith("_total"):
                    served[s.labels["route"]] = served.get(s.labels["route"], 0) + s.value
    return served


def _processes(n: int) -> list[str]:
    """``--processes n`` on a free master port (Locust's default 5557 may be in use)."""
    from harness.target.server import free_port

    port = str(free_port())
    return ["--processes", str(n), "--master-bind-port", port, "--master-port", port]


def _wait_for(check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll until ``check`` returns something truthy (machines under load are slow to start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail("condition not reached in time")


def _workers_with_samples(pid: int, run_dir: Path) -> list[psutil.Process] | None:
    workers = psutil.Process(pid).children()
    files = list((run_dir / "samples").glob("*.arrows")) if (run_dir / "samples").is_dir() else []
    ready = len(workers) == 2 and len(files) == 2 and read_samples(run_dir).table.num_rows > 40
    return workers if ready else None


def test_every_request_served_is_one_sample_stamped_with_its_stage(
    api: str, tiny_scenario: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    done = _locust(tiny_scenario, api, run_dir, "--sla", "p95<10s")
    assert done.returncode == 0, done.stderr[-2000:]
    table = read_samples(run_dir).table
    served = _served(api)
    # ApiUser reads /meta once per process outside Locust's statistics.
    api_requests = sum(
        v for route, v in served.items() if route not in {"/meta", "/metrics/prometheus"}
    )
    users = 6
    assert api_requests - users <= table.num_rows <= api_requests
    assert table.num_rows > 100

    latencies = table.column("latency_ms").to_pylist()
    assert any(v != int(v) for v in latencies), "latency must be float ms, never rounded"

    run = json.loads((run_dir / "run.json").read_text())
    spans = {s["name"]: (s["start"], s["end"]) for s in run["stages"]}
    assert list(spans) == ["warm", "busy"]
    # The recorded spans follow the scenario's plan (2.5 s each), within a tick or two.
    for name, (lo, hi) in spans.items():
        assert abs((hi - lo) - 2.5) < 1.2, (name, hi - lo)
    assert spans["busy"][0] == pytest.approx(spans["warm"][1], abs=0.01)
    for start, stage in zip(
        table.column("start_time").to_pylist(), table.column("stage").to_pylist(), strict=True
    ):
        lo, hi = spans[stage]
        assert lo - 0.5 <= start <= hi, (stage, start, spans)
    stages = set(table.column("stage").to_pylist())
    assert stages == {"warm", "busy"}

    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["passed"] and not verdict["partial"]
    assert verdict["samples"] == table.num_rows
    assert run["scenario"]["name"] == "tiny" and run["locust_version"]


def test_a_broken_sla_fails_with_its_own_exit_code(
    api: str, tiny_scenario: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    done = _locust(tiny_scenario, api, run_dir, "--sla", "p50<0.001ms", "--sla", "errors<50%")
    assert done.returncode == EXIT_SLA_FAILED, done.stderr[-2000:]
    verdict = json.loads((run_dir / "verdict.json").read_text())
    failed = {o["sla"] for o in verdict["outcomes"] if not o["passed"]}
    assert failed == {"p50<0.001ms"}
    assert "FAIL" in done.stderr


def test_two_processes_write_samples_from_both_into_the_masters_run(
    api: str, tiny_scenario: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    done = _locust(tiny_scenario, api, run_dir, *_processes(2))
    assert done.returncode == 0, done.stderr[-2000:]
    result = read_samples(run_dir)
    assert len(result.files) == 2
    served = _served(api)
    api_requests = sum(v for r, v in served.items() if r not in {"/meta", "/metrics/prometheus"})
    assert api_requests - 6 <= result.table.num_rows <= api_requests
    per_worker = result.table.group_by("worker").aggregate([("latency_ms", "count")])
    assert per_worker.num_rows == 2
    assert min(per_worker.column("latency_ms_count").to_pylist()) > 20
    run = json.loads((run_dir / "run.json").read_text())
    assert len(run["workers"]) == 2


def test_a_killed_worker_leaves_the_samples_it_sent(
    api: str, tiny_scenario: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{API_LOCUSTFILE},{tiny_scenario}",
        "--headless",
        "--host",
        api,
        "--run-dir",
        str(run_dir),
        "--only-summary",
        "--processes",
        "2",
    ]
    proc = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        workers = _wait_for(lambda: _workers_with_samples(proc.pid, run_dir))
        workers[0].kill()
        _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = read_samples(run_dir)
    assert not result.warnings
    counts = result.table.group_by("worker").aggregate([("latency_ms", "count")])
    assert counts.num_rows == 2, err[-2000:]
    assert min(counts.column("latency_ms_count").to_pylist()) > 10
    assert (run_dir / "verdict.json").exists()


def test_a_local_run_killed_hard_leaves_a_readable_file(
    api: str, tiny_scenario: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{API_LOCUSTFILE},{tiny_scenario}",
        "--headless",
        "--host",
        api,
        "--run-dir",
        str(run_dir),
        "--only-summary",
    ]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: read_samples(run_dir).table.num_rows > 20 or None)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = read_samples(run_dir)
    assert result.table.num_rows > 20  # every batch flushed before the kill is there
    assert not (run_dir / "verdict.json").exists()


def test_ctrl_c_with_two_processes_keeps_every_sample(
    api: str, tiny_scenario: Path, tmp_path: Path
) -> None:
    slow = tiny_scenario.parent / "slow_tiny.py"
    slow.write_text(TINY.replace("2.5", "30"))
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{API_LOCUSTFILE},{slow}",
        "--headless",
        "--host",
        api,
        "--run-dir",
        str(run_dir),
        "--only-summary",
        "--processes",
        "2",
    ]
    proc = subprocess.Popen(
        cmd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    _wait_for(lambda: _workers_with_samples(proc.pid, run_dir))
    # What Ctrl-C sends (with SIGINT handling restored in the child: see default_sigint).
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert "already closed" not in err and "Traceback" not in err, err[-3000:]
    table = read_samples(run_dir).table
    served = _served(api)
    api_requests = sum(v for r, v in served.items() if r not in {"/meta", "/metrics/prometheus"})
    # Requests cut off by the stop are served but never answered to a user: at most one each.
    assert api_requests - 6 <= table.num_rows <= api_requests
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["partial"] is True and verdict["samples"] == table.num_rows


@pytest.mark.parametrize(
    ("extra", "file_body", "says"),
    [
        (["--sla", "p95<fast"], None, "cannot read the value 'fast'"),
        ([], TINY.replace('"users": 6', '"usres": 6'), "unknown key 'usres'"),
    ],
)
def test_plain_locust_reports_bad_input_in_one_line(
    api: str,
    tiny_scenario: Path,
    tmp_path: Path,
    extra: list[str],
    file_body: str | None,
    says: str,
) -> None:
    scenario = tiny_scenario
    if file_body is not None:
        scenario = tmp_path / "typo.py"
        scenario.write_text(file_body)
    done = _locust(scenario, api, tmp_path / "run", *extra)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
