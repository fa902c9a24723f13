"""Live metrics as Prometheus and Grafana see them, from a real short run on loopback.

The run (``distributed_run``, see ``tests/harness/distributed_run.py``): the reference API
with Redis, ``harness run --master --prometheus-port`` with two worker processes (one killed
mid-run), and the real ``prometheus`` binary (Debian's package) scraping the master and the
API every second with the repository's ``prometheus.yml`` pointed at loopback. Every
dashboard expression is then asked of Prometheus over the run's span, as Grafana asks it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.errors import ConfigError
from harness.target.server import free_port, running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR
from tests.dashboards import DASHBOARDS, expressions, load_dashboard, metric_names
from tests.harness.distributed_run import (
    ENV,
    HARNESS,
    SCENARIO,
    DistributedRun,
    one_shot,
    run_json,
    wait_for,
)
from tests.harness.test_load_runs import TINY

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


def test_the_loopback_variant_of_prometheus_yml_passes_promtool(
    distributed_run: DistributedRun,
) -> None:
    done = subprocess.run(
        ["promtool", "check", "config", str(distributed_run.prometheus_config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dashboard", ["load-run", "reference-api"])
def test_every_query_of_the_load_and_api_dashboards_returns_data(
    distributed_run: DistributedRun, dashboard: str
) -> None:
    series = distributed_run.series[dashboard]
    assert series, dashboard
    empty = [expr for expr, n in series.items() if n == 0]
    assert not empty, "no data for:\n" + "\n".join(empty)


def test_the_per_endpoint_panels_show_every_endpoint_the_traffic_called(
    distributed_run: DistributedRun,
) -> None:
    per_endpoint = [e for e in distributed_run.series["load-run"] if "method, name)" in e]
    assert len(per_endpoint) >= 5
    assert all(distributed_run.series["load-run"][e] > 3 for e in per_endpoint)


def test_every_metric_a_load_or_api_dashboard_uses_is_exposed(
    distributed_run: DistributedRun,
) -> None:
    used = set()
    for name in ("load-run", "reference-api"):
        for expr in expressions(load_dashboard(DASHBOARDS / f"{name}.json")):
            used |= metric_names(expr)
    exposed = distributed_run.exposed
    assert "harness_load_requests_total" in exposed and "harness_api_requests_total" in exposed
    assert used <= exposed, sorted(used - exposed)


def test_the_postgresql_queries_are_valid_promql(distributed_run: DistributedRun) -> None:
    # No exporter runs here: Prometheus parses and evaluates them, to no data.
    statuses = distributed_run.statuses["postgresql"]
    assert statuses and set(statuses.values()) == {"success"}, statuses


def test_the_run_still_ends_with_its_verdict_and_the_sla_lines(
    distributed_run: DistributedRun,
) -> None:
    run = run_json(distributed_run)
    assert run["slas"] == ["p95<500ms", "p99<1s"]
    assert (
        distributed_run.series["load-run"][
            'max by (sla) (harness_load_sla_threshold_seconds{metric="p95"})'
        ]
        == 1
    )


# -- a local run (no workers) --------------------------------------------------------------------


def test_a_local_run_serves_its_own_requests_by_stage_while_it_runs(
    reference_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "api.db"
    shutil.copyfile(reference_db, db)
    scenario = tmp_path / "tiny.py"
    scenario.write_text(TINY)
    port = free_port()
    with running_api(ApiSettings(db=str(db), now=ANCHOR)) as api:
        locust = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{REPO / 'locustfiles' / 'api.py'},{scenario}",
        ]
        args = ["--headless", "--host", api, "--run-dir", str(tmp_path / "run"), *_metrics_on(port)]
        proc = subprocess.Popen(
            [*locust, *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            families = wait_for(lambda: _busy_metrics(port), "requests in the busy stage")
        finally:
            proc.wait(timeout=120)
    assert proc.returncode == 0
    stages = {s.labels["stage"] for s in families["harness_load_requests"].samples}
    assert stages == {"warm", "busy"}
    [current] = [s for s in families["harness_load_stage"].samples if s.value == 1]
    assert current.labels["stage"] == "busy"
    assert families["harness_load_users"].samples[0].value > 0
    assert "harness_load_workers" not in families  # a local run has no workers


def _busy_metrics(port: int) -> dict[str, Any] | None:
    try:
        text = httpx.get(f"http://{LOOPBACK}:{port}/metrics", timeout=2).text
    except httpx.TransportError:
        return None
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families.get("harness_load_requests")
    busy = requests is not None and any(s.labels["stage"] == "busy" for s in requests.samples)
    return families if busy else None


# -- a port already in use ----------------------------------------------------------------------


def _metrics_on(port: int) -> list[str]:
    return ["--prometheus-port", str(port), "--prometheus-host", LOOPBACK]


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
    runs = tmp_path / "runs"
    done = one_shot(
        [*HARNESS, "run", str(scenario), *_metrics_on(taken_port), "--runs-dir", str(runs)]
    )
    assert done.returncode == ConfigError.exit_code
    [line] = done.stderr.strip().splitlines()
    assert f"--prometheus-port {taken_port}: the port is already in use on {LOOPBACK}" in line
    assert not runs.exists()  # nothing started, nothing written


def test_plain_locust_names_a_taken_metrics_port_in_one_line(
    taken_port: int, tmp_path: Path
) -> None:
    locustfile = str(REPO / "locustfiles" / "api.py")
    bounded = ["--headless", "-u", "1", "-t", "1", "--host", "http://127.0.0.1:1"]
    args = [*bounded, "--run-dir", str(tmp_path / "run"), *_metrics_on(taken_port)]
    done = one_shot([sys.executable, "-m", "locust", "-f", locustfile, *args])
    assert done.returncode == ConfigError.exit_code
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: --prometheus-port {taken_port}: the port is already in use on {LOOPBACK}; "
        "pass a free port to --prometheus-port or stop what listens there"
    ]
    assert "Traceback" not in done.stderr
