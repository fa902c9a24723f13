"""One real distributed run on loopback, watched by the real Prometheus, for several tests.

What a team does on real infrastructure, on 127.0.0.1: the reference API (with Redis),
``harness run --master --prometheus-port`` waiting for two ``harness run --worker``
processes, and Debian's ``prometheus`` binary scraping the master and the API every second
with the repository's ``prometheus.yml`` pointed at loopback. Once both workers have sent
samples, one worker's Locust is killed, as a crashed host would be. The run ends by itself
(its scenario is bounded); then every dashboard expression is asked of Prometheus over the
run's time span, as Grafana asks it.

``tests/harness/conftest.py`` runs this once per session (``distributed_run``); the
live-metrics tests and the distributed-run tests read the record.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.recorder import read_samples
from harness.target.server import free_port, running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR
from tests.dashboards import DASHBOARDS, concrete, expressions, load_dashboard

REPO = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness"]
LOOPBACK = "127.0.0.1"
T = TypeVar("T")
# Bounded: 12 s of load; the waits below only bound how long a broken run may hang.
SCENARIO = '''"""Two stages for the distributed run."""
from harness.shapes import ScenarioShape

STAGES = [
    {"name": "warm", "duration": 6, "users": 4, "ramp": 2},
    {"name": "busy", "duration": 6, "users": 6, "ramp": 2},
]


class Distributed(ScenarioShape):
    """Four users, then six, over two workers."""
'''
SLAS = ["p95<500ms", "p99<1s"]
WAIT_S = 90.0
RUN_TIMEOUT_S = 180.0
ENV = {
    **os.environ,
    "HARNESS_THINK_TIME": "0.02-0.05",
    "HARNESS_SLA": "",
    "HARNESS_NO_DEFAULT_SLAS": "1",
}


@dataclass
class DistributedRun:
    """What the run left and what Prometheus and the metrics endpoints said about it."""

    run_dir: Path
    master_code: int
    master_output: str
    worker_codes: list[int]
    killed_worker_pid: int
    prometheus_config: Path
    # dashboard file stem -> expression -> series Prometheus returned over the run's span
    series: dict[str, dict[str, int]] = field(default_factory=dict)
    statuses: dict[str, dict[str, str]] = field(default_factory=dict)
    exposed: set[str] = field(default_factory=set)  # sample names the master and API served


def wait_for(check: Callable[[], T | None], what: str, timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what}: not reached in {timeout:g} s")


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def rows_per_worker(run_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for worker in read_samples(run_dir).table.column("worker").to_pylist():
        counts[worker] = counts.get(worker, 0) + 1
    return counts


def prometheus_tool(name: str) -> str:
    """``prometheus`` or ``promtool`` from Debian's package: CI must have it (``.ci/run``
    installs it); elsewhere the tests that need it are skipped with the install command."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: .ci/run installs Debian's prometheus package")
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return found


def worker_command(scenario: Path, master_port: int) -> list[str]:
    """``harness run SCENARIO --worker`` for a master on loopback."""
    return [
        *HARNESS,
        "run",
        str(scenario),
        "--worker",
        "--master-host",
        LOOPBACK,
        "--master-port",
        str(master_port),
    ]


