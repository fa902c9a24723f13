"""``harness rehearse --quick`` step by step, beside the standalone commands its steps wrap.

1. ``harness rehearse --quick`` on the embedded servers (a fresh rehearsal folder): wall time
   in all and per step. **Aim: under 5 minutes in all.**
2. The same work as standalone commands, in the same run, on the same source:
   ``harness dataset``, ``harness migrate plan``, ``harness run steady --quick`` (baseline and
   candidate wrap it), ``harness migrate run``, ``harness validate --run``, ``harness pools
   --quick --driver asyncpg``, ``harness compare``. **Aim: no step over 2x its command.**
   (The rollback drill has no standalone command: an API start and eight requests.)

    python bench/rehearse.py [--pg URL] [--json PATH]
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

TOTAL_AIM_S = 300.0
STEP_AIM = 2.0


def harness(args: list[str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, check=False
    )
    if done.returncode not in ok:
        sys.exit(f"harness {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", help="PostgreSQL server URL (loopback only; default embedded)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console(width=110)

    from harness.services import postgres_url

    server = postgres_url(args.pg)
    require_loopback(server)
    pg = ["--pg", args.pg] if args.pg else []
    with tempfile.TemporaryDirectory(prefix="bench-rehearse-") as name:
        tmp = Path(name)
        folder = tmp / "rehearsal"
        total = harness(
            ["rehearse", "--quick", "--dir", str(folder), "--no-progress", *pg], (0, 40)
        )
        data = json.loads((folder / "rehearsal.json").read_text())
        steps = {s: float(r["elapsed_s"]) for s, r in data["steps"].items()}
        source = folder / "source" / "dataset.db"
        runs = tmp / "runs"
        db_name = "bench_rehearse_standalone"
        from bench._common import drop_database

        drop_database(server, db_name)
        import psycopg
        from psycopg import sql

        from harness.urls import plain_postgres_url

        with psycopg.connect(plain_postgres_url(server), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
        from urllib.parse import urlsplit, urlunsplit

        db_url = urlunsplit(urlsplit(server)._replace(path=f"/{db_name}"))
        alone: dict[str, float] = {}
        alone["source"] = harness(["dataset", "-o", str(tmp / "d.db"), "--artifacts", "20000"])
        alone["audit"] = harness(["migrate", "plan", str(source), "--out", str(tmp / "plan")])
        alone["baseline"] = harness(
            ["run", "steady", "--quick", "--runs-dir", str(runs), "--dataset", str(source)],
            (0, 10),
        )
        alone["migrate"] = harness(
            ["migrate", "run", str(source), "--pg", db_url, "--no-progress",
             "--out", str(tmp / "mig")],
        )  # fmt: skip
        alone["validate"] = harness(
            ["validate", str(source), "--pg", db_url, "--run", str(tmp / "mig"),
             "--out", str(tmp / "val"), "--no-progress"],
        )  # fmt: skip
        alone["pool"] = harness(
            ["pools", "--quick", "--driver", "asyncpg", "--dataset", str(source),
             "--out", str(tmp / "pools"), "--no-progress", *pg],
        )  # fmt: skip
        alone["candidate"] = alone["baseline"]
        base_run, cand_run = (
            folder / data["steps"]["baseline"]["run_dir"],
            folder / data["steps"]["candidate"]["run_dir"],
        )
        alone["compare"] = harness(
            ["compare", str(base_run), str(cand_run), "--out", str(tmp / "cmp")], (0, 12)
        )
        drop_database(server, db_name)
    table = Table(title="harness rehearse --quick, step by step, against the standalone command")
    for column in ("step", "in rehearse s", "standalone s", "ratio", "aim", ""):
        table.add_column(column, justify="left" if column == "step" else "right")
    results: dict[str, Any] = {"total_s": total, "steps": steps, "standalone": alone}
    for step, seconds in steps.items():
        ref = alone.get(step)
        ratio = seconds / ref if ref else None
        table.add_row(
            step,
            f"{seconds:.1f}",
            "-" if ref is None else f"{ref:.1f}",
            "-" if ratio is None else f"{ratio:.2f}x",
            f"<= {STEP_AIM:g}x" if ratio is not None else "",
            verdict(ratio <= STEP_AIM) if ratio is not None else "",
        )
    table.add_row(
        "total", f"{total:.1f}", "", "", f"<= {TOTAL_AIM_S:.0f} s", verdict(total <= TOTAL_AIM_S)
    )
    console.print(table)
    console.print(f"verdict of the rehearsal: {'GO' if data['verdict']['go'] else 'NO-GO'}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
