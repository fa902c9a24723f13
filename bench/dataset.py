"""Dataset write speed and memory: ``harness.dataset.write_dataset`` against a bare executemany.

What it measures, against what, and the target (the issue's figures):

1. **Rows per second writing the dataset** (default ``--artifacts 200000``). The comparison
   is measured in the same run, side by side, on the same file system:

   * *bare*: every ``(table, rows)`` batch is built first with ``list(generate_rows(spec))``
     (not timed), then the timed part writes those ready-made tuples exactly the way
     ``write_dataset`` does: ``open_for_bulk_load`` + ``create_schema(indexes=False)`` +
     ``executemany(insert_sql(...))`` per batch inside transactions (committed after each
     artifact chunk, as ``write_dataset`` does) + ``finish_schema`` (indexes, views,
     triggers, ANALYZE) + ``close_as_application_db``. That is the floor: SQLite's own cost.
   * *harness*: ``write_dataset(path, spec)``, which generates the rows while writing them
     (after the pre-built list has been freed).

   Both build the same indexes, so ``harness / bare`` is the cost of generating while
   writing. **Target: at least 0.8x.** Rounds alternate which path goes first
   (``--repeat``, default 3) and the best time of each path is compared: on a shared, noisy
   machine the ratio holds, an absolute time does not.

2. **Peak RSS** of ``write_dataset`` at ``--rss-artifacts`` (default 1,000,000) in a child
   process (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), with its rows/s, next to the RSS of a
   child that only imports the generator (the interpreter + numpy floor).
   **Target: under 300 MB** (10^6 bytes). ``--skip-rss`` skips it.

Database files live in a temporary folder that is removed at the end.

    python bench/dataset.py [--artifacts N] [--repeat R] [--rss-artifacts N] [--skip-rss]
                            [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from bench._common import fmt_int, positive_int, rate, verdict, write_json
from harness.dataset import (
    DatasetSpec,
    Rows,
    close_as_application_db,
    create_schema,
    finish_schema,
    generate_rows,
    insert_sql,
    open_for_bulk_load,
    write_dataset,
)

TARGET_RATIO = 0.8
TARGET_RSS_BYTES = 300_000_000
DEFAULT_ARTIFACTS = 200_000
DEFAULT_RSS_ARTIFACTS = 1_000_000
DEFAULT_RSS_TIMEOUT_S = 1_200.0

# Wide enough for the tables when the output goes to a file.
console = Console(width=None if sys.stdout.isatty() else 130)


@dataclass
class WriteRun:
    """One timed write of the whole dataset."""

    path: str  # "bare" or "harness"
    round: int
    rows: int
    seconds: float
    # From the start to the last artifact chunk's COMMIT: the insert phase, before
    # finish_schema builds the indexes (approximate for the harness: taken at its
    # on_artifacts callback, which runs right after that COMMIT).
    insert_seconds: float

    @property
    def rows_per_s(self) -> float:
        return rate(self.rows, self.seconds)


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".partial"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def bare_write(path: Path, batches: list[tuple[str, Rows]], round_no: int) -> WriteRun:
    """Write ready-made batches the way ``write_dataset`` does, with nothing generated."""
    started = time.perf_counter()
    rows = 0
    conn = open_for_bulk_load(path)
    try:
        create_schema(conn, indexes=False)
        conn.execute("BEGIN")
        for table, batch in batches:
            if batch:
                conn.executemany(insert_sql(table, len(batch[0])), batch)
                rows += len(batch)
            if table == "bookmarks":
                conn.execute("COMMIT")
                conn.execute("BEGIN")
        conn.execute("COMMIT")
        inserted = time.perf_counter() - started
        finish_schema(conn)
        close_as_application_db(conn)
    except BaseException:
        conn.close()
        raise
    return WriteRun("bare", round_no, rows, time.perf_counter() - started, inserted)


def harness_write(path: Path, spec: DatasetSpec, round_no: int) -> WriteRun:
    """``write_dataset`` as shipped: generate in a background thread while writing."""
    started = time.perf_counter()
    last_chunk = [started]

    def on_artifacts(_n: int) -> None:
        last_chunk[0] = time.perf_counter()

    summary = write_dataset(path, spec, on_artifacts=on_artifacts)
    seconds = time.perf_counter() - started
    return WriteRun("harness", round_no, summary.total_rows, seconds, last_chunk[0] - started)


def build_batches(spec: DatasetSpec) -> tuple[list[tuple[str, Rows]], float]:
    """Pre-build every batch (timed separately: generation alone, single thread)."""
    gc.collect()
    started = time.perf_counter()
    batches = list(generate_rows(spec))
    return batches, time.perf_counter() - started


def ratio_rounds(
    spec: DatasetSpec, repeat: int, workdir: Path
) -> tuple[list[WriteRun], list[float], int]:
    """Alternate bare-first and harness-first rounds; return every run and generation times."""
    runs: list[WriteRun] = []
    gen_seconds: list[float] = []
    gen_rows = 0

    def run_bare(round_no: int) -> None:
        nonlocal gen_rows
        console.print(f"  round {round_no}: building batches for the bare path (not timed)...")
        batches, seconds = build_batches(spec)
        gen_rows = sum(len(b) for _, b in batches)
        gen_seconds.append(seconds)
        path = workdir / f"bare-{round_no}.db"
        gc.collect()
        console.print(f"  round {round_no}: bare executemany...")
        runs.append(bare_write(path, batches, round_no))
        del batches
        gc.collect()
        _remove_db(path)

    def run_harness(round_no: int) -> None:
        path = workdir / f"harness-{round_no}.db"
        gc.collect()
        console.print(f"  round {round_no}: write_dataset...")
        runs.append(harness_write(path, spec, round_no))
        _remove_db(path)

    console.print(f"[bold]Write speed[/bold]: {spec.artifacts:,} artifacts, {repeat} round(s)")
    for round_no in range(repeat):
        order = (run_bare, run_harness) if round_no % 2 == 0 else (run_harness, run_bare)
        for step in order:
            step(round_no)
    return runs, gen_seconds, gen_rows


_CHILD = """
import json, resource, sys
from pathlib import Path
from harness.dataset import DatasetSpec, write_dataset
if sys.argv[1] == "import-only":
    out = {"rows": 0, "seconds": 0.0}
