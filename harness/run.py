"""``harness run SCENARIO``: a target, a run directory, Locust headless, a verdict.

With no ``--target`` it starts the reference API itself, on a generated dataset with the
embedded Redis (SQLite by default, ``--backend postgres`` for the embedded PostgreSQL), and
stops it after. Locust runs as a child process (it monkey-patches with gevent); its own CSV
and HTML go to ``locust/``; the samples, ``run.json`` and ``verdict.json`` are written by
:mod:`harness.locust_hooks` inside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness import __version__
from harness.arrivals import ARRIVAL_MODES
from harness.errors import EXIT_GENERATOR_LIMITED, ConfigError, HarnessError
from harness.net import ALL_INTERFACES, DEFAULT_MASTER_PORT, check_port_free
from harness.run_dirs import new_run_dir
from harness.scenario import Scenario, check_max_inflight, find_scenario, load_scenario
from harness.sla import EXIT_PARTIAL, EXIT_SLA_FAILED, parse_slas
from harness.urls import is_postgres, mask_url

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
LOCUSTFILES = REPO / "locustfiles"
API_LOCUSTFILE = LOCUSTFILES / "api.py"
# --quick: a 10x shorter run with a fifth of the users (steady: 20 users for about a minute).
QUICK_TIME_SCALE = 0.1
QUICK_USERS_SCALE = 0.2
PREFLIGHT_TIMEOUT_S = 5.0
STOP_GRACE_S = 60.0


class RunFailedError(HarnessError):
    """Locust ended without a verdict (a crash, a bad locustfile)."""

    exit_code = 1


@dataclass
class RunOptions:
    """What ``harness run`` was asked to do."""

    scenario: str
    target: str | None = None
    backend: str = "sqlite"
    locustfile: Path = API_LOCUSTFILE
    user_classes: list[str] = field(default_factory=list)
    time_scale: float | None = None
    users_scale: float | None = None
    quick: bool = False
    slas: list[str] = field(default_factory=list)
    processes: int | None = None
    abort_on_sla: bool = False
    runs_dir: Path = Path("runs")
    dataset: Path | None = None
    redis: str | None = None
    pg: str | None = None
    pool_size: int | None = None
    #: ``HARNESS_API_*`` settings for the reference API this run starts (not for a target).
    api_env: dict[str, str] = field(default_factory=dict)
    locust_args: list[str] = field(default_factory=list)
    # Open-model scenarios (stages with a rate): see harness.users.open_model.
    rate: float | None = None
    duration: float | None = None
    max_inflight: int | None = None
    arrivals: str | None = None

    def open_model_args(self) -> list[str]:
        """``--rate``, ``--duration``, ``--max-inflight``, ``--arrivals`` for Locust."""
        args: list[str] = []
        if self.rate is not None:
            args += ["--rate", repr(float(self.rate))]
        if self.duration is not None:
            args += ["--duration", repr(float(self.duration))]
        if self.max_inflight is not None:
            args += ["--max-inflight", str(self.max_inflight)]
        if self.arrivals is not None:
            args += ["--arrivals", self.arrivals]
        return args

    # Live metrics and distribution over hosts (see harness.live_metrics, harness.worker_run).
    prometheus_port: int | None = None
    prometheus_host: str = ALL_INTERFACES
    master: bool = False
    expect_workers: int = 1
    master_bind_host: str = "*"
    master_port: int = DEFAULT_MASTER_PORT

    def scales(self) -> tuple[float, float]:
        ts = (
            self.time_scale
            if self.time_scale is not None
            else (QUICK_TIME_SCALE if self.quick else 1.0)
        )
        us = (
            self.users_scale
            if self.users_scale is not None
            else (QUICK_USERS_SCALE if self.quick else 1.0)
        )
        return ts, us


@dataclass
class RunResult:
    run_dir: Path
    verdict: dict[str, Any]
    exit_code: int


def _check_http_target(url: str) -> None:
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=PREFLIGHT_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"target {mask_url(url)} is unreachable ({type(exc).__name__}); start it, or omit "
            "--target to let harness run start the reference API"
        ) from None
    if response.status_code >= 500:
        raise ConfigError(
            f"target {mask_url(url)} answers /health with {response.status_code}; "
            "fix the target before loading it"
        )


def preflight_target(target: str) -> None:
    """Fail before any load starts when the target cannot be reached."""
    if target.startswith(("http://", "https://")):
        _check_http_target(target)
    elif is_postgres(target):
        from harness.services import check_postgres

        check_postgres(target)
    else:
        from harness.target.db import check_sqlite_file
        from harness.urls import sqlite_path

        check_sqlite_file(sqlite_path(target))


def _preflight_ports(opts: RunOptions) -> None:
    """A port this run must listen on and cannot: one line naming it, before any load."""
    if opts.prometheus_port is not None:
        check_port_free("--prometheus-port", opts.prometheus_host, opts.prometheus_port)
    if opts.master and opts.processes:
        raise ConfigError("--master waits for workers started elsewhere; drop --processes")
    if opts.master:
        bind = "" if opts.master_bind_host == "*" else opts.master_bind_host
        check_port_free("--master-port", bind, opts.master_port)


def _announce_endpoints(opts: RunOptions, console: Any) -> None:
    """Where the live metrics are served and how workers join, for the person running it."""
    if opts.prometheus_port is not None:
        host = opts.prometheus_host
        shown = "127.0.0.1" if host in ("", ALL_INTERFACES) else host
        console.print(f"live metrics: http://{shown}:{opts.prometheus_port}/metrics")
    if opts.master:
        console.print(
            f"waiting for {opts.expect_workers} worker(s) on port {opts.master_port}: "
            f"harness run {opts.scenario} --worker --master-host THIS_HOST "
            f"--master-port {opts.master_port}"
        )


def _run_dir(runs_dir: Path, scenario: Scenario) -> Path:
    path = new_run_dir(runs_dir, scenario.name)
    path.mkdir(parents=True)
    return path


@contextlib.contextmanager
def _embedded_services(opts: RunOptions, need_pg: bool) -> Iterator[tuple[str | None, str]]:
    """Redis (and PostgreSQL when needed) for the reference API; the embedded ones this run
    started are stopped after it, the ones already running or given by URL are left alone."""
    from harness import config, services

    home = config.home()
    started: list[Any] = []
    for wanted, name, given, cls in (
        (True, "redis_url", opts.redis, services.EmbeddedRedis),
        (need_pg, "pg_url", opts.pg, services.EmbeddedPostgres),
    ):
        if wanted and not config.setting(name, given):
            server = cls(home)
            if server.status() is None:
                started.append(server)
    try:
        redis = services.redis_url(opts.redis)
        pg = services.postgres_url(opts.pg) if need_pg else None
        yield pg, redis
    finally:
        for server in started:
            server.stop()


@contextlib.contextmanager
def _target(opts: RunOptions, run_dir: Path, console: Any) -> Iterator[tuple[str, str]]:
    """Yield (target URL, backend description); start the reference API when none is given.

    The API serves a private copy of the dataset (a file copy, or a database cloned from a
    seeded template), so the writes of one run never change what the next run reads.
    """
    if opts.target:
        yield opts.target, "given"
        return
    from harness.target.launch import default_dataset
    from harness.target.process import reference_api
    from harness.target.seed import clone_database, drop_database, ensure_seeded

    if opts.backend not in {"sqlite", "postgres"}:
        raise ConfigError(f"--backend must be sqlite or postgres, not {opts.backend!r}")
    dataset = opts.dataset or default_dataset(console)
    if not dataset.is_file():
        raise ConfigError(f"--dataset {dataset} does not exist; create it with harness dataset")
    with _embedded_services(opts, need_pg=opts.backend == "postgres") as (pg, redis):
        clone: str | None = None
        if opts.backend == "postgres":
            assert pg is not None
            if console is not None:
                console.print("seeding PostgreSQL with the dataset (once per dataset)")
            ensure_seeded(dataset, pg)
            clone = f"harness_run_{run_dir.name.lower().replace('-', '_')}"[:63]
            db = clone_database(pg, "harness_reference", clone)
        else:
            db = str(run_dir / "target.db")
            shutil.copyfile(dataset, db)
        try:
            with reference_api(
                db,
                redis_url=redis,
                log=run_dir / "api.log",
                pool_size=opts.pool_size,
                slow_log=run_dir / "slow_queries.jsonl",
                settings_env=opts.api_env,
            ) as url:
                yield url, f"reference API on {opts.backend} ({mask_url(str(dataset))})"
        finally:
            if clone is not None and pg is not None:
                drop_database(pg, clone)
            else:
                Path(db).unlink(missing_ok=True)


def locust_env(target: str) -> dict[str, str]:
    """The environment for Locust: a PostgreSQL target travels as ``HARNESS_PG_URL``."""
    env = dict(os.environ)
    if is_postgres(target):
        env["HARNESS_PG_URL"] = target
    return env


def locust_command(
    opts: RunOptions, scenario_path: Path, target: str, run_dir: Path, slas: list[str]
) -> list[str]:
    """The Locust command line ``harness run`` starts."""
    ts, us = opts.scales()
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{opts.locustfile},{scenario_path}",
        "--headless",
        # A database URL carries a password: it goes in the environment (locust_env), never
        # on the command line, where ps and Locust's HTML report would show it.
        *([] if is_postgres(target) else ["--host", target]),
        "--run-dir",
        str(run_dir),
        "--csv",
        str(run_dir / "locust" / "stats"),
        "--html",
        str(run_dir / "locust" / "report.html"),
        "--exit-code-on-error",
        "0",  # errors are judged by the SLAs, not by Locust
        "--only-summary",
        "--time-scale",
        str(ts),
        "--users-scale",
        str(us),
    ]
    for sla in slas:
        cmd += ["--sla", sla]
    if opts.processes:
        # A free master port: another run on this machine may hold Locust's default 5557.
        from harness.target.server import free_port

        port = str(free_port())
        cmd += [
            "--processes",
            str(opts.processes),
            "--master-bind-port",
            port,
            "--master-port",
            port,
        ]
    if opts.master:
        cmd += [
            "--master",
            "--master-bind-host",
            opts.master_bind_host,
            "--master-bind-port",
            str(opts.master_port),
            "--expect-workers",
            str(opts.expect_workers),
        ]
    if opts.prometheus_port is not None:
        cmd += ["--prometheus-port", str(opts.prometheus_port)]
        cmd += ["--prometheus-host", opts.prometheus_host]
    if opts.abort_on_sla:
        cmd.append("--abort-on-sla")
    cmd += opts.open_model_args()
    return cmd + opts.locust_args + opts.user_classes


def _progress_line(run_dir: Path, planned: float) -> str | None:
    try:
        p = json.loads((run_dir / "progress.json").read_text())
    except (OSError, ValueError):
        return None
    p95 = f"{p['p95_ms']:.1f} ms" if p.get("p95_ms") is not None else "-"
    return (
        f"{p['elapsed_s']:6.1f}/{planned:.0f} s  stage {p['stage']:<10} users {p['users']:>4}"
        f"  {p['rps']:7.1f} req/s  p95(10 s) {p95:>10}  requests {p['requests']:,}"
        f"  failures {p['failures']:,}"
    )


def default_sigint() -> None:
    """In a child: take SIGINT's default back. A process started from a background job
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt, which is how
    Locust stops in order (stop the users, flush, judge, quit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_locust(proc: subprocess.Popen[bytes]) -> None:
    """Stop Locust the way Ctrl-C does (SIGINT to its master); kill it if it hangs."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _watch(proc: subprocess.Popen[bytes], run_dir: Path, planned: float, console: Any) -> bool:
    """Show live progress until Locust exits; True when interrupted by Ctrl-C."""
    from rich.live import Live
    from rich.markup import escape

    interrupted = False
    live = Live(console=console, refresh_per_second=2, transient=True) if console else None
    last_plain = 0.0
    with live if live is not None else contextlib.nullcontext():
        while proc.poll() is None:
            try:
                time.sleep(0.5)
            except KeyboardInterrupt:
                interrupted = True
                # A second Ctrl-C while Locust finishes must not orphan it.
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    _stop_locust(proc)
                finally:
                    signal.signal(signal.SIGINT, previous)
                break
            line = _progress_line(run_dir, planned)
            if line:
                line = escape(line)
            if line and live is not None:
                if console.is_terminal:
                    live.update(line)
                elif time.monotonic() - last_plain > 15:
                    console.print(line)
                    last_plain = time.monotonic()
    return interrupted


def run(opts: RunOptions, console: Any = None) -> RunResult:
    """Run one scenario end to end and return its verdict."""
    scenario = load_scenario(find_scenario(opts.scenario, SCENARIOS))
    if not opts.locustfile.is_file():
        raise ConfigError(f"locustfile {opts.locustfile} does not exist")
    ts, us = opts.scales()
    plan = scenario.scaled(ts, us)
    if opts.rate is not None or opts.duration is not None:
        plan = plan.overridden(rate=opts.rate, duration=opts.duration)  # bad values fail here
    if opts.max_inflight is not None or opts.arrivals is not None:
        if not plan.open_model:
            raise ConfigError(
                f"--max-inflight and --arrivals need an open-model scenario, and "
                f"{scenario.name!r} sets users; use constant_rate, ramping_rate or spike_rate"
            )
        if opts.max_inflight is not None:
            check_max_inflight(opts.max_inflight)
        if opts.arrivals is not None and opts.arrivals not in ARRIVAL_MODES:
            raise ConfigError(
                f"--arrivals must be one of {', '.join(ARRIVAL_MODES)}, not {opts.arrivals!r}"
            )
    # The reference API's own SLAs are added by the hooks whenever ApiUser runs.
    slas = list(opts.slas)
    parse_slas([*slas, *scenario.slas])  # a typo fails here, before anything starts
    if opts.target:
        preflight_target(opts.target)  # before the run directory: a dead target leaves nothing
    _preflight_ports(opts)
    run_dir = _run_dir(opts.runs_dir, scenario)
    with _target(opts, run_dir, console) as (target, backend):
        (run_dir / "run.json").write_text(
            json.dumps(
                {
                    "scenario": {"name": scenario.name, "file": str(scenario.source)},
                    "target": mask_url(target),
                    "backend": backend,
                    "command": "harness run",
                    "harness_version": __version__,
                    "planned_duration_s": plan.duration,
                },
                indent=2,
            )
        )
        cmd = locust_command(opts, scenario.source, target, run_dir, slas)
        (run_dir / "locust").mkdir(exist_ok=True)
        if console is not None:
            console.print(
                f"run {run_dir}: {scenario.name} x{ts:g} time x{us:g} users "
                f"(~{plan.duration:.0f} s) against {mask_url(target)}"
            )
            _announce_endpoints(opts, console)
        # A process started in the background inherits SIGINT ignored; Ctrl-C must still work.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        with (run_dir / "locust" / "locust.log").open("wb") as log:
            # Own session: a terminal's Ctrl-C reaches harness run, which stops Locust in order.
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=locust_env(target),
                start_new_session=True,
                preexec_fn=default_sigint,  # before any thread starts in this process
            )
            try:
                interrupted = _watch(proc, run_dir, plan.duration, console)
            finally:
                _stop_locust(proc)
                signal.signal(signal.SIGINT, previous)
    verdict_path = run_dir / "verdict.json"
    if not verdict_path.exists():
        tail = (run_dir / "locust" / "locust.log").read_text(errors="replace").strip()
        last = " | ".join(tail.splitlines()[-3:])
        raise RunFailedError(
            f"Locust exited with code {proc.returncode} before a verdict "
            f"({last}); full log: {run_dir / 'locust' / 'locust.log'}"
        )
    if proc.returncode not in (0, EXIT_SLA_FAILED, EXIT_PARTIAL, EXIT_GENERATOR_LIMITED):
        tail = (run_dir / "locust" / "locust.log").read_text(errors="replace").strip()
        last = " | ".join(tail.splitlines()[-3:])
        raise RunFailedError(
            f"Locust exited with code {proc.returncode} ({last}); full log: "
            f"{run_dir / 'locust' / 'locust.log'}"
        )
    verdict = json.loads(verdict_path.read_text())
    if interrupted:
        verdict["partial"] = True
    if verdict.get("partial"):
        code = EXIT_PARTIAL
    elif verdict.get("generator_limited"):
        code = EXIT_GENERATOR_LIMITED
    else:
        code = 0 if verdict.get("passed") else EXIT_SLA_FAILED
    return RunResult(run_dir=run_dir, verdict=verdict, exit_code=code)
