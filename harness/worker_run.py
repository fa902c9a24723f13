"""``harness run SCENARIO --worker --master-host HOST``: one Locust worker for a master elsewhere.

The worker runs Locust's own ``--worker`` with the same locustfile and scenario as the master
(``harness run SCENARIO --master`` on the master's host). It writes nothing itself: its samples
go to the master every second, which writes them into its run directory, one file per worker.
Before Locust starts, the master's port must accept a connection; otherwise one line names the
host and port (Locust's own worker would retry for minutes).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.net import DEFAULT_MASTER_PORT, check_master_reachable
from harness.run import API_LOCUSTFILE, SCENARIOS, default_sigint
from harness.scenario import find_scenario, load_scenario

# How long a worker gets to finish its last batch after Ctrl-C before it is killed.
WORKER_STOP_GRACE_S = 30.0


@dataclass
class WorkerOptions:
    """What ``harness run --worker`` was asked to do."""

    scenario: str
    master_host: str
    master_port: int = DEFAULT_MASTER_PORT
    locustfile: Path = API_LOCUSTFILE
    locust_args: list[str] = field(default_factory=list)


def worker_command(opts: WorkerOptions, scenario_path: Path) -> list[str]:
    """The Locust command line of one worker."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{opts.locustfile},{scenario_path}",
        "--worker",
        "--master-host",
        opts.master_host,
        "--master-port",
        str(opts.master_port),
        *opts.locust_args,
    ]


def check_role(*, master: bool, worker: bool, master_host: str | None) -> None:
    """One role per process, and a worker knows where its master is."""
    if master and worker:
        raise ConfigError("--master and --worker exclude each other: one role per process")
    if worker and not master_host:
        raise ConfigError("--worker needs --master-host: the host where `--master` runs")
    if master_host and not worker:
        raise ConfigError("--master-host is for --worker; the master listens on --master-port")


def run_worker(opts: WorkerOptions) -> int:
    """Run one worker until its master ends the run; Locust's exit code."""
    if not opts.locustfile.is_file():
        raise ConfigError(f"locustfile {opts.locustfile} does not exist")
    # The same scenario file as the master's: a typo fails here, before joining the run.
    scenario = load_scenario(find_scenario(opts.scenario, SCENARIOS))
    check_master_reachable(opts.master_host, opts.master_port)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    proc = subprocess.Popen(
        worker_command(opts, scenario.source),
        start_new_session=True,
        preexec_fn=default_sigint,  # before any thread starts in this process
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C: the worker stops in order (its last batch goes to the master), then exits.
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=WORKER_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
