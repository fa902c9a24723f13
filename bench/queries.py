"""Critical-query latency on SQLite and PostgreSQL, side by side, with the plans they use.

What it measures, against what, and the target (the issue's figures):

* Every query in ``harness.target.queries.CRITICAL_QUERIES`` (top discoveries limit 50,
  topic timeline, citations out and in, recent discoveries over 7 days, entity profile),
  compiled from the same SQLAlchemy ``Select`` the API runs, on a ``--artifacts``
  (default 1,000,000) reference dataset: on the SQLite file written by ``write_dataset``
  and on a PostgreSQL copy of it seeded by ``harness.target.seed``.
* Latency per call (execute + fetch all rows, sync SQLAlchemy engines: ``sqlite3`` with the
  API's connect pragmas, ``psycopg`` for PostgreSQL), ``--reps`` calls (default 200) after a
  warm-up, p50/p95/p99 with ``numpy.percentile`` (linear). The two backends are measured in
  the same run, interleaved call by call with the same seeded parameter sequence, so the
  comparison holds on a noisy machine even when absolute times drift.
* Parameters follow production skew: ids are drawn with ``harness.popularity.ZipfSampler``
  using the same exponents and seeds the dataset used for its links, so the most requested
  topics, entities and artifacts are also the ones with the most rows (the realistic worst
  case). ``limit`` is 50 (the entity profile keeps its default 10); ``since`` is
  ``cutoff(anchor, 7)`` with the dataset's anchor.
* The plan: SQLite ``EXPLAIN QUERY PLAN`` and PostgreSQL ``EXPLAIN`` (``--analyze`` for
  ``EXPLAIN (ANALYZE, BUFFERS)``) of the compiled statement with the hottest id; the line
  naming the index is shown, and a full scan of a large table is flagged.

**Target: p95 under 100 ms and p99 under 500 ms for each critical query on both backends.**

PostgreSQL is ``--pg URL`` (loopback only) or the embedded server under ``.harness`` (stopped
at the end if this run started it and nobody else is connected, unless ``--keep-pg``). The
database ``bench_queries`` is dropped and reloaded, unless ``--reuse-pg`` finds it already
holding the same dataset.

    python bench/queries.py [--artifacts N] [--db PATH] [--pg URL] [--reuse-pg] [--reps N]
                            [--analyze] [--json PATH]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import psycopg
from psycopg import sql
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Connection, Engine, create_engine, event

from bench._common import REPO, fmt_int, positive_int, rate, require_loopback, verdict, write_json
from harness.dataset import DatasetSpec, write_with_progress
from harness.popularity import ZipfSampler
from harness.services import EmbeddedPostgres
from harness.target.db import SQLITE_BUSY_TIMEOUT_MS
from harness.target.queries import CRITICAL_QUERIES, DEFAULT_LIMIT, CriticalQuery, cutoff
from harness.urls import plain_postgres_url, with_driver

DEFAULT_ARTIFACTS = 1_000_000
PG_DATABASE = "bench_queries"
RECENT_DAYS = 7
# One call may not run longer than this (SQLite progress handler, PostgreSQL statement_timeout).
STATEMENT_TIMEOUT_S = 30.0
LARGE_TABLES = ("artifacts", "scores", "citations", "artifact_topics", "artifact_entities")
# The index each query is written for (harness.schema.CRITICAL_INDEXES; citations out reads the
# primary key, which SQLite names sqlite_autoindex_citations_1 and PostgreSQL citations_pkey).
EXPECTED_INDEX: dict[str, tuple[str, ...]] = {
    "top_discoveries": ("ix_scores_discovery",),
    "topic_timeline": ("ix_artifact_topics_topic",),
    "citations_out": ("sqlite_autoindex_citations_1", "citations_pkey"),
    "citations_in": ("ix_citations_cited",),
    "recent_discoveries": ("ix_artifacts_published_live",),
    "entity_profile": ("ix_artifact_entities_entity",),
}
BACKENDS = ("sqlite", "postgresql")

# Wide enough for the tables when the output goes to a file.
console = Console(width=None if sys.stdout.isatty() else 160)


# -- dataset and PostgreSQL --------------------------------------------------------------------


@dataclass
class DatasetFacts:
    """What the benchmark needs to know about the dataset it runs on."""

    path: Path
    artifacts: int
    seed: int
    anchor: datetime
    max_ids: dict[str, int]
    rows: dict[str, int]


def read_facts(path: Path) -> DatasetFacts:
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        info = dict(conn.execute("SELECT key, value FROM dataset_info").fetchall())
        max_ids = {
            t: int(conn.execute(f"SELECT max(id) FROM {t}").fetchone()[0])  # noqa: S608
            for t in ("artifacts", "topics", "entities")
        }
        rows = {
            t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # noqa: S608
            for t in LARGE_TABLES
        }
    finally:
        conn.close()
    return DatasetFacts(
        path=path,
        artifacts=int(info["artifacts"]),
        seed=int(info["seed"]),
        anchor=datetime.strptime(info["anchor"], "%Y-%m-%d %H:%M:%S"),
        max_ids=max_ids,
        rows=rows,
    )


@contextmanager
def postgres_server(given: str | None, keep: bool) -> Iterator[str]:
    """The server URL: ``--pg`` as given, or the embedded one (stopped after if started here)."""
    if given:
        require_loopback(given)
        yield given
        return
    server = EmbeddedPostgres(REPO / ".harness")
    started_here = server.status() is None
    console.print("PostgreSQL: " + ("starting" if started_here else "reusing") + " embedded server")
    info = server.start()
    require_loopback(info.url)
    try:
        yield info.url
    finally:
        if started_here and not keep:
            others = _other_sessions(info.url)
            if others:
                console.print(
                    f"PostgreSQL: leaving the embedded server up ({others} other session(s) "
                    "connected); `harness services stop` stops it"
                )
            else:
                console.print("PostgreSQL: stopping the embedded server this run started")
                server.stop()


def _other_sessions(server_url: str) -> int:
    """Client sessions other than ours: the embedded server is shared with other tools."""
    try:
        with psycopg.connect(plain_postgres_url(server_url), connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _database_url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def _pg_holds(db_url: str, facts: DatasetFacts) -> bool:
    """True when ``db_url`` already holds this dataset (same anchor, seed and row counts)."""
    try:
        with psycopg.connect(plain_postgres_url(db_url), connect_timeout=5) as conn:
            info: dict[str, str] = dict(
                conn.execute("SELECT key, value FROM dataset_info").fetchall()
            )
            if info.get("seed") != str(facts.seed) or info.get("artifacts") != str(facts.artifacts):
                return False
            if info.get("anchor") != facts.anchor.strftime("%Y-%m-%d %H:%M:%S"):
                return False
            for table, n in facts.rows.items():
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchone()
                if row is None or int(row[0]) != n:
                    return False
    except psycopg.Error:
        return False
    return True


def prepare_postgres(server_url: str, facts: DatasetFacts, reuse: bool) -> tuple[str, float, int]:
    """The benchmark database's URL, seconds spent loading it and rows loaded (0 if reused)."""
    from harness.target.seed import load_into_postgres

    db_url = _database_url(server_url, PG_DATABASE)
    if reuse and _pg_holds(db_url, facts):
        console.print(f"PostgreSQL: reusing database {PG_DATABASE} (same dataset)")
        return db_url, 0.0, 0
    with psycopg.connect(plain_postgres_url(server_url), autocommit=True) as admin:
        name = sql.Identifier(PG_DATABASE)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    console.print(f"PostgreSQL: seeding {PG_DATABASE} from {facts.path.name}...")
    started = time.perf_counter()
    counts = load_into_postgres(facts.path, db_url)
    return db_url, time.perf_counter() - started, sum(counts.values())


