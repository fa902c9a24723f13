"""The ``harness`` command line: parses options and calls the library. No logic lives here."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import __version__
from harness.errors import HarnessError
from harness.net import ALL_INTERFACES, DEFAULT_MASTER_PORT

if TYPE_CHECKING:
    from migrate.plan import Plan

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="harness",
    help="Load testing and SQLite-to-PostgreSQL migration harness.\n\nExample: harness serve",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
services_app = typer.Typer(
    help="Embedded PostgreSQL and Redis for when no server is given.\n\n"
    "Example: harness services start",
    no_args_is_help=True,
)
app.add_typer(services_app, name="services")
migrate_app = typer.Typer(
    help="SQLite to PostgreSQL: plan the schema and casts, copy every row, check, roll back.\n\n"
    "Example: harness migrate run signals.db",
    no_args_is_help=True,
)
app.add_typer(migrate_app, name="migrate")
db_app = typer.Typer(
    help="Query profiler: slow statements, plans with full scans flagged, measured index "
    "advice.\n\nExample: harness db slow-queries runs/20261123T101500Z-steady",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

# Piped or in CI, rich would wrap at 80 columns and cut endpoint names in tables.
_WIDTH = None if sys.stdout.isatty() else 120
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)

# Options a team sets once: same name on the command line, in HARNESS_* and harness.toml.
PgOption = Annotated[
    str | None,
    typer.Option("--pg", help="PostgreSQL URL (else HARNESS_PG_URL, harness.toml, or embedded)."),
]
RedisOption = Annotated[
    str | None,
    typer.Option("--redis", help="Redis URL (else HARNESS_REDIS_URL, harness.toml, or embedded)."),
]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option(help="Cast a column yourself: table.column=pgtype; repeatable."),
]
TimezoneOption = Annotated[
    str | None,
    typer.Option(help="IANA zone of stored timestamps: they become timestamptz."),
]
HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Folder for embedded servers and state (default .harness)."),
]


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`HarnessError` into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            # Messages quote names from databases and files: never read them as markup.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Load testing and SQLite-to-PostgreSQL migration harness.

    Example: harness serve --db signals.db
    """


# -- services ----------------------------------------------------------------------------------


def _services_table(rows: list[tuple[str, str, str]]) -> Table:
    table = Table("service", "state", "url (password masked)")
    for row in rows:
        table.add_row(*row)
    return table


@services_app.command("start")
@reports_errors
def services_start(home: HomeOption = None, pg: PgOption = None, redis: RedisOption = None) -> None:
    """Start (or reuse) embedded PostgreSQL and Redis and print their URLs.

    Example: harness services start
    """
    from harness.services import start_all

    infos = start_all(home, pg=pg, redis=redis)
    out.print(
        _services_table(
            [(i.name, "running" if i.embedded else "configured", i.masked_url) for i in infos]
        )
    )


@services_app.command("status")
@reports_errors
def services_status(
    home: HomeOption = None, pg: PgOption = None, redis: RedisOption = None
) -> None:
    """Show whether the embedded servers are running.

    Example: harness services status
    """
    from harness.services import status_all

    rows = []
    for name, info in zip(("postgres", "redis"), status_all(home, pg=pg, redis=redis), strict=True):
        rows.append((name, "running", info.masked_url) if info else (name, "stopped", "-"))
    out.print(_services_table(rows))


@services_app.command("stop")
@reports_errors
def services_stop(home: HomeOption = None) -> None:
    """Stop the embedded servers (their data stays for the next start).

    Example: harness services stop
    """
    from harness.services import stop_all

    for name, stopped in zip(("postgres", "redis"), stop_all(home), strict=True):
        out.print(f"{name}: {'stopped' if stopped else 'was not running'}")


# -- dataset -----------------------------------------------------------------------------------