def one_shot(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command that is expected to end by itself soon (a refusal, a check)."""
    return subprocess.run(
        cmd, env=ENV, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def loopback_config(metrics_port: int, api_base: str) -> dict[str, Any]:
    """The repository's prometheus.yml with its compose targets on loopback, scraped every
    second; the exporter's job is left out (no exporter runs here)."""
    config: dict[str, Any] = yaml.safe_load((REPO / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    targets = {"locust": f"{LOOPBACK}:{metrics_port}", "api": api_base.removeprefix("http://")}
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def sample_names(url: str) -> set[str]:
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return set()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def query_range(
    client: httpx.Client, base: str, expr: str, start: float, end: float
) -> tuple[str, int]:
    """Prometheus's answer to ``expr`` over [start, end] at 1 s steps: status, series."""
    body: dict[str, Any] = client.get(
        f"{base}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": "1s"},
        timeout=10,
    ).json()
    return str(body.get("status")), len(body.get("data", {}).get("result", []))


def _start(cmd: list[str], log: Path, stack: ExitStack) -> subprocess.Popen[bytes]:
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(cmd, env=ENV, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    return proc


def run_distributed(reference_db: Path, redis_url: str, tmp: Path) -> DistributedRun:
    prometheus = prometheus_tool("prometheus")
    db = tmp / "api.db"
    shutil.copyfile(reference_db, db)
    scenario = tmp / "distributed.py"
    scenario.write_text(SCENARIO)
    runs = tmp / "runs"
    master_port, metrics_port, prometheus_port = free_port(), free_port(), free_port()
    started = time.time()
    with ExitStack() as stack:
        api = stack.enter_context(
            running_api(ApiSettings(db=str(db), now=ANCHOR, redis_url=redis_url))
        )
        config = tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump(loopback_config(metrics_port, api)))
        prom = _start(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address={LOOPBACK}:{prometheus_port}",
                "--storage.tsdb.retention.time=1h",
            ],
            tmp / "prometheus.log",
            stack,
        )
        base = f"http://{LOOPBACK}:{prometheus_port}"
        master = _start(
            [
                *HARNESS,
                "run",
                str(scenario),
                "--master",
                "--expect-workers",
                "2",
                "--master-bind-host",
                LOOPBACK,
                "--master-port",
                str(master_port),
                "--prometheus-port",
                str(metrics_port),
                "--prometheus-host",
                LOOPBACK,
                "--target",
                api,
                "--runs-dir",
                str(runs),
                "--no-report",  # the tests render the report's text themselves, without charts
                *(arg for sla in SLAS for arg in ("--sla", sla)),
                # Locust's own option, passed through: give up if the workers never come.
                "--expect-workers-max-wait",
                str(int(WAIT_S)),
            ],
            tmp / "master.log",
            stack,
        )
        # As a person would: the workers start once the master listens.
        wait_for(lambda: listening(master_port) or master.poll() is not None, "master listens")
        workers = [
            _start(worker_command(scenario, master_port), tmp / f"worker{i}.log", stack)
            for i in range(2)
        ]
        run_dir = wait_for(
            lambda: next(iter(runs.iterdir()), None) if runs.is_dir() else None, "run directory"
        )
        wait_for(
            lambda: (c := rows_per_worker(run_dir)) and len(c) == 2 and min(c.values()) > 20,
            "samples from both workers",
        )
        # Kill the Locust worker itself (the child of `harness run --worker`), as a crash would.
        [killed] = psutil.Process(workers[0].pid).children()
        killed.kill()
        exposed: set[str] = set()
        while master.poll() is None and time.time() - started < RUN_TIMEOUT_S:
            names = sample_names(f"http://{LOOPBACK}:{metrics_port}/metrics")
            if "harness_load_requests_total" in names:
                exposed = names
            time.sleep(1.0)
        master.wait(timeout=30)
        exposed |= sample_names(f"{api}/metrics/prometheus")
        worker_codes = [w.wait(timeout=60) for w in workers]
        end = time.time()
        record = DistributedRun(
            run_dir=run_dir,
            master_code=master.returncode,
            master_output=(tmp / "master.log").read_text(errors="replace"),
            worker_codes=worker_codes,
            killed_worker_pid=killed.pid,
            prometheus_config=config,
            exposed=exposed,
        )
        assert prom.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
        client = stack.enter_context(httpx.Client())
        for path in sorted(DASHBOARDS.glob("*.json")):
            dashboard = load_dashboard(path)
            record.series[path.stem], record.statuses[path.stem] = {}, {}
            for expr in expressions(dashboard):
                status, n = query_range(client, base, concrete(expr, dashboard), started, end)
                record.statuses[path.stem][expr] = status
                record.series[path.stem][expr] = n
    return record


def run_json(run: DistributedRun) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run.run_dir / "run.json").read_text())
    return data
