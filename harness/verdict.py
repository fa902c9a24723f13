"""The verdict table people read at the end of a run (from ``verdict.json``'s content)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.sla import format_value


def print_verdict(verdict: dict[str, Any], console: Console) -> None:
    """Each SLA, its measured value from exact samples, pass or fail; then the overall verdict."""
    outcomes = verdict.get("outcomes", [])
    if outcomes:
        table = Table(
            "SLA",
            "scope",
            "stage",
            "measured",
            "requests",
            "verdict",
            title="SLA verdict (exact, from every sample; "
            f"{verdict.get('percentile_definition', 'linear interpolation')})",
        )
        for o in outcomes:
            table.add_row(
                escape(o["sla"]),
                escape(o["scope"]),
                escape(o["stage"]),
                format_value(o["metric"], o["measured"]),
                f"{o['count']:,}",
                "[green]pass" if o["passed"] else f"[red]FAIL[/] {o['note']}".strip(),
            )
        console.print(table)
    if verdict.get("partial"):
        console.print("[yellow]partial run: interrupted before the end; figures cover what ran")
    if verdict.get("stop_reason"):
        console.print(f"[red]{escape(verdict['stop_reason'])}")
    if verdict.get("broken_step"):
        console.print(
            f"stress: broke at {verdict['broken_step']} ({verdict.get('broken_step_users')} users)"
        )
    for warning in verdict.get("warnings", []):
        console.print(f"[yellow]warning: {escape(warning)}")
    console.print(
        f"{verdict.get('samples', 0):,} samples; verdict: "
        + ("[bold green]PASS" if verdict.get("passed") else "[bold red]FAIL")
    )