# -- engines -----------------------------------------------------------------------------------


class Deadline:
    """Aborts a SQLite statement that runs past its deadline (a progress handler)."""

    def __init__(self) -> None:
        self.at = float("inf")

    def arm(self) -> None:
        self.at = time.perf_counter() + STATEMENT_TIMEOUT_S

    def expired(self) -> int:
        return 1 if time.perf_counter() > self.at else 0


def sqlite_engine(path: Path, deadline: Deadline) -> Engine:
    """A sync engine on the file with the API's connect pragmas (read-write, never created)."""
    url = f"sqlite:///file:{quote(str(path.resolve()))}?mode=rw&uri=true"
    engine = create_engine(url)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()
        dbapi_conn.set_progress_handler(deadline.expired, 10_000)

    event.listen(engine, "connect", on_connect)
    return engine


def postgres_engine(db_url: str) -> Engine:
    timeout_ms = int(STATEMENT_TIMEOUT_S * 1000)
    return create_engine(
        with_driver(db_url, "psycopg"),
        connect_args={"options": f"-c statement_timeout={timeout_ms}"},
    )


# -- parameters --------------------------------------------------------------------------------


class ParamSource:
    """Seeded parameter sets with production-like skew, the same for both backends."""

    def __init__(self, facts: DatasetFacts, seed: int) -> None:
        s = facts.seed
        # Same sizes, exponents and permutation seeds as harness.dataset._Generator, so the
        # ids requested most are also the ones with the most linked rows.
        self.samplers = {
            "topic_id": ZipfSampler(facts.max_ids["topics"], exponent=1.0, seed=[s, 1]),
            "entity_id": ZipfSampler(facts.max_ids["entities"], exponent=1.0, seed=[s, 2]),
            "artifact_id": ZipfSampler(facts.max_ids["artifacts"], exponent=0.9, seed=[s, 4]),
        }
        self.since = cutoff(facts.anchor, RECENT_DAYS)
        self.seed = seed

    def _one(self, query: CriticalQuery, ids: dict[str, int]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name in query.params:
            if name == "limit":
                if query.name != "entity_profile":  # the profile keeps its default (10)
                    params["limit"] = DEFAULT_LIMIT
            elif name == "since":
                params["since"] = self.since
            else:
                params[name] = ids[name]
        return params

    def sequence(self, index: int, query: CriticalQuery, n: int) -> list[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, index])
        drawn = {k: s.sample(rng, n).tolist() for k, s in self.samplers.items()}
        return [self._one(query, {k: v[i] for k, v in drawn.items()}) for i in range(n)]

    def hottest(self, query: CriticalQuery) -> dict[str, Any]:
        return self._one(query, {k: int(s.hottest(1)[0]) for k, s in self.samplers.items()})


