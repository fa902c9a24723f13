"""``harness validate``: prove a PostgreSQL copy equals its SQLite source.

Sections, in order: schema parity (against the migration plan, remade from the source with
the run's options), counts (source = target + rejects), column profiles, row checksums with
bisection, integrity on the target, query parity. Everything is read-only on both sides.
A migration's run directory (``--run``) supplies the plan's options, the target schema and the
rejects, so rows the migration refused on purpose are accounted for, not reported as lost.
"""

from __future__ import annotations

import json
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.string import TextLoader
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.errors import ConfigError, DatabaseError
from harness.run_dirs import new_run_dir
from migrate.names import pg_ident, sqlite_ident, truncated_pg_name
from migrate.plan import Plan, PlanTable, make_plan, sqlite_path_of
from migrate.run import default_workers
from migrate.sqlite_file import open_source
from migrate.validate.checksums import (
    Excluded,
    TableChecksum,
    TableShape,
    compare_tables,
    hashing_pool,
)
from migrate.validate.profiles import profile_findings
from migrate.validate.queries import (
    DEFAULT_REPEAT,
    REFERENCE_TABLES,
    QueryResult,
    read_queries,
    reference_queries,
    run_query,
)
from migrate.validate.schema import Finding, integrity_findings, pg_columns, schema_findings

EXIT_DIFFERENT = 31


@dataclass
class ValidateOptions:
    """What ``harness validate`` was asked to check."""

    source: Path
    pg_url: str | None = None
    schema: str | None = None  # default: the run's schema, else public
    run_dir: Path | None = None
    rejects_dir: Path | None = None
    tables: list[str] | None = None
    queries: Path | None = None
    skip_queries: bool = False
    strict_queries: bool = False  # a latency or sequential-scan flag fails the validation
    repeat: int = DEFAULT_REPEAT
    overrides: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    out_dir: Path | None = None
    runs_dir: Path = Path("runs")
    progress: bool = True
    workers: int | None = None  # processes hashing tables (default: one per core)


@dataclass
class CountRow:
    """One table's counts: source rows = target rows + rejected rows."""

    table: str
    source: int
    rejected: int
    target: int

    @property
    def ok(self) -> bool:
        """True when the rows add up."""
        return self.source == self.target + self.rejected


@dataclass
class ValidationResult:
    """Everything ``harness validate`` found."""

    source: str
    target: str
    schema: str
    out_dir: str
    findings: list[Finding]
    counts: list[CountRow]
    checksums: list[TableChecksum]
    queries: list[QueryResult]
    rejects: dict[str, list[dict[str, Any]]]
    seconds: dict[str, float]
    strict_queries: bool = False

    @property
    def ok(self) -> bool:
        """True only when every check passed."""
        return (
            all(f.ok for f in self.findings)
            and all(c.ok for c in self.counts)
            and all(c.equal for c in self.checksums)
            and all(q.ok and not (self.strict_queries and q.flags) for q in self.queries)
        )

    @property
    def exit_code(self) -> int:
        """0 when everything passed, 31 otherwise."""
        return 0 if self.ok else EXIT_DIFFERENT

    @property
    def range_queries(self) -> int:
        """Range hashes and fetches the row comparison needed, over all tables."""
        return sum(c.range_queries for c in self.checksums)


def _load_rejects(folder: Path | None) -> dict[str, list[dict[str, Any]]]:
    if folder is None:
        return {}
    if not folder.is_dir():
        raise ConfigError(f"--rejects {folder}: no such folder (a migration's rejects/)")
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
                table = str(record["table"])
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f"{path}:{n}: not a reject record") from None
            out.setdefault(table, []).append(record)
    return out


def _excluded(table: PlanTable, records: list[dict[str, Any]]) -> Excluded:
    rowids = frozenset(int(r["rowid"]) for r in records if r.get("rowid") is not None)
    keys = frozenset(
        tuple((r.get("key") or {}).get(k) for k in table.primary_key)
        for r in records
        if r.get("rowid") is None and table.primary_key
    )
    return Excluded(rowids, keys)


def _run_options(run_dir: Path) -> tuple[dict[str, str], str | None, str | None]:
    """(overrides, timezone, schema) a migration run used."""
    try:
        plan = json.loads((run_dir / "plan.json").read_text())
    except (OSError, ValueError):
        raise ConfigError(
            f"--run {run_dir}: no readable plan.json; give a `harness migrate run` directory"
        ) from None
    schema = None
    summary = run_dir / "summary.json"
    if summary.exists():
        try:
            schema = json.loads(summary.read_text()).get("schema")
        except ValueError:
            schema = None
    return dict(plan.get("overrides") or {}), plan.get("timezone"), schema


