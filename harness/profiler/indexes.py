"""``harness db recommend-indexes``: candidate indexes from the slow statements, each measured.

Candidates come from the statements' syntax (sqlglot, never regexes): per table, the columns
compared for equality, then the ORDER BY columns of that table (with their directions) or one
range-compared column; and each join column on its own. A candidate an existing index already
covers (same leading columns, same or all-reversed directions) is dropped.

Each remaining candidate is **measured**: the statement runs with the logged parameters
before and after building the index, on PostgreSQL inside a transaction that is rolled back
(the table is locked against writes for those seconds: run it on a rehearsal copy), on SQLite
on a copy of the file. The advice ranks by time saved across the log (count x gain), and keeps
only indexes the new plan uses and that speed the statement up by :data:`MIN_SPEEDUP`.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlglot
from psycopg import sql
from sqlglot import exp

from harness.profiler.plans import (
    execute_prepared,
    pg_connect,
    pg_plan,
    prepared,
    sqlite_connect,
    sqlite_plan,
)
from harness.profiler.slow_queries import SlowLog, SlowStatement, unmask_params
from harness.profiler.slowlog import unmask
from harness.urls import is_postgres, sqlite_path

MIN_SPEEDUP = 1.25
RUNS = 5

Column = tuple[str, bool]  # (name, descending)


@dataclass(frozen=True)
class Candidate:
    table: str
    columns: tuple[Column, ...]
    why: str

    def ddl(self, name: str, quote: Callable[[str], str]) -> str:
        cols = ", ".join(f"{quote(c)}{' DESC' if desc else ''}" for c, desc in self.columns)
        return f"CREATE INDEX {quote(name)} ON {quote(self.table)} ({cols})"

    def label(self) -> str:
        cols = ", ".join(f"{c}{' DESC' if d else ''}" for c, d in self.columns)
        return f"{self.table} ({cols})"


@dataclass
class Advice:
    """One candidate as measured on one statement."""

    candidate: Candidate
    statement: str
    count: int
    before_ms: float | None
    after_ms: float | None
    build_ms: float | None
    size_bytes: int | None
    uses_index: bool
    create: str
    note: str = ""

    @property
    def speedup(self) -> float | None:
        if not self.before_ms or not self.after_ms:
            return None
        return self.before_ms / self.after_ms

    @property
    def saved_total_ms(self) -> float:
        if self.before_ms is None or self.after_ms is None:
            return 0.0
        return max(0.0, self.before_ms - self.after_ms) * self.count

    @property
    def recommended(self) -> bool:
        return self.uses_index and (self.speedup or 0.0) >= MIN_SPEEDUP


# -- candidates from the syntax ----------------------------------------------------------------


def candidates(statement: str, dialect: str) -> list[Candidate]:
    """Candidate indexes for one statement."""
    try:
        tree = sqlglot.parse_one(statement, read=dialect)
    except sqlglot.errors.ParseError:
        return []
    out: list[Candidate] = []
    for select in tree.find_all(exp.Select):
        aliases: dict[str, str] = {}
        for table in select.find_all(exp.Table):
            if table.find_ancestor(exp.Select) is not select:
                continue
            aliases[table.alias_or_name] = table.name
            aliases[table.name] = table.name
        only = next(iter(set(aliases.values()))) if len(set(aliases.values())) == 1 else None

        def owner(
            col: exp.Column, aliases: dict[str, str] = aliases, only: str | None = only
        ) -> str | None:
            return aliases.get(col.table) if col.table else only

        eq: dict[str, list[str]] = {}
        rng: dict[str, list[str]] = {}
        joins: set[tuple[str, str]] = set()
        where = select.args.get("where")
        conditions: list[exp.Expression] = []
        if where is not None:
            conditions += list(
                where.find_all(exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
            )
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is not None:
                conditions += list(on.find_all(exp.EQ))
        for cond in conditions:
            left, right = cond.this, cond.expression if not isinstance(cond, exp.Between) else None
            cols = [c for c in (left, right) if isinstance(c, exp.Column)]
            if isinstance(cond, exp.EQ) and len(cols) == 2:
                for c in cols:
                    side = owner(c)
                    if side:
                        joins.add((side, c.name))
                continue
            if len(cols) != 1:
                continue
            t = owner(cols[0])
            if t is None:
                continue
            target = eq if isinstance(cond, exp.EQ) else rng
            target.setdefault(t, [])
            if cols[0].name not in target[t]:
                target[t].append(cols[0].name)
        order: list[tuple[str, str, bool]] = []
        order_node = select.args.get("order")
        if order_node is not None:
            for item in order_node.expressions:
                col = item.this
                if isinstance(col, exp.Column) and owner(col):
                    order.append((owner(col) or "", col.name, bool(item.args.get("desc"))))
        order_table = order[0][0] if order and len({o[0] for o in order}) == 1 else None
        names = set(eq) | set(rng) | ({order_table} if order_table else set())
        for name in sorted(names):
            lead: list[Column] = [(c, False) for c in eq.get(name, [])]
            if order_table == name:
                tail = [(c, d) for _, c, d in order if c not in {x for x, _ in lead}]
                if lead or tail:
                    out.append(Candidate(name, tuple(lead + tail), "filter then order"))
            if rng.get(name):
                out.append(
                    Candidate(name, tuple([*lead, (rng[name][0], False)]), "filter then range")
                )
            elif lead and order_table != name:
                out.append(Candidate(name, tuple(lead), "filter"))
        for joined, column in sorted(joins):
            out.append(Candidate(joined, ((column, False),), "join"))
    return list(dict.fromkeys(out))


def covered(candidate: Candidate, existing: Sequence[Sequence[Column]]) -> bool:
    """Whether an existing index starts with the candidate's columns (either direction)."""
    want = list(candidate.columns)
    flipped = [(c, not d) for c, d in want]
    for index in existing:
        head = list(index[: len(want)])
        if head in (want, flipped):
            return True
        # A single column is usable in either direction, whatever its declared order.
        if len(want) == 1 and head and head[0][0] == want[0][0]:
            return True
    return False


