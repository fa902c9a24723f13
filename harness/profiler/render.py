"""Terminal output of ``harness db``: slow statements, plans, index advice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.profiler.indexes import MIN_SPEEDUP, Advice
from harness.profiler.plans import QueryPlan
from harness.profiler.slow_queries import COLUMNS, SlowLog, rows


def render_slow(log: SlowLog, console: Console, limit: int) -> None:
    table = Table(title=f"slow statements in {log.path} (slowest total time first)")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i in (0, 5, 6) else "right")
    for row in list(rows(log))[:limit]:
        table.add_row(*(escape(c) for c in row))
    console.print(table)
    scans = [s for s in log.statements[:limit] if s.full_scans]
    if scans:
        console.print(
            f"{len(scans)} statement(s) read a whole table; "
            "`harness db recommend-indexes` measures indexes for them",
            highlight=False,
        )
    if log.bad_lines:
        console.print(f"[yellow]warning:[/] skipped {log.bad_lines} unreadable line(s)")


def render_plan(plan: QueryPlan, console: Console) -> None:
    for step in plan.steps:
        flag = "  [bold red]<- full scan[/]" if step.full_scan_of else ""
        console.print("  " * step.depth + escape(step.text) + flag, highlight=False)
    if plan.execution_ms is not None:
        console.print(f"execution: {plan.execution_ms:.3f} ms", highlight=False)
    if plan.full_scans:
        console.print(
            f"full scan of {', '.join(plan.full_scans)}: no index serves this statement's "
            "filters or order there",
            highlight=False,
        )
    elif plan.indexes:
        console.print(f"uses index {', '.join(plan.indexes)}", highlight=False)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def render_advice(advice: Sequence[Advice], console: Console) -> None:
    if not advice:
        console.print("no statement with a full scan in the log: no index to recommend")
        return
    table = Table(title="indexes, measured (ranked by time saved across the log)")
    for column in (
        "index", "statement", "runs", "before ms", "after ms", "speed-up", "saved ms",
        "size", "build ms", "verdict",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column in ("index", "statement") else "right")
    for a in advice:
        verdict = (
            "[green]recommended[/]"
            if a.recommended
            else escape(a.note)
            if a.note
            else "unused by the plan"
            if not a.uses_index
            else f"below {MIN_SPEEDUP:g}x"
        )
        stmt = a.statement if len(a.statement) < 60 else a.statement[:57] + "..."
        table.add_row(
            escape(a.candidate.label()),
            escape(stmt),
            str(a.count),
            _ms(a.before_ms),
            _ms(a.after_ms),
            "-" if a.speedup is None else f"{a.speedup:.1f}x",
            f"{a.saved_total_ms:,.1f}",
            "-" if a.size_bytes is None else f"{a.size_bytes / 1024:,.0f} KiB",
            _ms(a.build_ms),
            verdict,
        )
    console.print(table)
    for a in advice:
        if a.recommended:
            console.print(f"{escape(a.create)};", highlight=False)


def advice_json(advice: Sequence[Advice]) -> list[dict[str, Any]]:
    return [
        {
            "table": a.candidate.table,
            "columns": [{"name": c, "descending": d} for c, d in a.candidate.columns],
            "why": a.candidate.why,
            "statement": a.statement,
            "count": a.count,
            "before_ms": a.before_ms,
            "after_ms": a.after_ms,
            "speedup": a.speedup,
            "saved_total_ms": a.saved_total_ms,
            "size_bytes": a.size_bytes,
            "build_ms": a.build_ms,
            "uses_index": a.uses_index,
            "recommended": a.recommended,
            "create": a.create,
            "note": a.note,
        }
        for a in advice
    ]
