"""``harness rehearse``: source -> audit -> baseline -> migrate -> validate -> pool ->
candidate -> compare -> rollback drill, then one GO / NO-GO verdict with every reason.

Each step writes into its own folder of the rehearsal directory (``rehearsals/<UTC>/``) and
records what it did in ``rehearsal.json`` as soon as it ends, so ``--from STEP`` re-runs
from a step with what the earlier ones left. The load steps start the reference API
themselves (in-process cache, no Redis: nothing cached on one backend can answer for the
other) and drive it with ``harness run`` against that URL, with the same scenario and seed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from rich.console import Console

from harness import __version__
from harness.errors import ConfigError, DatasetError, HarnessError
from harness.rehearse import drill
from harness.rehearse.steps import STEPS
from harness.urls import mask_url

SCHEMA = "harness.rehearsal/1"
EXIT_NO_GO = 40
DEFAULT_ARTIFACTS = 20_000
# Endpoints serving the critical queries (DESIGN.md): a regression there blocks GO.
CRITICAL_WORDS = ("/discoveries", "/timeline", "/citations", "/entities/")


@dataclass
class RehearseOptions:
    """What ``harness rehearse`` was asked to do."""

    source: Path | None = None
    artifacts: int = DEFAULT_ARTIFACTS
    pg: str | None = None
    scenario: str = "steady"
    quick: bool = False
    time_scale: float | None = None
    users_scale: float | None = None
    pool_size: int | None = None
    tolerance: float = 0.10
    accept_rejects: Path | None = None
    from_step: str | None = None
    rehearsal_dir: Path | None = None
    rehearsals_dir: Path = Path("rehearsals")
    progress: bool = True
    #: Test hook: called with the migrated database's URL right after the migration.
    after_migrate: Callable[[str], None] | None = None


@dataclass
class RehearseResult:
    directory: Path
    data: dict[str, Any]
    go: bool
    reasons: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.go else EXIT_NO_GO


class _Context:
    """What the steps share: options, folders, the record, the servers."""

    def __init__(self, opts: RehearseOptions, directory: Path, data: dict[str, Any]) -> None:
        self.opts = opts
        self.dir = directory
        self.data = data
        self._server: str | None = None

    def step_dir(self, step: str) -> Path:
        path = self.dir / step
        path.mkdir(parents=True, exist_ok=True)
        return path

    def record(self, step: str) -> dict[str, Any]:
        found: dict[str, Any] | None = self.data["steps"].get(step)
        if not found or found.get("status") != "done":
            raise ConfigError(
                f"step {step!r} has not run in {self.dir}; run the rehearsal from an earlier "
                f"step (--from {step})"
            )
        return found

    @property
    def source(self) -> Path:
        return self.resolve(self.record("source")["path"])

    def rel(self, path: Path | str) -> str:
        """``path`` relative to the rehearsal folder when inside it (the folder can move)."""
        p = Path(path).resolve()
        try:
            return str(p.relative_to(self.dir.resolve()))
        except ValueError:
            return str(p)

    def resolve(self, recorded: str) -> Path:
        path = Path(recorded)
        return path if path.is_absolute() else self.dir / path

    @property
    def server(self) -> str:
        if self._server is None:
            from harness.services import postgres_url

            self._server = postgres_url(self.opts.pg)
        return self._server

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.server)._replace(path=f"/{quote(name)}"))

    def save(self) -> None:
        tmp = self.dir / "rehearsal.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        tmp.replace(self.dir / "rehearsal.json")

    def say(self, text: str, console: Console | None) -> None:
        if console is not None:
            console.print(text, highlight=False)


# -- the reference API for the load steps ------------------------------------------------------


@contextlib.contextmanager
def _api(
    db: str, log_dir: Path, *, pool_size: int | None = None, now: str | None = None
) -> Iterator[str]:
    """The reference API on ``db`` (in-process cache), with ``now`` fixed when given."""
    from harness.target.process import reference_api

    with reference_api(
        db,
        redis_url=None,
        log=log_dir / "api.log",
        pool_size=pool_size,
        slow_log=log_dir / "slow_queries.jsonl",
        settings_env={"HARNESS_API_NOW": now} if now is not None else None,
    ) as url:
        yield url


def _load_run(ctx: _Context, url: str, runs_dir: Path) -> dict[str, Any]:
    from harness.run import RunOptions, run

    result = run(
        RunOptions(
            scenario=ctx.opts.scenario,
            target=url,
            quick=ctx.opts.quick,
            time_scale=ctx.opts.time_scale,
            users_scale=ctx.opts.users_scale,
            runs_dir=runs_dir,
        )
    )
    verdict = result.verdict
    return {
        "run_dir": ctx.rel(result.run_dir),
        "passed": bool(verdict.get("passed")),
        "partial": bool(verdict.get("partial")),
        "failed_slas": [o["sla"] for o in verdict.get("outcomes", []) if not o.get("passed")],
        "exit_code": result.exit_code,
        "endpoints": _endpoint_percentiles(result.run_dir),
    }


def _endpoint_percentiles(run_dir: Path) -> dict[str, dict[str, float]]:
    """p50/p95/p99 and count per endpoint over the whole run: the figures ``harness report``
    shows for it (exact, failed requests included)."""
    from harness.analysis.load import load_run
    from harness.analysis.stats import exact_stats

    stats = exact_stats(load_run(run_dir).samples, ["endpoint"])
    return {
        str(row["endpoint"]): {k: float(row[k]) for k in ("count", "p50", "p95", "p99")}
        for row in stats.to_dict("records")
    }


def _anchor(path: Path) -> str | None:
    try:
        with sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM dataset_info WHERE key = 'anchor'").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


# -- the steps ----------------------------------------------------------------------------------


def step_source(ctx: _Context, console: Console | None) -> dict[str, Any]:
    from harness.target.db import check_sqlite_file

    if ctx.opts.source is not None:
        path = ctx.opts.source.resolve()
        check_sqlite_file(path)
        made = False
    else:
        from harness.dataset import DatasetSpec, write_with_progress

        if ctx.opts.artifacts < 1:
            raise ConfigError(f"--artifacts {ctx.opts.artifacts}: give at least 1")
        path = ctx.step_dir("source") / "dataset.db"
        path.unlink(missing_ok=True)
        write_with_progress(path, DatasetSpec(artifacts=ctx.opts.artifacts), console=console)
        made = True
    with sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]
        artifacts = conn.execute("SELECT count(*) FROM artifacts").fetchone()[0]
    return {
        "path": ctx.rel(path),
        "generated": made,
        "bytes": path.stat().st_size,
        "tables": int(tables),
        "artifacts": int(artifacts),
        "anchor": _anchor(path),
    }


def step_audit(ctx: _Context, console: Console | None) -> dict[str, Any]:
    from migrate.plan import make_plan

    plan = make_plan(ctx.source)
    folder = ctx.step_dir("audit")
    (folder / "plan.sql").write_text(plan.ddl())
    (folder / "plan.json").write_text(plan.to_json())
    return {
        "tables": len(plan.tables),
        "views": len(plan.views),
        "indexes": sum(len(t.indexes) for t in plan.tables),
        "foreign_keys": sum(len(t.foreign_keys) for t in plan.tables),
        "pragmas": {k: str(v) for k, v in plan.pragmas.items()},
        "needs_a_human": [h.line() for h in plan.human],
        "to_review": [h.line() for h in plan.review],
        "plan_sql": ctx.rel(folder / "plan.sql"),
    }


def step_baseline(ctx: _Context, console: Console | None) -> dict[str, Any]:
    folder = ctx.step_dir("baseline")
    copy = folder / "target.db"
    # The load writes (ingestion): a copy, so the user's file and the migration never see it.
    shutil.copyfile(ctx.source, copy)
    with _api(str(copy), folder) as url:
        out = _load_run(ctx, url, folder / "runs")
    copy.unlink(missing_ok=True)
    return out


def step_migrate(ctx: _Context, console: Console | None) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    from harness.services import check_postgres
    from harness.urls import plain_postgres_url
    from migrate.run import MigrateOptions, run_migration

    check_postgres(ctx.server)
    name = f"rehearsal_{ctx.dir.name.lower().replace('-', '_')}"[:63]
    with psycopg.connect(plain_postgres_url(ctx.server), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ctx.database_url(name)
    folder = ctx.step_dir("migrate")
    result = run_migration(
        MigrateOptions(source=ctx.source, pg_url=url, out_dir=folder / "run", progress=False),
        console if ctx.opts.progress else None,
    )
    if ctx.opts.after_migrate is not None:
        ctx.opts.after_migrate(url)
    data = result.to_dict()
    rejects = sorted((folder / "run" / "rejects").glob("*.jsonl"))
    return {
        "database": name,
        "target": mask_url(url),
        "run_dir": ctx.rel(folder / "run"),
        "rows": data["rows"],
        "copy_rows_per_s": data["copy_rows_per_s"],
        "seconds": data["seconds"],
        "exit_code": result.exit_code,
        "reject_files": [ctx.rel(p) for p in rejects],
        "failed_steps": [str(s) for s in data.get("failed_steps", [])],
    }


def step_validate(ctx: _Context, console: Console | None) -> dict[str, Any]:
    from migrate.validate.run import ValidateOptions, validate

    migrated = ctx.record("migrate")
    folder = ctx.step_dir("validate")
    result = validate(
        ValidateOptions(
            source=ctx.source,
            pg_url=ctx.database_url(migrated["database"]),
            run_dir=ctx.resolve(migrated["run_dir"]),
            out_dir=folder,
            progress=False,
        ),
        None,
    )
    return {
        "passed": result.ok,
        "exit_code": result.exit_code,
        "report": ctx.rel(folder / "validation.html"),
        "tables": [
            {
                "table": c.table,
                "source": c.source,
                "target": c.target,
                "rejected": c.rejected,
                "counts_ok": c.ok,
            }
            for c in result.counts
        ],
        "checksums": [
            {"table": c.table, "equal": c.equal, "method": c.method, "diffs": len(c.diffs)}
            for c in result.checksums
        ],
        "problems": [
            f.line() if hasattr(f, "line") else str(f) for f in result.findings if not f.ok
        ],
        "different_tables": sorted(
            {c.table for c in result.checksums if not c.equal}
            | {c.table for c in result.counts if not c.ok}
        ),
    }


def step_pool(ctx: _Context, console: Console | None) -> dict[str, Any]:
    if ctx.opts.pool_size is not None:
        if ctx.opts.pool_size < 1:
            raise ConfigError(f"--pool-size {ctx.opts.pool_size}: give at least 1")
        return {"pool_size": ctx.opts.pool_size, "from": "--pool-size"}
    from harness.pools import PoolsOptions, run_pools

    folder = ctx.step_dir("pool")
    result = run_pools(
        PoolsOptions(
            pg=ctx.opts.pg,
            dataset=ctx.source,
            drivers=("asyncpg",),  # the reference API's driver on PostgreSQL
            quick=True,
            out_dir=folder / "run",
            progress=False,
        )
    )
    overall = next(o for o in result.analysis.overall if o.driver == "asyncpg")
    return {
        "pool_size": overall.pool_size,
        "from": "measured (harness pools --quick --driver asyncpg)",
        "run_dir": ctx.rel(folder / "run"),
        "recommendation": result.analysis.recommendation,
        "cells": [
            {k: c.get(k) for k in ("pool_size", "concurrency", "throughput", "p99")}
            for c in result.data["cells"]
        ],
    }


def step_candidate(ctx: _Context, console: Console | None) -> dict[str, Any]:
    migrated = ctx.record("migrate")
    pool = int(ctx.record("pool")["pool_size"])
    url = ctx.database_url(migrated["database"])
    folder = ctx.step_dir("candidate")
    anchor = ctx.record("source").get("anchor")
    # PostgreSQL's answers before the load writes anything: what the rollback drill expects.
    with _api(url, folder / "snapshot", pool_size=pool, now=anchor) as api:
        paths = drill.critical_paths(api)
        answers = drill.snapshot(api, paths)
    (folder / "answers.json").write_text(json.dumps(answers, indent=2, default=str))
    with _api(url, folder, pool_size=pool) as api:
        out = _load_run(ctx, api, folder / "runs")
    out["pool_size"] = pool
    out["answers"] = ctx.rel(folder / "answers.json")
    return out


def step_compare(ctx: _Context, console: Console | None) -> dict[str, Any]:
    from harness.analysis.compare import REGRESSION, compare_runs, write_comparison
    from harness.analysis.load import load_run

    base = load_run(ctx.resolve(ctx.record("baseline")["run_dir"]))
    new = load_run(ctx.resolve(ctx.record("candidate")["run_dir"]))
    comparison = compare_runs(base, new, tolerance=ctx.opts.tolerance)
    folder = ctx.step_dir("compare")
    files = write_comparison(comparison, folder)
    rows = comparison.rows
    critical = rows[
        (rows["metric"] == "p95")
        & (rows["verdict"] == REGRESSION)
        & rows["endpoint"].astype(str).map(lambda e: any(w in e for w in CRITICAL_WORDS))
    ]
    return {
        "regressions": comparison.regressions,
        "critical_regressions": [
            f"{r['endpoint']} @ {r['stage']}: p95 {r['base']:.1f} -> {r['new']:.1f} ms "
            f"({r['change']:+.0%}, CI {r['ci_low']:+.0%}..{r['ci_high']:+.0%})"
            for r in critical.to_dict("records")
        ],
        "counts": comparison.counts,
        "tolerance": ctx.opts.tolerance,
        "report": ctx.rel(files.get("html", folder)),
    }


def step_rollback(ctx: _Context, console: Console | None) -> dict[str, Any]:
    source = ctx.source
    folder = ctx.step_dir("rollback")
    expected = json.loads(ctx.resolve(ctx.record("candidate")["answers"]).read_text())
    steps = [
        "stop sending traffic to the API on PostgreSQL",
        f"start the reference API with --db {source} (the SQLite file as it was before the move)",
    ]
    if not source.is_file():
        return {
            "passed": False,
            "steps": steps,
            "problems": [f"the SQLite file {source} is gone: there is no way back"],
        }
    copy = folder / "target.db"
    shutil.copyfile(source, copy)
    try:
        with _api(str(copy), folder, now=ctx.record("source").get("anchor")) as api:
            steps.append("check /health answers")
            got = drill.snapshot(api, list(expected))
    except HarnessError as exc:
        return {"passed": False, "steps": steps, "problems": [f"the API did not start: {exc}"]}
    finally:
        copy.unlink(missing_ok=True)
    problems = drill.differences(expected, got)
    steps.append(
        f"compare {len(expected)} critical endpoints' answers with PostgreSQL's before the "
        f"load: {len(expected) - len(problems)} of {len(expected)} equal"
    )
    return {"passed": not problems, "steps": steps, "problems": problems}


RUNNERS: dict[str, Callable[[_Context, Console | None], dict[str, Any]]] = {
    "source": step_source,
    "audit": step_audit,
    "baseline": step_baseline,
    "migrate": step_migrate,
    "validate": step_validate,
    "pool": step_pool,
    "candidate": step_candidate,
    "compare": step_compare,
    "rollback": step_rollback,
}


# -- verdict ------------------------------------------------------------------------------------


def _accepted(path: Path | None) -> set[tuple[str, str]]:
    """(table, rowid) pairs a ``--accept-rejects`` file accepts (JSONL reject records)."""
    if path is None:
        return set()
    if not path.is_file():
        raise ConfigError(f"--accept-rejects {path}: no such file")
    out: set[tuple[str, str]] = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.add((str(rec["table"]), str(rec["rowid"])))
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"--accept-rejects {path}, line {n}: not a reject record (copy lines from "
                "the rejects/*.jsonl files you accept)"
            ) from None
    return out


def judge(data: dict[str, Any], accept_rejects: Path | None) -> list[str]:
    """Every reason the rehearsal is NO-GO (empty: GO)."""
    steps = data["steps"]
    reasons: list[str] = []
    d = data["dir"]
    missing = [s for s in STEPS if steps.get(s, {}).get("status") != "done"]
    if missing:
        reasons.append(
            f"steps not run: {', '.join(missing)} (harness rehearse --dir {d} --from {missing[0]})"
        )
    cand = steps.get("candidate", {})
    if cand.get("status") == "done" and not cand.get("passed"):
        reasons.append(
            f"SLAs fail on PostgreSQL: {', '.join(cand.get('failed_slas') or ['partial run'])} "
            f"(harness report {cand.get('run_dir')})"
        )
    val = steps.get("validate", {})
    if val.get("status") == "done" and not val.get("passed"):
        tables = ", ".join(val.get("different_tables") or []) or "see the report"
        reasons.append(f"validation found differences in {tables} ({val.get('report')})")
    mig = steps.get("migrate", {})
    if mig.get("status") == "done":
        rejected = int((mig.get("rows") or {}).get("rejected", 0))
        if rejected:
            accepted = _accepted(accept_rejects)
            records = []
            for file in mig.get("reject_files", []):
                path = Path(file) if Path(file).is_absolute() else Path(d) / file
                with contextlib.suppress(OSError):
                    records += [json.loads(x) for x in path.read_text().splitlines() if x]
            open_ = [
                r for r in records if (str(r.get("table")), str(r.get("rowid"))) not in accepted
            ]
            if open_ or len(records) < rejected:
                reasons.append(
                    f"{rejected} row(s) rejected by PostgreSQL, {len(open_)} not accepted "
                    f"({', '.join(mig.get('reject_files', []))}; accept them with --accept-rejects)"
                )
        if mig.get("failed_steps"):
            reasons.append(f"the migration could not create: {', '.join(mig['failed_steps'])}")
    comp = steps.get("compare", {})
    for line in comp.get("critical_regressions", []) if comp.get("status") == "done" else []:
        reasons.append(
            f"critical endpoint regressed beyond {comp.get('tolerance', 0.1):.0%}: {line}"
        )
    rb = steps.get("rollback", {})
    if rb.get("status") == "done" and not rb.get("passed"):
        reasons.append(f"rollback drill failed: {'; '.join(rb.get('problems', []))}")
    return reasons


# -- driver -------------------------------------------------------------------------------------


def _open(opts: RehearseOptions) -> tuple[Path, dict[str, Any], int]:
    """The rehearsal directory, its record, and the index of the first step to run."""
    if opts.from_step is not None and opts.from_step not in STEPS:
        raise ConfigError(
            f"--from {opts.from_step!r}: no such step; the steps are {', '.join(STEPS)}"
        )
    if opts.from_step is None:
        directory = opts.rehearsal_dir or opts.rehearsals_dir / datetime.now(UTC).strftime(
            "%Y%m%dT%H%M%SZ"
        )
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(
                f"{directory} already holds a rehearsal; use --from STEP to re-run part of it"
            )
        directory.mkdir(parents=True, exist_ok=True)
        data = {
            "schema": SCHEMA,
            "harness_version": __version__,
            "dir": str(directory),
            "steps": {},
        }
        return directory, data, 0
    directory = opts.rehearsal_dir or _latest(opts.rehearsals_dir)
    record = directory / "rehearsal.json"
    if not record.is_file():
        raise ConfigError(f"{directory}: no rehearsal.json to continue from")
    data = json.loads(record.read_text())
    return directory, data, STEPS.index(opts.from_step)


def _latest(folder: Path) -> Path:
    found = (
        sorted(p for p in folder.glob("*") if (p / "rehearsal.json").is_file())
        if folder.is_dir()
        else []
    )
    if not found:
        raise ConfigError(f"no rehearsal under {folder} to continue; give --dir")
    return found[-1]


def _preflight(opts: RehearseOptions) -> None:
    """Fail in one line, before any step, on what would only fail later: a source that is not
    a reference SQLite database, a scenario with a typo, a server that does not answer."""
    from harness.run import SCENARIOS
    from harness.scenario import find_scenario, load_scenario
    from harness.services import check_postgres, postgres_url
    from harness.target.db import check_sqlite_file

    if opts.source is not None:
        check_sqlite_file(opts.source)
    load_scenario(find_scenario(opts.scenario, SCENARIOS))
    if opts.pool_size is not None and opts.pool_size < 1:
        raise ConfigError(f"--pool-size {opts.pool_size}: give at least 1")
    check_postgres(postgres_url(opts.pg))


def rehearse(opts: RehearseOptions, console: Console | None = None) -> RehearseResult:
    """Run the steps (from ``opts.from_step``), judge, and write the reports.

    An embedded PostgreSQL this call starts is stopped at the end, like ``harness run`` does;
    its data (the ``rehearsal_*`` database) stays on disk for ``harness services start``.
    """
    from harness import config
    from harness.services import EmbeddedPostgres

    embedded = None
    if not config.setting("pg_url", opts.pg):
        server = EmbeddedPostgres(config.home())
        if server.status() is None:
            embedded = server
    try:
        return _rehearse(opts, console)
    finally:
        if embedded is not None:
            embedded.stop()


def _rehearse(opts: RehearseOptions, console: Console | None) -> RehearseResult:
    if opts.source is not None and not opts.source.exists():
        raise DatasetError(f"{opts.source}: no such file")
    if opts.from_step is not None and opts.from_step not in STEPS:
        raise ConfigError(
            f"--from {opts.from_step!r}: no such step; the steps are {', '.join(STEPS)}"
        )
    if not 0 < opts.tolerance < 1:
        raise ConfigError(f"--tolerance {opts.tolerance}: give a share between 0 and 1, e.g. 0.1")
    _accepted(opts.accept_rejects)  # a bad file fails before hours of work
    _preflight(opts)
    directory, data, first = _open(opts)
    data["dir"] = str(directory)
    ctx = _Context(opts, directory, data)
    data["options"] = {
        "source": str(opts.source) if opts.source else None,
        "scenario": opts.scenario,
        "quick": opts.quick,
        "tolerance": opts.tolerance,
        "pool_size": opts.pool_size,
        "pg": mask_url(opts.pg) if opts.pg else "embedded",
    }
    for step in STEPS[first:]:
        data["steps"].pop(step, None)
    ctx.save()
    for index, step in enumerate(STEPS[first:], first + 1):
        ctx.say(f"[{index}/{len(STEPS)}] {step}", console)
        started = time.perf_counter()
        stamp = datetime.now(UTC).isoformat()
        data["steps"][step] = {"status": "running", "started": stamp}
        ctx.save()
        try:
            figures = RUNNERS[step](ctx, console)
        except BaseException as exc:
            data["steps"][step] = {
                "status": "failed",
                "started": stamp,
                "elapsed_s": round(time.perf_counter() - started, 3),
                "error": str(exc) or type(exc).__name__,
            }
            data["verdict"] = {"go": False, "ran": False, "reasons": [f"step {step} failed: {exc}"]}
            ctx.save()
            _write(ctx)
            raise
        data["steps"][step] = {
            "status": "done",
            "started": stamp,
            **figures,
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
        ctx.save()
        ctx.say(f"    done in {data['steps'][step]['elapsed_s']:.1f} s", console)
    reasons = judge(data, opts.accept_rejects)
    data["verdict"] = {"go": not reasons, "ran": True, "reasons": reasons}
    ctx.save()
    result = RehearseResult(directory, data, not reasons, reasons)
    result.files = _write(ctx)
    return result


def _write(ctx: _Context) -> dict[str, Path]:
    from harness.rehearse.report import write_report

    return {"json": ctx.dir / "rehearsal.json", **write_report(ctx.data, ctx.dir)}