# -- measuring ----------------------------------------------------------------------------------


def _median_ms(run: Callable[[], Any], runs: int = RUNS) -> float:
    run()  # warm the cache and the plan
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def _pg_existing(conn: psycopg.Connection[Any], table: str) -> list[list[Column]]:
    rows = conn.execute(
        """
        SELECT i.indexrelid, a.attname, (i.indoption[k.ord - 1] & 1) = 1
        FROM pg_index i
        JOIN pg_class t ON t.oid = i.indrelid
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE t.oid = to_regclass(%s)
        ORDER BY i.indexrelid, k.ord
        """,
        (table,),
    ).fetchall()
    out: dict[int, list[Column]] = {}
    for oid, name, desc in rows:
        out.setdefault(int(oid), []).append((str(name), bool(desc)))
    return list(out.values())


def _sqlite_existing(conn: sqlite3.Connection, table: str) -> list[list[Column]]:
    out: list[list[Column]] = []
    # An INTEGER PRIMARY KEY is the rowid: the table itself is ordered by it.
    pk = conn.execute(
        "SELECT name, type FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,)
    ).fetchall()
    if len(pk) == 1 and str(pk[0][1]).upper() == "INTEGER":
        out.append([(str(pk[0][0]), False)])
    for row in conn.execute("SELECT name FROM pragma_index_list(?)", (table,)).fetchall():
        cols = conn.execute(
            "SELECT name, desc FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno",
            (row[0],),
        ).fetchall()
        out.append([(str(c), bool(d)) for c, d in cols if c is not None])
    return out


def _pg_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def measure_pg(url: str, entries: Sequence[SlowStatement]) -> list[Advice]:
    """Measure every candidate of ``entries`` on PostgreSQL (rolled back)."""
    out: list[Advice] = []
    with pg_connect(url) as conn:
        for entry in entries:
            try:
                values = unmask_params(entry.params, unmask)
            except ValueError:
                out += _not_measured(entry, "postgres", "text parameters are masked in the log")
                continue
            vals = list(values.values()) if isinstance(values, dict) else list(values or [])
            for cand in candidates(entry.sql, "postgres"):
                if covered(cand, _pg_existing(conn, cand.table)):
                    continue
                out.append(_measure_pg_one(conn, entry, cand, vals))
    return out


