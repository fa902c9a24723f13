"""``rehearsal.html`` (offline, charts inline) and ``rehearsal.md``: the verdict first, then
each step's figures."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.page import escape, table_html
from harness.rehearse.steps import STEPS, TITLES


def _ms(v: Any) -> str:
    return "-" if v is None else f"{float(v):.1f}"


def latency_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """Per endpoint: p50/p95/p99 on SQLite beside PostgreSQL."""
    base = data["steps"].get("baseline", {}).get("endpoints", {})
    cand = data["steps"].get("candidate", {}).get("endpoints", {})
    rows = []
    for endpoint in sorted(set(base) | set(cand)):
        b, c = base.get(endpoint, {}), cand.get(endpoint, {})
        rows.append(
            [endpoint]
            + [_ms(b.get(k)) for k in ("p50", "p95", "p99")]
            + [_ms(c.get(k)) for k in ("p50", "p95", "p99")]
        )
    return rows


LATENCY_COLUMNS = (
    "endpoint", "SQLite p50", "SQLite p95", "SQLite p99", "PostgreSQL p50", "PostgreSQL p95",
    "PostgreSQL p99",
)  # fmt: skip


def _p95_chart(data: Mapping[str, Any]) -> str:
    from harness.analysis.html import figure_svg, new_figure

    base = data["steps"].get("baseline", {}).get("endpoints", {})
    cand = data["steps"].get("candidate", {}).get("endpoints", {})
    names = sorted(set(base) | set(cand))
    if not names:
        return ""
    fig, ax = new_figure(10.0, max(2.5, 0.32 * len(names) + 1.0))
    y = np.arange(len(names))
    ax.barh(y - 0.2, [base.get(n, {}).get("p95", 0.0) for n in names], 0.4, label="SQLite")
    ax.barh(y + 0.2, [cand.get(n, {}).get("p95", 0.0) for n in names], 0.4, label="PostgreSQL")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("p95 (ms), exact over every request of the run")
    ax.set_title("p95 per endpoint: baseline (SQLite) and candidate (PostgreSQL)", loc="left")
    ax.legend()
    return figure_svg(fig, "Same scenario, same seed, against the reference API on each backend.")


def _pool_chart(data: Mapping[str, Any]) -> str:
    from harness.analysis.html import figure_svg, new_figure

    cells = data["steps"].get("pool", {}).get("cells") or []
    if not cells:
        return ""
    fig, ax = new_figure(6.5, 3.2)
    for conc in sorted({c["concurrency"] for c in cells}):
        curve = sorted((c for c in cells if c["concurrency"] == conc), key=lambda c: c["pool_size"])
        ax.plot(
            [c["pool_size"] for c in curve],
            [c["throughput"] for c in curve],
            marker="o",
            label=f"{conc} clients",
        )
    chosen = data["steps"]["pool"].get("pool_size")
    if chosen:
        ax.axvline(chosen, color="#cf222e", linewidth=1, label=f"chosen: {chosen}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("pool size")
    ax.set_ylabel("queries / s")
    ax.set_title("asyncpg pool: throughput against pool size", loc="left")
    ax.legend(fontsize=7.5)
    return figure_svg(fig, "From the quick pool sweep (harness pools --quick --driver asyncpg).")


def _step_facts(step: str, rec: Mapping[str, Any]) -> list[tuple[str, str]]:
    skip = {"status", "started", "elapsed_s", "endpoints", "cells", "tables", "checksums", "steps"}
    out = []
    for key, value in rec.items():
        if key in skip:
            continue
        if isinstance(value, list):
            text = "; ".join(map(str, value)) if value else "none"
        elif isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items())
        else:
            text = str(value)
        out.append((key.replace("_", " "), text))
    return out


def html(data: Mapping[str, Any]) -> str:
    from harness.analysis.html import page

    verdict = data.get("verdict") or {}
    go = verdict.get("go")
    head = (
        ('<p class="pass">GO</p>' if go else '<p class="fail">NO-GO</p>')
        + "<ul>"
        + "".join(f"<li>{escape(r)}</li>" for r in verdict.get("reasons", []))
        + "</ul>"
    )
    sections = [f"<h2>Verdict</h2>{head}"]
    timing = [
        [
            s,
            data["steps"].get(s, {}).get("status", "not run"),
            _ms(data["steps"].get(s, {}).get("elapsed_s")),
        ]
        for s in STEPS
    ]
    sections.append(table_html(("step", "status", "seconds"), timing))
    if latency_rows(data):
        sections.append("<h2>Latency: SQLite against PostgreSQL</h2>")
        sections.append(table_html(LATENCY_COLUMNS, latency_rows(data)))
        sections.append(_p95_chart(data))
    for step in STEPS:
        rec = data["steps"].get(step)
        if not rec:
            continue
        sections.append(f"<h2>{escape(TITLES[step])}</h2>")
        sections.append(table_html(("", ""), _step_facts(step, rec)))
        if step == "validate" and rec.get("tables"):
            checks = {c["table"]: c for c in rec.get("checksums", [])}
            sections.append(
                table_html(
                    ("table", "SQLite rows", "PostgreSQL rows", "rejected", "counts", "rows equal"),
                    [
                        [
                            t["table"],
                            t["source"],
                            t["target"],
                            t["rejected"],
                            "ok" if t["counts_ok"] else "DIFFERENT",
                            "yes" if checks.get(t["table"], {}).get("equal", True) else "NO",
                        ]
                        for t in rec["tables"]
                    ],
                )
            )
        if step == "pool":
            sections.append(_pool_chart(data))
        if step == "rollback" and rec.get("steps"):
            sections.append(
                "<ol>" + "".join(f"<li>{escape(s)}</li>" for s in rec["steps"]) + "</ol>"
            )
    return page("Migration rehearsal", sections)


def markdown(data: Mapping[str, Any]) -> str:
    verdict = data.get("verdict") or {}
    lines = ["# Migration rehearsal", "", f"**{'GO' if verdict.get('go') else 'NO-GO'}**", ""]
    lines += [f"- {r}" for r in verdict.get("reasons", [])]
    lines += ["", "| step | status | seconds |", "| --- | --- | --- |"]
    for s in STEPS:
        rec = data["steps"].get(s, {})
        lines.append(f"| {s} | {rec.get('status', 'not run')} | {_ms(rec.get('elapsed_s'))} |")
    rows = latency_rows(data)
    if rows:
        lines += [
            "",
            "| " + " | ".join(LATENCY_COLUMNS) + " |",
            "|" + " --- |" * len(LATENCY_COLUMNS),
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_report(data: Mapping[str, Any], directory: Path) -> dict[str, Path]:
    out = {"html": directory / "rehearsal.html", "markdown": directory / "rehearsal.md"}
    out["html"].write_text(html(data))
    out["markdown"].write_text(markdown(data))
    return out