# -- plans -------------------------------------------------------------------------------------


@dataclass
class Plan:
    lines: list[str]
    index_lines: list[str]
    full_scans: list[str]
    notes: list[str]
    expected_index_used: bool


_SQLITE_SCAN = re.compile(r"^SCAN (\w+)(?: AS \w+)?$")
_PG_SEQ = re.compile(r"Seq Scan on (\w+)")


def _capture_statement(conn: Connection, run: Callable[[], object]) -> tuple[str, Any]:
    """The SQL text and DB-API parameters the driver receives when ``run`` executes."""
    seen: list[tuple[str, Any]] = []

    def grab(*args: Any) -> None:
        seen.append((args[2], args[3]))

    event.listen(conn, "before_cursor_execute", grab)
    try:
        run()
    finally:
        event.remove(conn, "before_cursor_execute", grab)
    return seen[-1]


def explain(
    backend: str, conn: Connection, query: CriticalQuery, params: dict[str, Any], analyze: bool
) -> Plan:
    statement, dbapi_params = _capture_statement(
        conn, lambda: conn.execute(query.build(**params)).all()
    )
    if backend == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, dbapi_params).all()
        depth: dict[int, int] = {}
        lines = []
        for node_id, parent, _unused, detail in rows:
            depth[node_id] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node_id] + str(detail))
        index_lines = [ln.strip() for ln in lines if "INDEX" in ln or "PRIMARY KEY" in ln]
        full_scans = [
            ln.strip()
            for ln in lines
            if (m := _SQLITE_SCAN.match(ln.strip())) and m.group(1) in LARGE_TABLES
        ]
        notes = [ln.strip() for ln in lines if "TEMP B-TREE" in ln]
    else:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
        rows = conn.exec_driver_sql(prefix + statement, dbapi_params).all()
        lines = [str(r[0]) for r in rows]
        index_lines = [
            ln.strip().lstrip("-> ").strip()
            for ln in lines
            if "Index Scan" in ln or "Index Only Scan" in ln or "Bitmap Index Scan" in ln
        ]
        full_scans = [
            ln.strip().lstrip("-> ").strip()
            for ln in lines
            if (m := _PG_SEQ.search(ln)) and m.group(1) in LARGE_TABLES
        ]
        notes = [ln.strip().lstrip("-> ").strip() for ln in lines if "Sort" in ln.split("(")[0]]
    expected = EXPECTED_INDEX.get(query.name, ())
    used = any(re.search(rf"\b{re.escape(ix)}\b", ln) for ln in index_lines for ix in expected)
    return Plan(lines, index_lines, full_scans, notes, used)