def _measure_pg_one(
    conn: psycopg.Connection[Any], entry: SlowStatement, cand: Candidate, values: list[Any]
) -> Advice:
    name = f"harness_advice_{uuid.uuid4().hex[:8]}"
    create = cand.ddl(f"ix_{cand.table}_{'_'.join(c for c, _ in cand.columns)}"[:63], _pg_quote)

    def run_statement() -> None:
        with prepared(conn, entry.sql) as stmt:
            conn.execute(execute_prepared(stmt, values)).fetchall()

    before = _median_ms(run_statement)
    conn.execute("BEGIN")
    try:
        started = time.perf_counter()
        conn.execute(sql.SQL(cand.ddl(name, _pg_quote)))
        build = (time.perf_counter() - started) * 1000.0
        size_row = conn.execute(
            "SELECT pg_relation_size(to_regclass(%s))", (_pg_quote(name),)
        ).fetchone()
        after = _median_ms(run_statement)
        plan = pg_plan(conn, entry.sql, values)
        uses = name in plan.indexes
    finally:
        conn.execute("ROLLBACK")
    return Advice(
        cand, entry.statement, entry.count, before, after, build,
        int(size_row[0]) if size_row else None, uses, create,
    )  # fmt: skip


@contextmanager
def _sqlite_copy(path: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="harness-advice-") as tmp:
        copy = Path(tmp) / path.name
        src = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # consistent even if the file has a WAL
        finally:
            src.close()
            dst.close()
        yield copy


def measure_sqlite(path: Path, entries: Sequence[SlowStatement]) -> list[Advice]:
    """Measure every candidate of ``entries`` on a copy of the SQLite file."""
    out: list[Advice] = []
    with _sqlite_copy(path) as copy:
        conn = sqlite_connect(copy, writable=True)
        try:
            for entry in entries:
                try:
                    values = unmask_params(entry.params, unmask)
                except ValueError:
                    out += _not_measured(entry, "sqlite", "text parameters are masked in the log")
                    continue
                for cand in candidates(entry.sql, "sqlite"):
                    if covered(cand, _sqlite_existing(conn, cand.table)):
                        continue
                    out.append(_measure_sqlite_one(conn, entry, cand, values))
        finally:
            conn.close()
    return out


def _measure_sqlite_one(
    conn: sqlite3.Connection, entry: SlowStatement, cand: Candidate, values: Any
) -> Advice:
    name = f"harness_advice_{uuid.uuid4().hex[:8]}"
    create = cand.ddl(f"ix_{cand.table}_{'_'.join(c for c, _ in cand.columns)}", _pg_quote)
    bound = values if values is not None else []

    def run_statement() -> None:
        conn.execute(entry.sql, bound).fetchall()

    before = _median_ms(run_statement)

    def used_pages() -> int:
        # Pages in use: the file's pages less its free list (a dropped index leaves free pages
        # that a new one reuses without growing the file).
        total = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(total) - int(free)

    pages = used_pages()
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    started = time.perf_counter()
    conn.execute(cand.ddl(name, _pg_quote))
    conn.commit()
    build = (time.perf_counter() - started) * 1000.0
    # Statistics for the new index, as the file's other indexes have (the planner needs them
    # to prefer it); not part of the build time.
    conn.execute(f"ANALYZE {_pg_quote(name)}")
    conn.commit()
    size = (used_pages() - pages) * page_size
    after = _median_ms(run_statement)
    uses = name in sqlite_plan(conn, entry.sql, bound).indexes
    conn.execute(f"DROP INDEX {_pg_quote(name)}")
    conn.commit()
    return Advice(cand, entry.statement, entry.count, before, after, build, size, uses, create)


def _not_measured(entry: SlowStatement, dialect: str, why: str) -> list[Advice]:
    return [
        Advice(c, entry.statement, entry.count, None, None, None, None, False,
               c.ddl(f"ix_{c.table}", _pg_quote), note=f"not measured: {why}")
        for c in candidates(entry.sql, dialect)
    ]  # fmt: skip


def recommend(log: SlowLog, db: str, top: int = 10) -> list[Advice]:
    """Measured advice for the ``top`` statements with a full scan (slowest total first)."""
    from harness.profiler.slow_queries import attach_plans

    attach_plans(log, db, limit=top)
    scanning = [s for s in log.statements[:top] if s.full_scans]
    if is_postgres(db):
        advice = measure_pg(db, scanning)
    else:
        advice = measure_sqlite(sqlite_path(db), scanning)
    return sorted(advice, key=lambda a: (not a.recommended, -a.saved_total_ms))
