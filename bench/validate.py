"""Validation speed: ``harness validate`` against the migration it checks, on the same data.

What it measures, against what, and the target (the issue's figures):

1. **Full validation time** (schema, counts, profiles, row checksums, integrity; no query
   parity) of a copy of the reference dataset (default ``--artifacts 150000``, about
   1,715,000 rows), against the time of ``harness migrate run`` that made the copy, both
   measured in this run, on this machine, each as the whole command in a child process.
   **Target: at most 1.0x of the migration.** Rounds (``--repeat``, default 2) alternate
   the order; the best of each is compared.
2. **Range queries to find one changed row**: one value of one row of the largest table is
   changed in PostgreSQL, and ``harness validate --tables <it>`` must name that row and
   column. Printed: the range queries it took (both sides' range hashes and the final
   fetches) next to ``2 * (ceil(log16(rows)) + 1)``; it grows with log(rows).

Only a loopback PostgreSQL is used (``--pg``, else the embedded server); the databases are
created fresh and dropped at the end.

    python bench/validate.py [--artifacts N] [--repeat R] [--pg URL] [--dataset PATH]
                             [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from bench._common import (
    drop_database,
    fmt_int,
    fresh_database,
    positive_int,
    require_loopback,
    verdict,
    write_json,
)
from harness.dataset import DatasetSpec, write_dataset
from harness.services import postgres_url

TARGET_RATIO = 1.0
FANOUT = 16


def harness(*args: str) -> tuple[float, int, str]:
    """Run ``harness ARGS`` as a child process: (seconds, exit code, output)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, check=False
    )
    return time.perf_counter() - started, done.returncode, done.stdout + done.stderr


def migrate(source: Path, url: str, runs: Path) -> tuple[float, Path]:
    seconds, code, output = harness(
        "migrate", "run", str(source), "--pg", url, "--no-progress", "--runs-dir", str(runs)
    )
    if code != 0:
        sys.exit(f"harness migrate run failed ({code}):\n{output[-2000:]}")
    return seconds, max(runs.glob("*-migrate-*"))


def validate(
    source: Path, url: str, run_dir: Path, out: Path, *extra: str
) -> tuple[float, dict[str, Any]]:
    seconds, code, output = harness(
        "validate", str(source), "--pg", url, "--run", str(run_dir), "--no-queries",
        "--no-progress", "--out", str(out), *extra,
    )  # fmt: skip
    if code not in (0, 31):
        sys.exit(f"harness validate failed ({code}):\n{output[-2000:]}")
    return seconds, json.loads((out / "validation.json").read_text())


def change_one_row(
    source: Path, url: str, run_dir: Path, work: Path, table: str, rows: int
) -> tuple[list[dict[str, Any]], int]:
    """Change one value (a text or timestamp column, not a key) of one row a third into
    ``table``, validate that table, and return what it found and how many range queries."""
    with psycopg.connect(url) as conn:
        (column,) = conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "AND format_type(a.atttypid, a.atttypmod) IN "
            "('text', 'timestamp without time zone') AND NOT EXISTS (SELECT 1 FROM "
            "pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY(i.indkey)) "
            "ORDER BY a.attnum DESC LIMIT 1",
            (table,),
        ).fetchone() or ("",)
        if not column:
            sys.exit(f"{table} has no text or timestamp column outside its keys to change")
        kind = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = %s",
            (sql.Identifier(table).as_string(), column),
        ).fetchone()
        change = (
            sql.SQL("{} + interval '1 second'")
            if kind and kind[0].startswith("timestamp")
            else sql.SQL("coalesce({}, '') || '!'")
        ).format(sql.Identifier(column))
        conn.execute(
            sql.SQL(
                "UPDATE {} SET {} = {} WHERE ctid = (SELECT ctid FROM {} OFFSET {} LIMIT 1)"
            ).format(
                sql.Identifier(table),
                sql.Identifier(column),
                change,
                sql.Identifier(table),
                sql.Literal(rows // 3),
            )
        )
        conn.commit()
    _s, changed = validate(source, url, run_dir, work / "changed", "--tables", table)
    (found,) = changed["checksums"]
    return found["diffs"], int(found["range_queries"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artifacts", type=positive_int, default=150_000)
    parser.add_argument("--repeat", type=positive_int, default=2)
    parser.add_argument("--pg", help="PostgreSQL server URL (loopback only; default embedded)")
    parser.add_argument("--dataset", type=Path, help="Reuse this SQLite file instead")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args()
    console = Console()
    server = postgres_url(args.pg)
    require_loopback(server)
    migrations: list[float] = []
    validations: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        work = Path(tmp)
        source = args.dataset
        if source is None:
            source = work / "reference.db"
            console.print(f"writing the reference dataset ({args.artifacts:,} artifacts)...")
            write_dataset(source, DatasetSpec(artifacts=args.artifacts, seed=42))
        name, url = "", ""
        try:
            report: dict[str, Any] = {}
            run_dir = work
            for round_ in range(args.repeat):
                if name:
                    drop_database(server, name)
                name, url = fresh_database(server, "bench_validate")
                seconds, run_dir = migrate(source, url, work / f"runs-{round_}")
                migrations.append(seconds)
                seconds, report = validate(source, url, run_dir, work / f"v{round_}")
                validations.append(seconds)
                console.print(
                    f"round {round_ + 1}: migrate {migrations[-1]:.1f} s, "
                    f"validate {validations[-1]:.1f} s ({'PASS' if report['ok'] else 'FAIL'})"
                )
            if not report["ok"]:
                sys.exit("the clean copy did not validate: see the report")
            biggest = max(report["checksums"], key=lambda c: c["source_rows"])
            table, table_rows = biggest["table"], biggest["source_rows"]
            diffs, queries = change_one_row(source, url, run_dir, work, table, table_rows)
            bound = 2 * (math.ceil(math.log(max(table_rows, 2), FANOUT)) + 1)
        finally:
            if name:
                drop_database(server, name)

    best_migration, best_validation = min(migrations), min(validations)
    ratio = best_validation / best_migration
    total_rows = sum(c["source_rows"] for c in report["checksums"])
    grid = Table(title=f"harness validate vs harness migrate run ({total_rows:,} rows)")
    for col in ("figure", "value", "compared with", "target", ""):
        grid.add_column(col, justify="left" if col == "figure" else "right")
    grid.add_row(
        "full validation (s)",
        f"{best_validation:.1f}",
        f"migration {best_migration:.1f} s = {ratio:.2f}x",
        f"<= {TARGET_RATIO:.1f}x",
        verdict(ratio <= TARGET_RATIO),
    )
    grid.add_row("validation rows/s", fmt_int(total_rows / best_validation), "", "", "")
    grid.add_row(
        f"range queries to find 1 changed row in {table} ({table_rows:,} rows)",
        str(queries),
        f"2*(ceil(log16 n)+1) = {bound}",
        f"<= {bound}",
        verdict(queries <= bound and len(diffs) == 1),
    )
    console.print(grid)
    if diffs:
        d = diffs[0]
        console.print(f"found: {d['kind']} {d['key']} {[c['column'] for c in d['columns']]}")
    write_json(
        args.json,
        {
            "rows": total_rows,
            "migrations_s": migrations,
            "validations_s": validations,
            "ratio": ratio,
            "changed_row": {
                "table": table,
                "rows": table_rows,
                "range_queries": queries,
                "diffs": diffs,
            },
        },
    )


if __name__ == "__main__":
    main()