def headline(plan: Plan, query: str) -> str:
    """The one plan line to quote: the expected index if used, else the first index line
    (PostgreSQL's cost estimate is left to the full plan)."""
    chosen = plan.index_lines[0] if plan.index_lines else "(no index)"
    for ln in reversed(plan.index_lines):
        if any(ix in ln for ix in EXPECTED_INDEX.get(query, ())):
            chosen = ln
    return re.sub(r"\s+\(cost=.*$", "", chosen)


# -- measurement -------------------------------------------------------------------------------


@dataclass
class Measured:
    query: str
    backend: str
    latencies_ms: list[float] = field(default_factory=list)
    rows_returned: list[int] = field(default_factory=list)
    stopped_early: bool = False

    def percentiles(self) -> tuple[float, float, float]:
        p = np.percentile(np.asarray(self.latencies_ms), [50, 95, 99], method="linear")
        return float(p[0]), float(p[1]), float(p[2])


def measure(
    query: CriticalQuery,
    sequence: Sequence[dict[str, Any]],
    conns: dict[str, Connection],
    warmup: int,
    budget_s: float,
    deadline: Deadline,
) -> dict[str, Measured]:
    """Run the sequence on both backends, call by call, alternating which goes first."""
    out = {b: Measured(query.name, b) for b in BACKENDS}
    spent = dict.fromkeys(BACKENDS, 0.0)
    for i, params in enumerate(sequence):
        order = BACKENDS if i % 2 == 0 else BACKENDS[::-1]
        for backend in order:
            stmt = query.build(**params)
            conn = conns[backend]
            deadline.arm()
            started = time.perf_counter()
            rows = conn.execute(stmt).all()
            elapsed = time.perf_counter() - started
            if i >= warmup:
                out[backend].latencies_ms.append(elapsed * 1000.0)
                out[backend].rows_returned.append(len(rows))
            spent[backend] += elapsed
        if i >= warmup and max(spent.values()) > budget_s and i + 1 < len(sequence):
            for m in out.values():
                m.stopped_early = True
            break
    return out


# -- report ------------------------------------------------------------------------------------


