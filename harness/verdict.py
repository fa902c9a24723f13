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
    if verdict.get("open_model"):
        print_open_model(verdict["open_model"], console)
    for warning in verdict.get("warnings", []):
        console.print(f"[yellow]warning: {escape(warning)}")
    limited = (
        " [bold red](generator-limited: latencies not trustworthy)"
        if verdict.get("generator_limited")
        else ""
    )
    console.print(
        f"{verdict.get('samples', 0):,} samples; verdict: "
        + ("[bold green]PASS" if verdict.get("passed") else "[bold red]FAIL")
        + limited
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def print_open_model(health: dict[str, Any], console: Console) -> None:
    """Per stage, the target rate beside the achieved one, drops and the scheduler's lag;
    then whether the generator kept up."""
    table = Table(
        "stage",
        "target/s",
        "achieved/s",
        "started",
        "dropped",
        "unfinished",
        "lag p50",
        "lag p99",
        title=f"open model: {health.get('arrivals')} arrivals, max in flight "
        f"{health.get('max_inflight')}, {health.get('processes') or 1} process(es)",
    )
    for s in health.get("stages", []):
        table.add_row(
            escape(str(s["stage"])),
            f"{s['target_rate']:,.2f}",
            f"{s['achieved_rate']:,.2f}",
            f"{s['started']:,}",
            f"{s['dropped']:,}",
            f"{s['unfinished']:,}",
            _ms(s.get("lag_p50_ms")),
            _ms(s.get("lag_p99_ms")),
        )
    console.print(table)
    cpu = ", ".join(
        f"{c['process']} max {c['max']:.0f}%" for c in health.get("cpu", []) if c["max"] is not None
    )
    console.print(
        f"scheduler lag p99 {_ms(health.get('lag_p99_ms'))}, max {_ms(health.get('lag_max_ms'))}"
        + (f"; CPU {escape(cpu)}" if cpu else "")
    )
    if health.get("generator_limited"):
        for reason in health.get("reasons", []):
            console.print(f"[bold red]generator-limited:[/] {escape(reason)}")
        console.print(
            "[red]the load generator, not the target, was the bottleneck: latencies carry its "
            "own delays; use more --processes, a lower --rate, or a less busy machine"
        )