def _run_plan(run_dir: Path | None, source: Path) -> Plan | None:
    """The plan a migration run used (its plan.json), when it was made for ``source``: what
    was expected of PostgreSQL then, without profiling the source again."""
    if run_dir is None:
        return None
    try:
        plan = Plan.from_dict(json.loads((run_dir / "plan.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # The run records the path it was given (maybe relative to where it ran): the file name
    # must match; the row checksums compare the data itself either way.
    return plan if Path(plan.source).name == source.name else None


def _out_dir(opts: ValidateOptions, source: Path) -> Path:
    return opts.out_dir or new_run_dir(opts.runs_dir, f"validate-{source.stem}")


def validate(opts: ValidateOptions, console: Console | None = None) -> ValidationResult:
    """Run every check and write ``validation.json``, ``validation.md``, ``validation.html``."""
    from harness.services import check_postgres, postgres_url

    started = time.perf_counter()
    path = sqlite_path_of(opts.source)
    overrides, timezone, schema = dict(opts.overrides), opts.timezone, opts.schema
    rejects_dir = opts.rejects_dir
    if opts.run_dir is not None:
        run_overrides, run_timezone, run_schema = _run_options(opts.run_dir)
        overrides = overrides or run_overrides
        timezone = timezone or run_timezone
        schema = schema or run_schema
        rejects_dir = rejects_dir or opts.run_dir / "rejects"
    schema = schema or "public"
    if opts.rejects_dir is None and rejects_dir is not None and not rejects_dir.exists():
        rejects_dir = None  # a run without rejects may have no folder for them
    rejects = _load_rejects(rejects_dir)
    url = postgres_url(opts.pg_url)
    check_postgres(url)
    # The hashing workers start now and load their modules while the source is planned.
    hashers = hashing_pool(opts.workers or default_workers())
    try:
        return _validate(
            opts, console, path, url, (overrides, timezone, schema), rejects, hashers, started
        )
    finally:
        hashers.shutdown(cancel_futures=True)


def _validate(
    opts: ValidateOptions,
    console: Console | None,
    path: Path,
    url: str,
    planned: tuple[dict[str, str], str | None, str],
    rejects: dict[str, list[dict[str, Any]]],
    hashers: ProcessPoolExecutor,
    started: float,
) -> ValidationResult:
    from harness.urls import mask_url, plain_postgres_url

    overrides, timezone, schema = planned
    seconds: dict[str, float] = {}
    plan = _run_plan(opts.run_dir, path) or make_plan(
        path, overrides=overrides, timezone=timezone, integrity="none"
    )
    tables = _chosen(plan, opts.tables)
    seconds["plan"] = time.perf_counter() - started
    sqlite = open_source(path)
    try:
        with psycopg.connect(plain_postgres_url(url), autocommit=True) as pg:
            # Validation reads only; every statement runs read-only.
            pg.execute("SET default_transaction_read_only = on")
            # jsonb as PostgreSQL's own text (psycopg would parse it into Python floats).
            pg.adapters.register_loader("jsonb", TextLoader)
            result = _Checks(sqlite, pg, plan, tables, schema, rejects, timezone, console, opts)
            result.source, result.pg_url, result.hashers = path, plain_postgres_url(url), hashers
            findings, counts, checksums, queries = result.run(seconds)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"PostgreSQL failed during the validation: {' '.join(str(exc).split())}"
        ) from None
    finally:
        sqlite.close()
    seconds["total"] = time.perf_counter() - started
    out_dir = _out_dir(opts, path)
    outcome = ValidationResult(
        source=str(path),
        target=mask_url(url),
        schema=schema,
        out_dir=str(out_dir),
        findings=findings,
        counts=counts,
        checksums=checksums,
        queries=queries,
        rejects={t: r for t, r in rejects.items() if any(t == x.name for x in tables)},
        seconds=seconds,
        strict_queries=opts.strict_queries,
    )
    from migrate.validate.report import write_reports

    write_reports(outcome, out_dir)
    return outcome


def _chosen(plan: Plan, names: list[str] | None) -> list[PlanTable]:
    if not names:
        return list(plan.tables)
    known = {t.name: t for t in plan.tables}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(
            f"--tables: no table {', '.join(map(repr, missing))} in the source "
            f"(it has {', '.join(sorted(known)[:10])})"
        )
    return [known[n] for n in names]


class _Checks:
    def __init__(
        self,
        sqlite: sqlite3.Connection,
        pg: psycopg.Connection[Any],
        plan: Plan,
        tables: list[PlanTable],
        schema: str,
        rejects: dict[str, list[dict[str, Any]]],
        timezone: str | None,
        console: Console | None,
        opts: ValidateOptions,
    ) -> None:
        self.sqlite, self.pg, self.plan, self.tables = sqlite, pg, plan, tables
        self.schema, self.rejects, self.timezone = schema, rejects, timezone
        self.console, self.opts = console, opts
        self.source = Path()
        self.pg_url = ""
        self.hashers: ProcessPoolExecutor | None = None

    def run(
        self, seconds: dict[str, float]
    ) -> tuple[list[Finding], list[CountRow], list[TableChecksum], list[QueryResult]]:
        tick = time.perf_counter()
        findings = schema_findings(self.pg, self.schema, self.plan, self.tables)
        seconds["schema"] = time.perf_counter() - tick
        actual = pg_columns(self.pg, self.schema)
        shapes = [self._shape(t, actual) for t in self.tables]
        excluded = {t.name: _excluded(t, self.rejects.get(t.name, [])) for t in self.tables}

        tick = time.perf_counter()
        counts = [self._count(t, actual) for t in self.tables]
        seconds["counts"] = time.perf_counter() - tick

        # Profiles and integrity are SQL both engines run themselves: they go on in a thread
        # (on this connection pair) while the checksum processes use their own connections.
        with ThreadPoolExecutor(max_workers=1) as side:
            aggregates = side.submit(self._aggregates, shapes, excluded, actual, seconds)
            tick = time.perf_counter()
            checksums = self._checksums([s for s in shapes if s is not None], excluded)
            seconds["checksums"] = time.perf_counter() - tick
            findings += aggregates.result()

        tick = time.perf_counter()
        queries = self._queries()
        seconds["queries"] = time.perf_counter() - tick
        return findings, counts, checksums, queries

    def _aggregates(
        self,
        shapes: list[TableShape | None],
        excluded: dict[str, Excluded],
        actual: dict[str, Any],
        seconds: dict[str, float],
    ) -> list[Finding]:
        """Column profiles, then integrity on the target."""
        findings: list[Finding] = []
        tick = time.perf_counter()
        for shape in shapes:
            if shape is None:
                continue
            table = next(t for t in self.tables if t.name == shape.name)
            # Min and max mean the same on both sides only for one storage class and
            # values without UTC offsets (SQLite orders those as text).
            unordered = {
                c.name
                for c in table.columns
                if c.cast.conversion == "timestamptz" or (c.profile is not None and c.profile.mixed)
            }
            findings += profile_findings(
                self.sqlite, self.pg, shape, excluded.get(shape.name), self.timezone, unordered
            )
        seconds["profiles"] = time.perf_counter() - tick
        tick = time.perf_counter()
        present = {t: {c.name for c in cols} for t, cols in actual.items()}
        findings += integrity_findings(self.pg, self.schema, self.tables, present)
        seconds["integrity"] = time.perf_counter() - tick
        return findings

    def _shape(self, table: PlanTable, actual: dict[str, Any]) -> TableShape | None:
        columns = {c.name: c.pg_type for c in actual.get(truncated_pg_name(table.name), [])}
        if not columns:
            return None
        both = tuple(
            (c.name, columns[truncated_pg_name(c.name)])
            for c in table.columns
            if truncated_pg_name(c.name) in columns
        )
        return TableShape(
            table.name,
            both,
            table.primary_key,
            not table.without_rowid,
            self.schema,
            table.rows or 0,
        )

    def _count(self, table: PlanTable, actual: dict[str, Any]) -> CountRow:
        (source,) = self.sqlite.execute(
            f"SELECT count(*) FROM {sqlite_ident(table.name)}"  # noqa: S608
        ).fetchone()
        target = -1
        if truncated_pg_name(table.name) in actual:
            row = self.pg.execute(
                f"SELECT count(*) FROM {pg_ident(self.schema)}.{pg_ident(table.name)}".encode()  # noqa: S608
            ).fetchone()
            target = int(row[0]) if row else 0
        return CountRow(table.name, int(source), len(self.rejects.get(table.name, [])), target)

    def _checksums(
        self, shapes: list[TableShape], excluded: dict[str, Excluded]
    ) -> list[TableChecksum]:
        show = self.opts.progress and self.console is not None
        bar = Progress(
            TextColumn("row checksums", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not show,
        )
        with bar:
            task = bar.add_task("", total=len(shapes))
            assert self.hashers is not None
            return compare_tables(
                self.source,
                self.pg_url,
                shapes,
                excluded,
                self.hashers,
                self.timezone,
                progress=lambda _name: bar.advance(task),
            )

    def _queries(self) -> list[QueryResult]:
        if self.opts.skip_queries:
            return []
        if self.opts.queries is not None:
            named = read_queries(self.opts.queries)
        elif {t.name for t in self.plan.tables} >= REFERENCE_TABLES:
            named = reference_queries(self.sqlite)
        else:
            return []
        self.pg.execute(f"SET search_path TO {pg_ident(self.schema)}".encode())
        return [
            run_query(q, self.sqlite, self.pg, self.plan, self.opts.repeat, self.timezone)
            for q in named
        ]