@app.command()
@reports_errors
def dataset(
    output: Annotated[Path, typer.Option("-o", "--output", help="SQLite file to write.")],
    artifacts: Annotated[
        int, typer.Option(help="Number of artifacts (rows scale with it).")
    ] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and anchor, same bytes.")] = 42,
    anchor: Annotated[
        str | None,
        typer.Option(help="'Now' for the data, YYYY-MM-DD (default: today, UTC)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Write the reference dataset: a realistic SQLite database of artifacts and their links.

    Example: harness dataset -o signals.db --artifacts 1000000 --seed 7
    """
    from harness.dataset import DatasetSpec, write_with_progress

    spec = DatasetSpec(artifacts=artifacts, seed=seed, anchor=_parse_anchor(anchor))
    summary = write_with_progress(output, spec, force=force, console=out)
    table = Table("table", "rows", title=f"{summary.path} ({summary.seconds:.1f} s)")
    for name, count in summary.rows.items():
        table.add_row(name, f"{count:,}")
    table.add_row("[bold]total", f"[bold]{summary.total_rows:,}")
    out.print(table)
    out.print(f"{summary.total_rows / summary.seconds:,.0f} rows/s")


def _parse_anchor(value: str | None) -> datetime:
    from harness.dataset import DatasetSpec
    from harness.errors import ConfigError

    if value is None:
        return DatasetSpec(artifacts=1).anchor
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise ConfigError(f"--anchor {value!r} is not a date like 2026-11-01") from None


# -- serve -------------------------------------------------------------------------------------


@app.command()
@reports_errors
def serve(
    db: Annotated[
        str | None,
        typer.Option(
            envvar="HARNESS_API_DB",
            help="SQLite file or postgresql:// URL (default: a generated dataset).",
        ),
    ] = None,
    redis: RedisOption = None,
    no_redis: Annotated[bool, typer.Option("--no-redis", help="Cache in-process only.")] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    pool_size: Annotated[
        int, typer.Option(envvar="HARNESS_API_POOL_SIZE", help="Database pool size per worker.")
    ] = 5,
    max_overflow: Annotated[
        int,
        typer.Option(
            envvar="HARNESS_API_MAX_OVERFLOW", help="Connections allowed beyond the pool."
        ),
    ] = 10,
    pool_timeout: Annotated[
        float,
        typer.Option(envvar="HARNESS_API_POOL_TIMEOUT", help="Seconds to wait for a connection."),
    ] = 30.0,
    admin_token: Annotated[
        str | None,
        typer.Option(help="Token for POST /cache/invalidate (else HARNESS_ADMIN_TOKEN)."),
    ] = None,
    slow_query_log: Annotated[
        Path | None,
        typer.Option(
            envvar="HARNESS_API_SLOW_LOG",
            help="Append statements slower than --slow-query-ms to this JSONL file.",
        ),
    ] = None,
    slow_query_ms: Annotated[
        float,
        typer.Option(envvar="HARNESS_API_SLOW_MS", help="Threshold of the slow-query log."),
    ] = 100.0,
) -> None:
    """Serve the reference API on a SQLite file or a PostgreSQL database.

    Example: harness serve --db signals.db --port 8000 --workers 2
    """
    from harness.target.launch import launch

    launch(
        db=db,
        redis=redis,
        no_redis=no_redis,
        host=host,
        port=port,
        workers=workers,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        admin_token=admin_token,
        slow_query_log=slow_query_log,
        slow_query_ms=slow_query_ms,
        console=out,
    )


# -- run ---------------------------------------------------------------------------------------


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@reports_errors
def run(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="steady, spike, endurance, stress, or a path.")],
    target: Annotated[
        str | None,
        typer.Option(help="URL to load (default: start the reference API for this run)."),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Reference API backend when no --target: sqlite or postgres.")
    ] = "sqlite",
    locustfile: Annotated[
        Path | None,
        typer.Option(help="Locustfile with the user classes (default: locustfiles/api.py)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="10x shorter with a fifth of the users: a run in ~1 minute.")
    ] = False,
    time_scale: Annotated[float | None, typer.Option(help="Multiply stage durations.")] = None,
    users_scale: Annotated[float | None, typer.Option(help="Multiply user counts.")] = None,
    sla: Annotated[
        list[str] | None,
        typer.Option(help="SLA like 'p95<500ms' or 'GET /discoveries:p99<1s'; repeatable."),
    ] = None,
    abort_on_sla: Annotated[
        bool, typer.Option(help="Stop early when an SLA is broken beyond recovery.")
    ] = False,
    processes: Annotated[int | None, typer.Option(help="Locust worker processes.")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder for run directories.")] = Path("runs"),
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset for the reference API (default: generated).")
    ] = None,
    pool_size: Annotated[
        int | None, typer.Option(help="Reference API's database pool size.")
    ] = None,
    pg: PgOption = None,
    redis: RedisOption = None,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Skip report.html/report.md/summary.json.")
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(help="Open model: iterations/s at the scenario's peak (stages scaled)."),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Length of the whole run, e.g. 90s or 10m (stages scaled).")
    ] = None,
    max_inflight: Annotated[
        int | None,
        typer.Option(help="Open model: iterations at once; beyond it, dropped and counted."),
    ] = None,
    arrivals: Annotated[
        str | None, typer.Option(help="Open model: 'even' or 'poisson' (seeded) arrivals.")
    ] = None,
    prometheus_port: Annotated[
        int | None,
        typer.Option(
            envvar="HARNESS_PROMETHEUS_PORT",
            help="Serve live Prometheus metrics of the run on this port (/metrics).",
        ),
    ] = None,
    prometheus_host: Annotated[
        str, typer.Option(help="Address the live metrics listen on.")
    ] = ALL_INTERFACES,
    master: Annotated[
        bool, typer.Option("--master", help="Be the Locust master; workers join from elsewhere.")
    ] = False,
    expect_workers: Annotated[
        int, typer.Option(help="With --master: workers to wait for before the load starts.")
    ] = 1,
    master_bind_host: Annotated[
        str, typer.Option(help="With --master: address to accept workers on (* = all).")
    ] = "*",
    master_port: Annotated[
        int, typer.Option(help="The master's port for workers (Locust's default).")
    ] = DEFAULT_MASTER_PORT,
    worker: Annotated[
        bool, typer.Option("--worker", help="Be a Locust worker of the master at --master-host.")
    ] = False,
    master_host: Annotated[
        str | None, typer.Option(help="With --worker: host where `--master` runs.")
    ] = None,
) -> None:
    """Run a load scenario: run directory, Locust headless, exact samples, SLA verdict, report.

    Extra arguments after the options go to Locust (e.g. a user class name).
    Exit codes: 0 every SLA held, 10 an SLA failed (or iterations were dropped), 11
    interrupted (partial verdict), 13 an open-model run was generator-limited.
    Across hosts: `--master --expect-workers 4` on one, `--worker --master-host HOST` on others.

    Example: harness run steady --quick; harness run constant_rate --rate 100 --duration 1m
    """
    from harness.run import API_LOCUSTFILE, RunOptions
    from harness.run import run as run_scenario
    from harness.scenario import parse_duration
    from harness.verdict import print_verdict
    from harness.worker_run import WorkerOptions, check_role, run_worker

    check_role(master=master, worker=worker, master_host=master_host)
    if worker:
        assert master_host is not None
        raise typer.Exit(
            run_worker(
                WorkerOptions(
                    scenario=scenario,
                    master_host=master_host,
                    master_port=master_port,
                    locustfile=locustfile or API_LOCUSTFILE,
                    locust_args=list(ctx.args),
                )
            )
        )
    options = RunOptions(
        scenario=scenario,
        target=target,
        backend=backend,
        locustfile=locustfile or API_LOCUSTFILE,
        time_scale=time_scale,
        users_scale=users_scale,
        quick=quick,
        slas=sla or [],
        processes=processes,
        abort_on_sla=abort_on_sla,
        runs_dir=runs_dir,
        dataset=dataset,
        redis=redis,
        pg=pg,
        pool_size=pool_size,
        locust_args=list(ctx.args),
        rate=rate,
        duration=None if duration is None else parse_duration(duration, "--duration"),
        max_inflight=max_inflight,
        arrivals=arrivals,
        prometheus_port=prometheus_port,
        prometheus_host=prometheus_host,
        master=master,
        expect_workers=expect_workers,
        master_bind_host=master_bind_host,
        master_port=master_port,
    )
    result = run_scenario(options, console=out)
    print_verdict(result.verdict, out)
    if not no_report:
        from harness.analysis.load import load_run
        from harness.analysis.report import write_report

        paths = write_report(load_run(result.run_dir))
        out.print(f"report: {paths['html']}")
    out.print(f"run directory: {result.run_dir}")
    raise typer.Exit(result.exit_code)


# -- analysis ----------------------------------------------------------------------------------

RunArgument = Annotated[
    Path, typer.Argument(help="A run directory, or Locust --csv prefix / --json-file output.")
]
OutOption = Annotated[Path | None, typer.Option("--out", help="Folder for the files written.")]


@app.command()
@reports_errors
def report(
    run: RunArgument,
    out_dir: OutOption = None,
    window: Annotated[
        float | None,
        typer.Option(help="Seconds per time window (default 10, shorter for short runs)."),
    ] = None,
) -> None:
    """Write report.html, report.md and summary.json: exact percentiles per endpoint and stage.

    Example: harness report runs/20261123T101500Z-spike
    """
    from harness.analysis.load import load_run
    from harness.analysis.report import write_report

    loaded = load_run(run)
    for warning in loaded.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    for kind, path in write_report(loaded, out_dir, window).items():
        out.print(f"{kind}: {path}")


@app.command()
@reports_errors
def compare(
    base: Annotated[Path, typer.Argument(help="The earlier (baseline) run.")],
    new: Annotated[Path, typer.Argument(help="The later run, judged against the baseline.")],
    tolerance: Annotated[
        float, typer.Option(help="Relative change that counts (0.10 = 10%).")
    ] = 0.10,
    error_tolerance: Annotated[
        float, typer.Option(help="Absolute change in error rate that counts.")
    ] = 0.01,
    confidence: Annotated[float, typer.Option(help="Confidence of the intervals.")] = 0.95,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    out_dir: OutOption = None,
) -> None:
    """Compare two runs per endpoint and stage, with confidence intervals; exit 12 on a regression.

    Example: harness compare runs/20261120T090000Z-steady runs/20261123T090000Z-steady
    """
    from harness.analysis.compare import compare_runs, write_comparison
    from harness.analysis.load import load_run

    result = compare_runs(
        load_run(base),
        load_run(new),
        tolerance=tolerance,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        error_tolerance=error_tolerance,
    )
    for warning in result.warnings:
        err.print(f"[yellow]not comparable?[/] {escape(warning)}", highlight=False)
    for line in result.regressions:
        out.print(f"[red]regression:[/] {escape(line)}", highlight=False)
    for line in result.improvements:
        out.print(f"[green]improvement:[/] {escape(line)}", highlight=False)
    for kind, path in write_comparison(result, out_dir or new).items():
        out.print(f"{kind}: {path}")
    raise typer.Exit(result.exit_code)


@app.command()
@reports_errors
def scale(
    runs: Annotated[
        list[Path], typer.Argument(help="A stress run, or several runs at different user counts.")
    ],
    sla: Annotated[str, typer.Option(help="The SLA that bounds the users.")] = "p95<500ms",
    out_dir: OutOption = None,
) -> None:
    """Throughput and latency against users, a Universal Scalability Law fit, users under the SLA.

    Example: harness scale runs/20261123T110000Z-stress --sla "p95<500ms"
    """
    from harness.analysis.load import load_run
    from harness.analysis.scale import scale_report, write_scale

    result = scale_report([load_run(r) for r in runs], sla)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    out.print(escape(result.summary))
    for kind, path in write_scale(result, out_dir or runs[0]).items():
        out.print(f"{kind}: {path}")


@app.command()
@reports_errors
def pools(
    pg: PgOption = None,
    driver: Annotated[
        str, typer.Option(help="psycopg (psycopg_pool, threads), asyncpg (asyncio) or both.")
    ] = "both",
    pool_sizes: Annotated[
        str | None,
        typer.Option(help="Pool sizes, comma-separated (default 1,2,4,8,(2 x cores)+5,16,32,64)."),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(help="Concurrent clients, comma-separated (default 10,50,100,200)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="A small grid and short cells: about a minute.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Measured seconds per cell (default 3, quick 1.5).")
    ] = None,
    warmup: Annotated[
        float | None, typer.Option(help="Warm-up seconds per cell (default 0.5).")
    ] = None,
    acquire_timeout: Annotated[
        float, typer.Option(help="Seconds a client waits for a connection before failing.")
    ] = 2.0,
    write_share: Annotated[
        float, typer.Option(help="Share of iterations that are ingestion transactions.")
    ] = 0.1,
    server_cores: Annotated[
        int | None,
        typer.Option(help="The server's cores, for the rules of thumb (default: this machine's)."),
    ] = None,
    spindles: Annotated[
        int, typer.Option(help="Effective spindle count in HikariCP's formula (SSD: 1).")
    ] = 1,
    dataset: Annotated[
        Path | None, typer.Option(help="Reference dataset to load (default: generated).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the parameter draws.")] = 42,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default runs/<UTC>-pools).")
    ] = None,
    home: HomeOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar across cells.")] = True,
    api: Annotated[
        bool,
        typer.Option(
            "--api", help="Sweep the reference API's SQLAlchemy pool under a Locust load instead."
        ),
    ] = False,
    scenario: Annotated[
        str, typer.Option(help="With --api: the scenario each run follows, shrunk.")
    ] = "steady",
    redis: RedisOption = None,
) -> None:
    """Find the connection-pool size that holds the SLA: pool sizes x concurrency, measured
    with psycopg_pool and asyncpg, the knee of each curve, the rules of thumb checked.

    Exit code 0, or 11 when interrupted (the cells already measured are reported).

    Example: harness pools --quick
    """
    from harness.analysis.pools_report import render_terminal
    from harness.pools import PoolsOptions, run_pools
    from harness.pools.grid import parse_drivers, parse_sizes

    options = PoolsOptions(
        pg=pg,
        dataset=dataset,
        drivers=parse_drivers(driver),
        pool_sizes=parse_sizes(pool_sizes, "pool-sizes") if pool_sizes else None,
        concurrencies=parse_sizes(concurrency, "concurrency") if concurrency else None,
        quick=quick,
        warmup_s=warmup,
        duration_s=duration,
        acquire_timeout_s=acquire_timeout,
        write_share=write_share,
        server_cores=server_cores,
        spindles=spindles,
        seed=seed,
        out_dir=out_dir,
        home=home,
        progress=progress,
        api=api,
        scenario=scenario,
        redis=redis,
    )
    result = run_pools(options, out)
    render_terminal(result.data, result.analysis, out)
    for kind, path in result.files.items():
        out.print(f"{kind}: {path}")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command()
@reports_errors
def rehearse(
    source: Annotated[
        Path | None, typer.Argument(help="Your SQLite database (default: a generated one).")
    ] = None,
    artifacts: Annotated[
        int, typer.Option(help="Size of the generated dataset when no file is given.")
    ] = 20_000,
    pg: PgOption = None,
    scenario: Annotated[str, typer.Option(help="Load scenario for baseline and candidate.")] = (
        "steady"
    ),
    quick: Annotated[bool, typer.Option(help="Shrink the scenario: minutes, not hours.")] = False,
    time_scale: Annotated[
        float | None, typer.Option(help="Scale the scenario's time (quick: 0.1).")
    ] = None,
    users_scale: Annotated[
        float | None, typer.Option(help="Scale the scenario's users (quick: 0.2).")
    ] = None,
    pool_size: Annotated[
        int | None, typer.Option(help="The API's pool on PostgreSQL (default: measured).")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="p95 change on a critical endpoint that blocks GO.")
    ] = 0.10,
    accept_rejects: Annotated[
        Path | None,
        typer.Option(help="Reject records (JSONL lines from rejects/) you accept for GO."),
    ] = None,
    from_step: Annotated[
        str | None, typer.Option("--from", help="Re-run from this step, reusing earlier ones.")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Rehearsal folder (default rehearsals/<UTC>; with --from, the latest)."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The whole migration rehearsal: audit, baseline load on SQLite, migrate, validate, pool
    sweep, the same load on PostgreSQL, compare, rollback drill, then GO or NO-GO.

    Exit code 0 for GO, 40 for NO-GO (every reason listed), another code when a step could
    not run.

    Example: harness rehearse --quick
    """
    from harness.rehearse import RehearseOptions
    from harness.rehearse import rehearse as run_rehearsal

    result = run_rehearsal(
        RehearseOptions(
            source=source,
            artifacts=artifacts,
            pg=pg,
            scenario=scenario,
            quick=quick,
            time_scale=time_scale,
            users_scale=users_scale,
            pool_size=pool_size,
            tolerance=tolerance,
            accept_rejects=accept_rejects,
            from_step=from_step,
            rehearsal_dir=directory,
            progress=progress,
        ),
        out if progress else None,
    )
    if result.go:
        out.print("[bold green]GO[/]: every check passed")
    else:
        out.print("[bold red]NO-GO[/]:")
        for reason in result.reasons:
            out.print(f"  - {escape(reason)}", highlight=False, soft_wrap=True)
    for kind, path in result.files.items():
        out.print(f"{kind}: {path}")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


# -- db ----------------------------------------------------------------------------------------

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="SQLite file or postgresql:// URL to plan and measure on."),
]


@db_app.command("slow-queries")
@reports_errors
def db_slow_queries(
    run_or_log: Annotated[Path, typer.Argument(help="A run directory or a slow-query log.")],
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Statements to show.")] = 20,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """The slowest statements of a run by total time, with count and p95; with --db, whether
    their plan reads a whole table.

    Example: harness db slow-queries runs/20261123T101500Z-steady --db signals.db
    """
    import json

    from harness.profiler.render import render_slow
    from harness.profiler.slow_queries import attach_plans, read_log

    log = read_log(run_or_log)
    if db:
        attach_plans(log, db, limit=limit)
    render_slow(log, out, limit)
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                [
                    {
                        "statement": s.statement,
                        "count": s.count,
                        "total_ms": s.total_ms,
                        "mean_ms": s.mean_ms,
                        "p95_ms": s.p95_ms,
                        "full_scans": s.full_scans,
                        "endpoints": s.endpoints,
                    }
                    for s in log.statements[:limit]
                ],
                indent=2,
            )
        )


@db_app.command("explain")
@reports_errors
def db_explain(
    statement: Annotated[str, typer.Argument(help="The SQL statement.")],
    db: Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL.")],
    param: Annotated[
        list[str] | None, typer.Option(help="A parameter value, in order; repeatable.")
    ] = None,
    analyze: Annotated[
        bool, typer.Option(help="Run it: actual times and buffers (PostgreSQL), time (SQLite).")
    ] = False,
) -> None:
    """The plan of a statement (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL), with
    whole-table scans flagged.

    Example: harness db explain "SELECT * FROM scores WHERE artifact_id = 7" --db signals.db
    """
    from harness.profiler.plans import explain
    from harness.profiler.render import render_plan

    values = [_param_value(p) for p in param] if param else None
    render_plan(explain(db, statement, values, analyze), out)


def _param_value(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@db_app.command("recommend-indexes")
@reports_errors
def db_recommend_indexes(
    run_or_log: Annotated[Path, typer.Argument(help="A run directory or a slow-query log.")],
    db: Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL.")],
    top: Annotated[int, typer.Option(help="Slowest statements to consider.")] = 10,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Candidate indexes for the slow statements that read a whole table, each measured
    (built in a rolled-back transaction on PostgreSQL, on a copy of a SQLite file).

    Example: harness db recommend-indexes runs/20261123T101500Z-steady --db signals.db
    """
    import json

    from harness.profiler.indexes import recommend
    from harness.profiler.render import advice_json, render_advice
    from harness.profiler.slow_queries import read_log

    advice = recommend(read_log(run_or_log), db, top)
    render_advice(advice, out)
    if json_out is not None:
        json_out.write_text(json.dumps(advice_json(advice), indent=2))


# -- migrate -----------------------------------------------------------------------------------


@migrate_app.command("plan")
@reports_errors
def migrate_plan(
    source: Annotated[Path, typer.Argument(help="The SQLite database to migrate (read only).")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write plan.sql and plan.json here (default: next to SOURCE)."),
    ] = None,
    override: OverrideOption = None,
    timezone: TimezoneOption = None,
    pg: Annotated[
        str | None,
        typer.Option("--pg", help="Also check this PostgreSQL target (read only)."),
    ] = None,
    schema: Annotated[str, typer.Option(help="Target schema to check with --pg.")] = "public",
) -> None:
    """Plan a migration, writing nothing to either database: PostgreSQL DDL, a cast per column.

    Example: harness migrate plan signals.db --override artifacts.metadata=json
    """
    from migrate.plan import make_plan, render_plan

    overrides = _overrides(override)
    plan = make_plan(source, overrides=overrides, timezone=timezone)
    render_plan(plan, out)
    folder = out_dir or source.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = source.stem
    (folder / f"{stem}.plan.sql").write_text(plan.ddl())
    (folder / f"{stem}.plan.json").write_text(plan.to_json())
    out.print(f"plan: {folder / f'{stem}.plan.sql'} and {folder / f'{stem}.plan.json'}")
    if pg is not None:
        _print_target(plan, pg, schema)


def _print_target(plan: Plan, pg: str, schema: str) -> None:
    from harness.services import check_postgres
    from harness.urls import mask_url
    from migrate.target import inspect_target

    check_postgres(pg)
    names = [t.name for t in plan.tables] + [v.name for v in plan.views]
    names += [i.name for t in plan.tables for i in t.indexes if i.sql]
    report = inspect_target(pg, schema, names)
    say = functools.partial(out.print, markup=False, highlight=False)
    say(
        f"target: {mask_url(pg)} (PostgreSQL {report.server_version}, user {report.user}, "
        f"schema {report.schema})"
    )
    for problem in report.problems:
        say(f"  problem: {problem}")
    if report.conflicts:
        found = ", ".join(f"{c.name} ({c.kind})" for c in report.conflicts)
        say(f"  already there: {found}; `migrate run` will need --if-exists replace")
    for run in report.unfinished:
        say(f"  unfinished migration: {run}; `migrate run --resume` finishes it")
    if not (report.problems or report.conflicts or report.unfinished):
        say("  ready: the user may create the schema's tables and nothing is in the way")


def _overrides(items: list[str] | None) -> dict[str, str]:
    from harness.errors import ConfigError

    overrides: dict[str, str] = {}
    for item in items or []:
        column, sep, pg_type = item.partition("=")
        if not sep or "." not in column or not pg_type.strip():
            raise ConfigError(f"--override {item!r}: write table.column=pgtype, e.g. a.b=jsonb")
        overrides[column.strip()] = pg_type.strip()
    return overrides


@migrate_app.command("run")
@reports_errors
def migrate_run(
    source: Annotated[Path, typer.Argument(help="The SQLite database to migrate (read only).")],
    pg: PgOption = None,
    schema: Annotated[str, typer.Option(help="PostgreSQL schema to create the tables in.")] = (
        "public"
    ),
    workers: Annotated[
        int | None, typer.Option(help="Processes copying tables in parallel (default: cores).")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Run directory (default runs/<UTC>-migrate-<name>)."),
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder for run directories.")] = Path("runs"),
    if_exists: Annotated[
        str | None,
        typer.Option(
            "--if-exists",
            help="When the target already has the tables: fail, or replace (drop them first).",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Finish the unfinished migration of SOURCE in this database.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Stop at the first rejected row.")] = False,
    override: OverrideOption = None,
    timezone: TimezoneOption = None,
    integrity: Annotated[
        str, typer.Option(help="SQLite check before reading: quick, full or none.")
    ] = "quick",
    chunk_rows: Annotated[
        int, typer.Option(help="Rows per committed chunk (the unit of resume).")
    ] = 100_000,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Copy a SQLite database into PostgreSQL: schema, every row, keys, indexes, views.

    Rows PostgreSQL cannot take go to rejects/<table>.jsonl with the reason; the exit code
    is 25 when any row was rejected, 30 when a planned object could not be created.

    Example: harness migrate run signals.db --pg postgresql://app@127.0.0.1/app
    """
    from harness.errors import ConfigError
    from migrate.run import MigrateOptions, run_migration
    from migrate.summary import render_result

    if if_exists not in (None, "fail", "replace"):
        raise ConfigError(f"--if-exists {if_exists!r}: use fail or replace")
    if integrity not in ("quick", "full", "none"):
        raise ConfigError(f"--integrity {integrity!r}: use quick, full or none")
    options = MigrateOptions(
        source=source,
        pg_url=pg,
        schema=schema,
        workers=workers,
        out_dir=out_dir,
        runs_dir=runs_dir,
        if_exists=if_exists,  # type: ignore[arg-type]
        resume=resume,
        strict=strict,
        overrides=_overrides(override),
        timezone=timezone,
        integrity=integrity,  # type: ignore[arg-type]
        chunk_rows=chunk_rows,
        progress=progress,
    )
    result = run_migration(options, out)
    render_result(result, out)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@migrate_app.command("status")
@reports_errors
def migrate_status(pg: PgOption = None) -> None:
    """Show where each migration recorded in the target database stands.

    Example: harness migrate status --pg postgresql://app@127.0.0.1/app
    """
    from harness.services import postgres_url
    from migrate.status import migration_status, render_status

    render_status(migration_status(postgres_url(pg)), out)


@migrate_app.command("rollback")
@reports_errors
def migrate_rollback(
    pg: PgOption = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="The run to undo (default: the newest).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop exactly what a migration created (its tables, views, schema) and its state.

    Example: harness migrate rollback --run 20261123T101500Z-migrate-signals-1a2b3c --yes
    """
    from harness.services import postgres_url
    from migrate.rollback import rollback_migration

    url = postgres_url(pg)
    if not yes and not typer.confirm("Drop every table and view this migration created?"):
        raise typer.Exit(1)
    run, dropped = rollback_migration(url, run_id)
    tables = sum(1 for kind, _ in dropped if kind == "table")
    views = sum(1 for kind, _ in dropped if kind == "view")
    out.print(
        f"rolled back {run.id}: dropped {tables} tables and {views} views"
        + (f" and schema {run.target_schema}" if ("schema", run.target_schema) in dropped else ""),
        markup=False,
        highlight=False,
    )


@app.command("validate")
@reports_errors
def validate_command(
    source: Annotated[Path, typer.Argument(help="The SQLite database that was migrated.")],
    pg: PgOption = None,
    schema: Annotated[
        str | None, typer.Option(help="Target schema (default: the run's, else public).")
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run", help="The `harness migrate run` directory: options, rejects."),
    ] = None,
    rejects_dir: Annotated[
        Path | None, typer.Option("--rejects", help="A rejects/ folder to account for.")
    ] = None,
    tables: Annotated[str | None, typer.Option(help="Only these tables, comma-separated.")] = None,
    queries: Annotated[
        Path | None,
        typer.Option(help="Named SQLite queries to compare (`-- name: x` before each)."),
    ] = None,
    no_queries: Annotated[bool, typer.Option("--no-queries", help="Skip query parity.")] = False,
    strict_queries: Annotated[
        bool,
        typer.Option(help="Fail on a slow query or a sequential scan, not only on wrong rows."),
    ] = False,
    repeat: Annotated[int, typer.Option(help="Runs of each query on each side.")] = 20,
    override: OverrideOption = None,
    timezone: TimezoneOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder (default runs/<UTC>-validate-<name>)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Prove a PostgreSQL copy equals its SQLite source: schema, counts, profiles, every row
    (checksums with bisection), integrity, and the same answers to the queries.

    Exit code 0 when everything passes, 31 when anything differs (query latency and
    sequential scans are flagged; --strict-queries makes them fail too).

    Example: harness validate signals.db --run runs/20261123T101500Z-migrate-signals
    """
    from harness.errors import ConfigError
    from migrate.validate.report import render
    from migrate.validate.run import ValidateOptions, validate

    if repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    options = ValidateOptions(
        source=source,
        pg_url=pg,
        schema=schema,
        run_dir=run_dir,
        rejects_dir=rejects_dir,
        tables=[t.strip() for t in tables.split(",") if t.strip()] if tables else None,
        queries=queries,
        skip_queries=no_queries,
        strict_queries=strict_queries,
        repeat=repeat,
        overrides=_overrides(override),
        timezone=timezone,
        out_dir=out_dir,
        progress=progress,
    )
    result = validate(options, out)
    render(result, out)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
