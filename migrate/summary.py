"""The table a finished migration prints: rows read, loaded and rejected per table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrate.run import MigrationResult


def render_result(result: MigrationResult, console: Console) -> None:
    """Print the per-table counts, the failed steps, and where the rejects are."""
    grid = Table(title=Text(f"migration {result.run_id}"), title_justify="left")
    for name in ("table", "SQLite rows", "read", "loaded", "rejected"):
        grid.add_column(name, justify="left" if name == "table" else "right")
    for t in result.tables:
        grid.add_row(
            Text(t.name),
            f"{t.source_rows:,}",
            f"{t.read:,}",
            f"{t.loaded:,}",
            Text(f"{t.rejected_total:,}", style="bold red" if t.rejected_total else ""),
        )
    grid.add_row(
        "total",
        f"{sum(t.source_rows for t in result.tables):,}",
        f"{result.rows_read:,}",
        f"{result.rows_loaded:,}",
        f"{result.rows_rejected:,}",
        style="bold",
    )
    console.print(grid)
    copy_s = result.seconds.get("copy", 0.0)
    if copy_s:
        console.print(
            f"copy: {result.rows_read:,} rows in {copy_s:.1f} s "
            f"({result.rows_read / copy_s:,.0f} rows/s, "
            f"{result.source_bytes / 1e6 / copy_s:,.1f} MB/s, {result.workers} workers); "
            f"total {result.seconds.get('total', 0.0):.1f} s",
            highlight=False,
        )
    for step in result.failed_steps:
        console.print(Text(f"not created: {step.name}: {step.error}", style="bold red"))
    if result.human:
        console.print(
            f"{len(result.human)} item(s) need a human (see plan.sql in {result.out_dir})",
            highlight=False,
            markup=False,
        )
    if result.rows_rejected:
        console.print(
            Text(
                f"{result.rows_rejected:,} rows rejected: {result.out_dir}/rejects/",
                style="bold red",
            )
        )
    console.print(Text(f"counts verified; run directory: {result.out_dir}"))