else:
    spec = DatasetSpec(artifacts=int(sys.argv[2]), seed=int(sys.argv[3]))
    s = write_dataset(Path(sys.argv[1]), spec)
    out = {"rows": s.total_rows, "seconds": s.seconds}
out["self_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            out["vmhwm_kb"] = int(line.split()[1])
print(json.dumps(out))
"""


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"child process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def rss_run(artifacts: int, seed: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """Peak RSS of write_dataset at ``artifacts`` in a fresh child, and the import-only floor.

    Run before this process grows: Linux carries the parent's peak RSS into a child's
    ``ru_maxrss`` through exec, so the child's own ``VmHWM`` is read as a cross-check.
    """
    path = workdir / "rss.db"
    console.print(f"RSS: write_dataset({artifacts:,} artifacts) in a child process...")
    out = _child([str(path), str(artifacts), str(seed)], timeout)
    # ru_maxrss of the largest child reaped so far: this is the first child of this process.
    children_bytes = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    vmhwm_bytes = int(out.get("vmhwm_kb", 0)) * 1024
    db_bytes = path.stat().st_size
    _remove_db(path)
    floor = _child(["import-only"], 120.0)
    peak_bytes = max(children_bytes, vmhwm_bytes)
    return {
        "artifacts": artifacts,
        "rows": out["rows"],
        "seconds": out["seconds"],
        "rows_per_s": rate(out["rows"], out["seconds"]),
        "peak_rss_bytes": peak_bytes,
        "rusage_children_maxrss_bytes": children_bytes,
        "child_vmhwm_bytes": vmhwm_bytes,
        "import_only_vmhwm_bytes": int(floor.get("vmhwm_kb", 0)) * 1024,
        "db_file_bytes": db_bytes,
        "target_rss_bytes": TARGET_RSS_BYTES,
        "pass": peak_bytes < TARGET_RSS_BYTES,
    }


def _best(runs: list[WriteRun], path: str) -> WriteRun:
    return min((r for r in runs if r.path == path), key=lambda r: r.seconds)


def report(
    spec: DatasetSpec,
    runs: list[WriteRun],
    gen_seconds: list[float],
    gen_rows: int,
    rss: dict[str, Any] | None,
) -> dict[str, Any]:
    bare, harness = _best(runs, "bare"), _best(runs, "harness")
    if bare.rows != harness.rows:
        console.print(f"[red]row counts differ: bare {bare.rows:,} vs harness {harness.rows:,}")
    ratio = harness.rows_per_s / bare.rows_per_s
    paired = [
        _best([r for r in runs if r.round == n], "bare").seconds
        / _best([r for r in runs if r.round == n], "harness").seconds
        for n in sorted({r.round for r in runs})
    ]
    insert_ratio = rate(harness.rows, harness.insert_seconds) / rate(bare.rows, bare.insert_seconds)

    rounds = Table(title="Every timed write (same rows, same file system, alternating order)")
    for col in ("round", "path", "rows", "seconds", "rows/s", "insert phase s", "indexes s"):
        rounds.add_column(col, justify="right" if col != "path" else "left")
    for r in runs:
        rounds.add_row(
            str(r.round),
            r.path,
            fmt_int(r.rows),
            f"{r.seconds:.2f}",
            fmt_int(r.rows_per_s),
            f"{r.insert_seconds:.2f}",
            f"{r.seconds - r.insert_seconds:.2f}",
        )
    console.print(rounds)

    table = Table(title=f"Dataset write speed, {spec.artifacts:,} artifacts (best of each path)")
    for col in ("figure", "rows", "seconds", "rows/s", "vs bare", "target", "result"):
        table.add_column(col, justify="left" if col in ("figure", "target") else "right")
    table.add_row(
        "bare: executemany of pre-built tuples",
        fmt_int(bare.rows),
        f"{bare.seconds:.2f}",
        fmt_int(bare.rows_per_s),
        "1.00x",
        "",
        "",
    )
    table.add_row(
        "harness: write_dataset (generates while writing)",
        fmt_int(harness.rows),
        f"{harness.seconds:.2f}",
        fmt_int(harness.rows_per_s),
        f"[bold]{ratio:.2f}x[/bold]",
        f">= {TARGET_RATIO}x",
        verdict(ratio >= TARGET_RATIO),
    )
    table.add_row(
        "  same ratio per round (paired): " + ", ".join(f"{x:.2f}" for x in paired) + " -> median",
        "",
        "",
        "",
        f"{statistics.median(paired):.2f}x",
        "(noise check)",
        "",
    )
    table.add_row(
        "  harness insert phase only (before indexes)",
        "",
        f"{harness.insert_seconds:.2f}",
        fmt_int(rate(harness.rows, harness.insert_seconds)),
        f"{insert_ratio:.2f}x",
        "(context)",
        "",
    )
    best_gen = min(gen_seconds)
    serial = best_gen + bare.seconds
    table.add_row(
        "  if generation did not overlap writing (gen + bare)",
        fmt_int(bare.rows),
        f"{serial:.2f}",
        fmt_int(rate(bare.rows, serial)),
        f"{bare.seconds / serial:.2f}x",
        "(context)",
        "",
    )
    table.add_row(
        "generate_rows alone, one thread (context)",
        fmt_int(gen_rows),
        f"{best_gen:.2f}",
        fmt_int(rate(gen_rows, best_gen)),
        f"{rate(gen_rows, best_gen) / bare.rows_per_s:.2f}x",
        "(context)",
        "",
    )
    if rss is not None:
        table.add_section()
        mb = rss["peak_rss_bytes"] / 1e6
        table.add_row(
            f"peak RSS: write_dataset({rss['artifacts']:,}) in a child",
            fmt_int(rss["rows"]),
            f"{rss['seconds']:.2f}",
            fmt_int(rss["rows_per_s"]),
            f"[bold]{mb:.0f} MB[/bold]",
            f"< {TARGET_RSS_BYTES / 1e6:.0f} MB",
            verdict(bool(rss["pass"])),
        )
        table.add_row(
            "  child's own VmHWM / ru_maxrss of children",
            "",
            "",
            "",
            f"{rss['child_vmhwm_bytes'] / 1e6:.0f} / "
            f"{rss['rusage_children_maxrss_bytes'] / 1e6:.0f} MB",
            "(cross-check)",
            "",
        )
        table.add_row(
            "  child that only imports the generator (floor)",
            "",
            "",
            "",
            f"{rss['import_only_vmhwm_bytes'] / 1e6:.0f} MB",
            "(context)",
            "",
        )
    console.print(table)

    return {
        "artifacts": spec.artifacts,
        "seed": spec.seed,
        "runs": [{**asdict(r), "rows_per_s": r.rows_per_s} for r in runs],
        "bare_best": {"rows": bare.rows, "seconds": bare.seconds, "rows_per_s": bare.rows_per_s},
        "harness_best": {
            "rows": harness.rows,
            "seconds": harness.seconds,
            "rows_per_s": harness.rows_per_s,
        },
        "ratio_harness_over_bare": ratio,
        "paired_round_ratios": paired,
        "insert_phase_ratio": insert_ratio,
        "target_ratio": TARGET_RATIO,
        "ratio_pass": ratio >= TARGET_RATIO,
        "generate_only": {"rows": gen_rows, "best_seconds": best_gen},
        "serial_estimate_seconds": serial,
        "rss": rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--artifacts", type=positive_int, default=DEFAULT_ARTIFACTS)
    parser.add_argument("--repeat", type=positive_int, default=3, help="rounds per path")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rss-artifacts", type=positive_int, default=DEFAULT_RSS_ARTIFACTS)
    parser.add_argument("--rss-timeout", type=float, default=DEFAULT_RSS_TIMEOUT_S)
    parser.add_argument("--skip-rss", action="store_true", help="skip the peak-RSS child run")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the scratch files")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    spec = DatasetSpec(artifacts=args.artifacts, seed=args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bench-dataset-", dir=args.tmp))
    try:
        # The RSS child goes first, while this process is still small (see rss_run).
        rss = (
            None
            if args.skip_rss
            else rss_run(args.rss_artifacts, args.seed, workdir, args.rss_timeout)
        )
        runs, gen_seconds, gen_rows = ratio_rounds(spec, args.repeat, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = report(spec, runs, gen_seconds, gen_rows, rss)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
