"""Distributed runs without Docker: ``harness run --master`` and ``--worker`` on localhost.

The run (``distributed_run``, see ``tests/harness/distributed_run.py``): a master and two
worker processes on 127.0.0.1 against the reference API, one worker's Locust killed once
both have sent samples. Samples from both land in the master's run directory; the killed one
is reported in run.json, the verdict and the report, with the samples it sent kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.load import load_run
from harness.analysis.report import analyse, render_markdown
from harness.errors import ConfigError
from harness.lost_workers import describe, warnings_of
from harness.target.server import free_port
from harness.worker_run import check_role
from tests.harness.distributed_run import (
    HARNESS,
    SCENARIO,
    DistributedRun,
    one_shot,
    rows_per_worker,
    run_json,
    worker_command,
)

LOOPBACK = "127.0.0.1"


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "distributed.py"
    path.write_text(SCENARIO)
    return path


def test_samples_from_both_workers_land_in_the_masters_run(
    distributed_run: DistributedRun,
) -> None:
    assert distributed_run.master_code == 0, distributed_run.master_output[-3000:]
    counts = rows_per_worker(distributed_run.run_dir)
    assert len(counts) == 2 and min(counts.values()) > 20
    assert len(list((distributed_run.run_dir / "samples").glob("*.arrows"))) == 2
    run = run_json(distributed_run)
    assert sorted(run["workers"]) == sorted(counts)
    assert run["locust"]["runner"] == "master"
    verdict = json.loads((distributed_run.run_dir / "verdict.json").read_text())
    assert verdict["samples"] == sum(counts.values()) and not verdict["partial"]


def test_the_killed_worker_is_reported_and_its_samples_are_kept(
    distributed_run: DistributedRun,
) -> None:
    killed, survivor = distributed_run.worker_codes
    assert killed != 0  # its Locust was killed
    assert survivor == 0  # the master ended it in order
    counts = rows_per_worker(distributed_run.run_dir)
    [lost] = run_json(distributed_run)["lost_workers"]
    assert lost["worker"] in counts
    assert lost["samples_kept"] == counts[lost["worker"]]  # all it sent before it died
    assert lost["seconds_into_run"] > 0
    [other] = set(counts) - {lost["worker"]}
    assert counts[other] > counts[lost["worker"]]  # the other went on to the end
    warning = describe(lost)
    verdict = json.loads((distributed_run.run_dir / "verdict.json").read_text())
    assert warning in verdict["warnings"]
    assert "stopped answering the master" in distributed_run.master_output
    run = load_run(distributed_run.run_dir)
    assert warning in render_markdown(run, analyse(run, draw=False))
    assert distributed_run.series["load-run"]["max(harness_load_lost_workers)"] == 1


def test_a_worker_that_cannot_reach_its_master_says_the_host_and_port_in_one_line(
    scenario: Path,
) -> None:
    port = free_port()  # nothing listens there
    done = one_shot(worker_command(scenario, port))
    assert done.returncode == ConfigError.exit_code
    [line] = done.stderr.strip().splitlines()
    assert f"cannot reach the Locust master at {LOOPBACK}:{port}" in line


@pytest.mark.parametrize(
    ("roles", "says"),
    [
        ({"master": True, "worker": True, "master_host": LOOPBACK}, "exclude each other"),
        ({"master": False, "worker": True, "master_host": None}, "--worker needs --master-host"),
        ({"master": False, "worker": False, "master_host": LOOPBACK}, "is for --worker"),
    ],
)
def test_roles_that_do_not_fit_are_refused(roles: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        check_role(**roles)


def test_a_master_with_local_processes_fails_in_one_line_before_anything_starts(
    scenario: Path, tmp_path: Path
) -> None:
    runs = str(tmp_path / "runs")
    done = one_shot(
        [*HARNESS, "run", str(scenario), "--master", "--processes", "2", "--runs-dir", runs]
    )
    assert done.returncode == ConfigError.exit_code
    [line] = done.stderr.strip().splitlines()
    assert "--master waits for workers started elsewhere; drop --processes" in line
    assert not (tmp_path / "runs").exists()


def test_a_lost_worker_reads_as_one_warning() -> None:
    entry = {"worker": "host_ab12", "seconds_into_run": 8.25, "samples_kept": 1234}
    assert describe(entry) == (
        "worker host_ab12 stopped answering the master 8.2 s into the run; its 1,234 samples "
        "up to then are kept, and the load it ran after that is missing"
    )
    assert warnings_of({"lost_workers": [entry]}) == [describe(entry)]
    assert warnings_of({}) == []
