"""``harness pools`` wall time against its budgets, with the knee found and the rules' values.

What it measures (the issue's figures):

1. ``harness pools --quick`` end to end as a user runs it (a subprocess: start-up, the private
   clone of the reference database, every cell, the reports). **Budget: 60 s.**
2. ``harness pools`` with the default grid (8 pool sizes x 4 concurrencies x 2 drivers = 64
   cells). **Budget: 5 minutes.**

Both run against the same embedded PostgreSQL (or ``--pg``, loopback only), one after the
other, after the reference dataset has been seeded once (timed apart: it is a one-time cost
per dataset). For each run it prints the wall time beside the budget, the overall knee per
driver, the (2 x cores) + 5 and HikariCP values and where they landed, and the cells where
Little's law did not hold.

    python bench/pools.py [--pg URL] [--skip-default] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import require_loopback, verdict, write_json

QUICK_BUDGET_S = 60.0
DEFAULT_BUDGET_S = 300.0


def run_pools(args: list[str], out: Path) -> tuple[float, dict[str, Any], int]:
    """Run ``harness pools`` as a user would; (wall seconds, pools.json, exit code)."""
    command = [sys.executable, "-m", "harness.cli", "pools", "--no-progress", "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.run([*command, *args], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"harness pools {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return wall, json.loads((out / "pools.json").read_text()), proc.returncode


def summary(data: dict[str, Any]) -> dict[str, Any]:
    analysis = data["analysis"]
    return {
        "cells": len(data["cells"]),
        "experiment_s": data["elapsed_s"],
        "knees": {o["driver"]: o["pool_size"] for o in analysis["overall"]},
        "knees_by_concurrency": [
            (k["driver"], k["concurrency"], k["pool_size"], round(k["throughput"]))
            for k in analysis["knees"]
        ],
        "formulas": data["formulas"],
        "formula_within_margins": {
            f"{f['formula']} / {f['driver']} / c={f['concurrency']}": f["acceptable"]
            for f in analysis["formulas"]
        },
        "little_flagged": [
            (c["driver"], c["pool_size"], c["concurrency"], c["ratio"])
            for c in analysis["little"]
            if not c["ok"]
        ],
        "recommendation": analysis["recommendation"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", help="PostgreSQL server URL (loopback only; default embedded)")
    parser.add_argument("--skip-default", action="store_true", help="only the --quick run")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    console = Console(width=120)

    from harness.services import postgres_url
    from harness.target.launch import default_dataset
    from harness.target.seed import ensure_seeded

    server = postgres_url(args.pg)
    require_loopback(server)
    dataset = default_dataset(console)
    started = time.perf_counter()
    ensure_seeded(dataset, server)
    seed_s = time.perf_counter() - started
    common = ["--dataset", str(dataset)] + (["--pg", args.pg] if args.pg else [])

    results: dict[str, Any] = {"seed_s": round(seed_s, 1)}
    runs = [("--quick", ["--quick"], QUICK_BUDGET_S)]
    if not args.skip_default:
        runs.append(("default grid", [], DEFAULT_BUDGET_S))
    table = Table(title="harness pools: wall time against the budget")
    for column in ("run", "cells", "wall s", "budget s", "", "knee psycopg", "knee asyncpg"):
        table.add_column(column, justify="left" if column == "run" else "right")
    with tempfile.TemporaryDirectory(prefix="bench-pools-") as tmp:
        for name, extra, budget in runs:
            wall, data, _code = run_pools([*common, *extra], Path(tmp) / name.replace(" ", "-"))
            s = summary(data)
            s.update(wall_s=round(wall, 1), budget_s=budget, within_budget=wall <= budget)
            results[name] = s
            table.add_row(
                name,
                str(s["cells"]),
                f"{wall:.1f}",
                f"{budget:.0f}",
                verdict(wall <= budget),
                str(s["knees"].get("psycopg", "-")),
                str(s["knees"].get("asyncpg", "-")),
            )
    console.print(f"reference dataset seeded once in {seed_s:.1f} s (not in the wall times)")
    console.print(table)
    last = results[runs[-1][0]]
    console.print("rules of thumb: " + ", ".join(f"{k} = {v}" for k, v in last["formulas"].items()))
    for line in last["recommendation"]:
        console.print(f"- {line}", highlight=False, soft_wrap=True)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
