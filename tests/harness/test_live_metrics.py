"""Live metrics as Prometheus and Grafana see them, from a real short run on loopback.

One run serves every check here: the reference API (with Redis) and ``harness run`` with a
master and one worker process and ``--prometheus-port``, all on 127.0.0.1; the real
``prometheus`` binary (Debian's package) scrapes both every second with the repository's
``prometheus.yml`` pointed at loopback. The run is bounded by its scenario and stopped with
Ctrl-C as soon as every dashboard query has returned data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.errors import ConfigError
from harness.run import default_sigint
from harness.target.server import free_port, running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR
from tests.dashboards import (
    DASHBOARDS,
    concrete,
    expressions,
    load_dashboard,
    metric_names,
)

REPO = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness"]
LOOPBACK = "127.0.0.1"
# Bounds: the scenario's 40 s of load, and how long the test waits for anything at all.
SCENARIO = '''"""Two stages for the live metrics test."""
from harness.shapes import ScenarioShape

STAGES = [
    {"name": "warm", "duration": 20, "users": 3, "ramp": 1},
    {"name": "busy", "duration": 20, "users": 5, "ramp": 1},
]


class LiveMetrics(ScenarioShape):
    """Three users, then five."""
'''
WAIT_S = 90.0
ENV = {
    **os.environ,
    "HARNESS_THINK_TIME": "0.02-0.05",
    "HARNESS_SLA": "",
    "HARNESS_NO_DEFAULT_SLAS": "1",
}


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    return found


def loopback_config(metrics_port: int, api_base: str) -> dict[str, Any]:
    """The repository's prometheus.yml with its compose targets on loopback, scraped every
    second; the exporter's job is left out (no exporter runs here)."""
    config: dict[str, Any] = yaml.safe_load((REPO / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    targets = {
        "locust": f"{LOOPBACK}:{metrics_port}",
        "api": api_base.removeprefix("http://"),
    }
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return config


@dataclass
class Observed:
    """What the test saw while the run went on."""

    answered: dict[str, int] = field(default_factory=dict)  # expression -> series returned
    unanswered: list[str] = field(default_factory=list)
    postgres_status: dict[str, str] = field(default_factory=dict)
    exposed: set[str] = field(default_factory=set)  # sample names the master and API exposed
    promtool: str = ""
    run_code: int | None = None
    run_dir: Path | None = None


def _query(base: str, expr: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5)
    body: dict[str, Any] = response.json()
    return body


def _sample_names(url: str) -> set[str]:
    text = httpx.get(url, timeout=5).text
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer")


@pytest.fixture(scope="module")
def observed(
    reference_db: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    prometheus = _prometheus_binary()
    tmp = tmp_path_factory.mktemp("live")
    db = tmp / "api.db"
    shutil.copyfile(reference_db, db)
    scenario = tmp / "live_metrics.py"
    scenario.write_text(SCENARIO)
    load = {p.stem: load_dashboard(p) for p in sorted(DASHBOARDS.glob("*.json"))}
    wanted = [
        concrete(e, load[name])
        for name in ("load-run", "reference-api")
        for e in expressions(load[name])
    ]
    postgres = [concrete(e, load["postgresql"]) for e in expressions(load["postgresql"])]
    seen = Observed()
    metrics_port, prometheus_port = free_port(), free_port()
    settings = ApiSettings(db=str(db), now=ANCHOR, redis_url=redis_url)
    with running_api(settings) as api:
        config = tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump(loopback_config(metrics_port, api)))
        promtool = subprocess.run(
            ["promtool", "check", "config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        seen.promtool = promtool.stdout + promtool.stderr if promtool.returncode else ""
        run = subprocess.Popen(
            [
                *HARNESS,
                "run",
                str(scenario),
                "--target",
                api,
                "--processes",
                "1",
                "--prometheus-port",
                str(metrics_port),
                "--prometheus-host",
                LOOPBACK,
                "--sla",
                "p95<500ms",
                "--sla",
                "p99<1s",
                "--runs-dir",
                str(tmp / "runs"),
                "--no-report",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=default_sigint,
        )
        prom_log = tmp / "prometheus.log"
        with prom_log.open("wb") as log:
            prom = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address={LOOPBACK}:{prometheus_port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://{LOOPBACK}:{prometheus_port}"
        try:
            _wait_ready(f"{base}/-/ready", prom, prom_log)
            pending = list(wanted)
            deadline = time.monotonic() + WAIT_S
            while pending and run.poll() is None and time.monotonic() < deadline:
                time.sleep(1.0)
                for expr in list(pending):
                    result = _query(base, expr)
                    if result.get("status") == "success" and result["data"]["result"]:
                        seen.answered[expr] = len(result["data"]["result"])
                        pending.remove(expr)
            seen.unanswered = pending
            if run.poll() is None:
                seen.exposed = _sample_names(f"http://{LOOPBACK}:{metrics_port}/metrics")
            seen.exposed |= _sample_names(f"{api}/metrics/prometheus")
            for expr in postgres:
                seen.postgres_status[expr] = str(_query(base, expr).get("status"))
        finally:
            run.send_signal(signal.SIGINT)
            try:
                out, _ = run.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                run.kill()
                out, _ = run.communicate()
            prom.terminate()
            prom.wait(timeout=30)
    seen.run_code = run.returncode
    runs = list((tmp / "runs").iterdir()) if (tmp / "runs").is_dir() else []
    seen.run_dir = runs[0] if runs else None
    if seen.unanswered:
        print(out.decode(errors="replace")[-3000:])
    yield seen


def test_the_loopback_variant_of_prometheus_yml_passes_promtool(observed: Observed) -> None:
    assert observed.promtool == ""


def test_every_load_run_and_api_dashboard_query_returns_data(observed: Observed) -> None:
    assert not observed.unanswered, "no data for:\n" + "\n".join(observed.unanswered)
    assert len(observed.answered) >= 20
    # Per-endpoint panels show one series per endpoint the traffic called.
    per_endpoint = [e for e in observed.answered if "by (method, name)" in e]
    assert per_endpoint and all(observed.answered[e] > 3 for e in per_endpoint)


def test_every_metric_a_load_or_api_dashboard_uses_is_exposed(observed: Observed) -> None:
    used = set()
    for name in ("load-run", "reference-api"):
        for expr in expressions(load_dashboard(DASHBOARDS / f"{name}.json")):
            used |= metric_names(expr)
    assert observed.exposed, "the master's and the API's metrics were not read"
    assert used <= observed.exposed, sorted(used - observed.exposed)


def test_the_postgresql_queries_are_valid_promql(observed: Observed) -> None:
    # No exporter runs here: Prometheus parses and evaluates them (to no data).
    assert observed.postgres_status
    assert set(observed.postgres_status.values()) == {"success"}, observed.postgres_status


def test_the_run_still_ends_with_its_verdict(observed: Observed) -> None:
    assert observed.run_dir is not None
    verdict = json.loads((observed.run_dir / "verdict.json").read_text())
    assert verdict["samples"] > 0
    run = json.loads((observed.run_dir / "run.json").read_text())
    assert len(run["workers"]) == 1 and run["lost_workers"] == []


# -- a port already in use ----------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_harness_run_names_a_taken_metrics_port_and_the_option_before_any_load(
    taken_port: int, tmp_path: Path
) -> None:
    scenario = tmp_path / "live_metrics.py"
    scenario.write_text(SCENARIO)
    done = subprocess.run(
        [
            *HARNESS,
            "run",
            str(scenario),
            "--prometheus-port",
            str(taken_port),
            "--prometheus-host",
            LOOPBACK,
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == ConfigError.exit_code
    [line] = done.stderr.strip().splitlines()
    assert f"--prometheus-port {taken_port}: the port is already in use on {LOOPBACK}" in line
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written


def test_plain_locust_names_a_taken_metrics_port_in_one_line(
    taken_port: int, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(REPO / "locustfiles" / "api.py"),
            "--headless",
            "--host",
            "http://127.0.0.1:1",
            "-u",
            "1",
            "-t",
            "1",
            "--run-dir",
            str(tmp_path / "run"),
            "--prometheus-port",
            str(taken_port),
            "--prometheus-host",
            LOOPBACK,
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == ConfigError.exit_code
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: --prometheus-port {taken_port}: the port is already in use on {LOOPBACK}; "
        "pass a free port to --prometheus-port or stop what listens there"
    ]
    assert "Traceback" not in done.stderr