def report(
    facts: DatasetFacts,
    timings: dict[str, float],
    pg_rows: int,
    results: dict[str, dict[str, Measured]],
    plans: dict[str, dict[str, Plan]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    setup = Table(title="Setup (same dataset on both backends)")
    for col in ("step", "rows", "seconds", "rows/s"):
        setup.add_column(col, justify="left" if col == "step" else "right")
    total_rows = sum(facts.rows.values())
    if timings["dataset_s"] > 0:
        setup.add_row(
            f"write_dataset {facts.artifacts:,} artifacts (SQLite)",
            "all tables",
            f"{timings['dataset_s']:.1f}",
            "",
        )
    else:
        setup.add_row(f"SQLite dataset reused: {facts.path}", "", "", "")
    if timings["pg_load_s"] > 0:
        setup.add_row(
            "load_into_postgres (harness.target.seed: schema, COPY, indexes, ANALYZE)",
            fmt_int(pg_rows),
            f"{timings['pg_load_s']:.1f}",
            fmt_int(rate(pg_rows, timings["pg_load_s"])),
        )
    else:
        setup.add_row(f"PostgreSQL database {PG_DATABASE} reused", "", "", "")
    setup.add_row("rows in the five large tables", fmt_int(total_rows), "", "")
    console.print(setup)
    console.print("  " + ", ".join(f"{t} {n:,}" for t, n in facts.rows.items()))

    problems: list[tuple[str, str]] = []
    for name in results:
        for backend in BACKENDS:
            plan = plans[name][backend]
            m = results[name][backend]
            _, p95, p99 = m.percentiles()
            q = CRITICAL_QUERIES[name]
            if (
                plan.full_scans
                or not plan.expected_index_used
                or p95 >= q.sla_p95_ms
                or (p99 >= q.sla_p99_ms)
            ):
                problems.append((name, backend))
    for name, backend in problems if not args.show_plans else []:
        _print_plan(name, backend, plans[name][backend], results[name][backend])
    if args.show_plans:
        for name in plans:
            for backend in BACKENDS:
                _print_plan(name, backend, plans[name][backend], results[name][backend])

    since = cutoff(facts.anchor, RECENT_DAYS)
    table = Table(
        title=(
            f"Critical queries, {facts.artifacts:,} artifacts: latency per call (ms), "
            f"Zipf-skewed ids, since={since:%Y-%m-%d %H:%M}, SLA p95 < 100 ms and p99 < 500 ms"
        ),
        show_lines=False,
    )
    for col, just in (
        ("query", "left"),
        ("backend", "left"),
        ("calls", "right"),
        ("rows", "right"),
        ("p50", "right"),
        ("p95", "right"),
        ("p99", "right"),
        ("p50 vs SQLite", "right"),
        ("SLA", "center"),
        ("index used (plan line)", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    figures: dict[str, Any] = {}
    for name, by_backend in results.items():
        q = CRITICAL_QUERIES[name]
        base_p50 = by_backend["sqlite"].percentiles()[0]
        figures[name] = {}
        for backend in BACKENDS:
            m, plan = by_backend[backend], plans[name][backend]
            p50, p95, p99 = m.percentiles()
            ok = p95 < q.sla_p95_ms and p99 < q.sla_p99_ms
            index_cell = escape(headline(plan, name))
            if plan.full_scans:
                index_cell += " [bold red]FULL SCAN: " + escape("; ".join(plan.full_scans)) + "[/]"
            elif not plan.expected_index_used:
                index_cell += " [yellow](not the expected index)[/]"
            table.add_row(
                name if backend == "sqlite" else "",
                backend,
                str(len(m.latencies_ms)) + ("*" if m.stopped_early else ""),
                f"{np.mean(m.rows_returned):.0f}",
                f"{p50:.2f}",
                f"{p95:.2f}",
                f"{p99:.2f}",
                f"{p50 / base_p50:.2f}x" if base_p50 > 0 else "",
                verdict(ok),
                index_cell,
            )
            figures[name][backend] = {
                "calls": len(m.latencies_ms),
                "stopped_early_on_budget": m.stopped_early,
                "mean_rows": float(np.mean(m.rows_returned)),
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
                "max_ms": max(m.latencies_ms),
                "sla_p95_ms": q.sla_p95_ms,
                "sla_p99_ms": q.sla_p99_ms,
                "sla_pass": ok,
                "index_line": headline(plan, name),
                "expected_index_used": plan.expected_index_used,
                "full_scans": plan.full_scans,
                "sort_or_temp_btree": plan.notes,
                "plan": plan.lines,
            }
        table.add_section()
    console.print(table)
    if any(m.stopped_early for r in results.values() for m in r.values()):
        console.print(f"* stopped at the --budget-s {args.budget_s:g} s per query and backend")
    failed = [f"{n}/{b}" for n, r in figures.items() for b, f in r.items() if not f["sla_pass"]]
    scans = [f"{n}/{b}" for n, r in figures.items() for b, f in r.items() if f["full_scans"]]
    console.print(
        "SLA: "
        + ("[green]all pass[/green]" if not failed else "[red]missed by " + ", ".join(failed))
        + "; full scans of large tables: "
        + (", ".join(scans) if scans else "none")
    )
    return {
        "artifacts": facts.artifacts,
        "dataset_seed": facts.seed,
        "anchor": facts.anchor.isoformat(),
        "since": since.isoformat(),
        "reps": args.reps,
        "warmup": args.warmup,
        "param_seed": args.seed,
        "rows": facts.rows,
        "dataset_seconds": timings["dataset_s"],
        "pg_load_seconds": timings["pg_load_s"],
        "pg_rows_loaded": pg_rows,
        "queries": figures,
    }


def _print_plan(name: str, backend: str, plan: Plan, m: Measured) -> None:
    p50, p95, p99 = m.percentiles()
    console.print(
        f"[bold]{name} on {backend}[/bold] (p50 {p50:.1f} / p95 {p95:.1f} / p99 {p99:.1f} ms), "
        "plan with the hottest id:"
    )
    for ln in plan.lines:
        console.print("    " + escape(ln), highlight=False)


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--artifacts", type=positive_int, default=DEFAULT_ARTIFACTS)
    parser.add_argument(
        "--db", type=Path, default=None, help="SQLite dataset to reuse (written there if missing)"
    )
    parser.add_argument("--pg", default=None, help="PostgreSQL server URL (loopback only)")
    parser.add_argument("--reuse-pg", action="store_true", help=f"keep {PG_DATABASE} if loaded")
    parser.add_argument("--keep-pg", action="store_true", help="leave the embedded server up")
    parser.add_argument("--reps", type=positive_int, default=200, help="timed calls per query")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first")
    parser.add_argument("--seed", type=int, default=7, help="seed of the parameter sequence")
    parser.add_argument(
        "--budget-s", type=float, default=60.0, help="max seconds per query and backend"
    )
    parser.add_argument("--analyze", action="store_true", help="EXPLAIN (ANALYZE) on PostgreSQL")
    parser.add_argument("--show-plans", action="store_true", help="print every plan")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for a scratch dataset")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    workdir: Path | None = None
    timings = {"dataset_s": 0.0, "pg_load_s": 0.0}
    try:
        if args.db is not None and args.db.exists():
            db_path: Path = args.db
            console.print(f"SQLite: reusing {db_path}")
        else:
            if args.db is None:
                workdir = Path(tempfile.mkdtemp(prefix="bench-queries-", dir=args.tmp))
                db_path = workdir / "dataset.db"
            else:
                db_path = args.db
            summary = write_with_progress(
                db_path, DatasetSpec(artifacts=args.artifacts), console=console
            )
            timings["dataset_s"] = summary.seconds
        facts = read_facts(db_path)
        if args.db is not None and facts.artifacts != args.artifacts:
            console.print(
                f"[yellow]note: {db_path} holds {facts.artifacts:,} artifacts; "
                "measuring that (not --artifacts)"
            )

        with postgres_server(args.pg, args.keep_pg) as server_url:
            db_url, timings["pg_load_s"], pg_rows = prepare_postgres(
                server_url, facts, args.reuse_pg
            )
            deadline = Deadline()
            engines = {
                "sqlite": sqlite_engine(db_path, deadline),
                "postgresql": postgres_engine(db_url),
            }
            try:
                conns = {
                    b: e.connect().execution_options(isolation_level="AUTOCOMMIT")
                    for b, e in engines.items()
                }
                params = ParamSource(facts, args.seed)
                results: dict[str, dict[str, Measured]] = {}
                plans: dict[str, dict[str, Plan]] = {}
                for index, (name, query) in enumerate(CRITICAL_QUERIES.items()):
                    console.print(f"measuring {name} ({args.reps} calls x {len(BACKENDS)})...")
                    sequence = params.sequence(index, query, args.warmup + args.reps)
                    results[name] = measure(
                        query, sequence, conns, args.warmup, args.budget_s, deadline
                    )
                    hot = params.hottest(query)
                    plans[name] = {
                        b: explain(b, conns[b], query, hot, args.analyze) for b in BACKENDS
                    }
                for c in conns.values():
                    c.close()
            finally:
                for e in engines.values():
                    e.dispose()
        figures = report(facts, timings, pg_rows, results, plans, args)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
