"""What ``harness validate`` shows: a terminal summary, ``validation.md``, ``validation.json``
and ``validation.html`` (the load reports' style), all from one :class:`ValidationResult`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrate.validate.run import ValidationResult

SECTIONS = ("schema", "counts", "profiles", "rows", "integrity", "queries")


def _section_status(result: ValidationResult) -> dict[str, tuple[int, int]]:
    """section -> (checks passed, checks)."""
    out: dict[str, tuple[int, int]] = {}
    for section in ("schema", "profiles", "integrity"):
        found = [f for f in result.findings if f.section == section]
        out[section] = (sum(f.ok for f in found), len(found))
    out["counts"] = (sum(c.ok for c in result.counts), len(result.counts))
    out["rows"] = (sum(c.equal for c in result.checksums), len(result.checksums))
    strict = result.strict_queries
    out["queries"] = (
        sum(q.ok and not (strict and q.flags) for q in result.queries),
        len(result.queries),
    )
    return out


def _problems(result: ValidationResult) -> Iterator[tuple[str, str, str]]:
    """(section, where, what) for every failed check, row differences included."""
    for f in result.findings:
        if not f.ok:
            yield f.section, f"{f.table}: {f.check}", f.detail
    for c in result.counts:
        if not c.ok:
            yield (
                "counts",
                c.table,
                (f"{c.source:,} in SQLite, {c.target:,} in PostgreSQL, {c.rejected:,} rejected"),
            )
    for t in result.checksums:
        for d in t.diffs:
            key = ", ".join(f"{k}={v}" for k, v in d.key.items())
            if d.kind == "changed":
                what = "; ".join(f"{c.column}: {c.source} -> {c.target}" for c in d.columns)
                yield "rows", f"{t.table} ({key})", f"changed: {what}"
            else:
                where = "missing on the target" if d.kind == "missing" else "extra on the target"
                yield "rows", f"{t.table} ({key})", where
        if t.more_diffs:
            yield "rows", t.table, f"and {t.more_diffs:,} more differing rows"
        if t.note and not t.equal:
            yield "rows", t.table, t.note
    for q in result.queries:
        if not q.same_rows:
            yield "queries", q.name, q.difference or "; ".join(q.flags)
        for flag in q.flags if q.same_rows else []:
            yield "queries", q.name, flag + ("" if result.strict_queries else " (flag)")


def render(result: ValidationResult, console: Console) -> None:
    """The terminal summary: one line per section, then every problem."""
    grid = Table(title=Text(f"validation of {result.source} against {result.target}"))
    grid.add_column("section", justify="left")
    grid.add_column("passed", justify="right")
    grid.add_column("", justify="left")
    for section, (passed, total) in _section_status(result).items():
        ok = passed == total
        grid.add_row(
            section,
            f"{passed}/{total}",
            Text("pass" if ok else "FAIL", style="green" if ok else "bold red"),
        )
    console.print(grid)
    problems = list(_problems(result))
    if problems:
        table = Table(title="differences", title_justify="left")
        for name in ("section", "where", "what"):
            table.add_column(name, justify="left")
        for section, where, what in problems[:60]:
            table.add_row(section, Text(where), Text(what))
        console.print(table)
        if len(problems) > 60:
            console.print(f"... {len(problems) - 60} more in validation.md", highlight=False)
    if result.queries:
        q = Table(title="query parity", title_justify="left")
        for name in ("query", "rows", "same", "SQLite p95 ms", "PostgreSQL p95 ms", "indexes"):
            q.add_column(name, justify="left" if name in ("query", "indexes") else "right")
        for r in result.queries:
            q.add_row(
                Text(r.name),
                f"{r.rows:,}",
                "yes" if r.same_rows else "NO",
                f"{r.sqlite_p95_ms:.2f}",
                f"{r.pg_p95_ms:.2f}",
                Text(", ".join(dict.fromkeys(r.indexes)) or "-"),
            )
        console.print(q)
    console.print(
        f"{'PASS' if result.ok else 'FAIL'}: {sum(c.source_rows for c in result.checksums):,} "
        f"rows compared in {result.seconds.get('total', 0):.1f} s "
        f"({result.range_queries} range queries); report in {result.out_dir}",
        style="bold green" if result.ok else "bold red",
        highlight=False,
        markup=False,
    )


def to_dict(result: ValidationResult) -> dict[str, Any]:
    """JSON-ready, with the verdict."""
    data = dataclasses.asdict(result)
    data["ok"] = result.ok
    data["exit_code"] = result.exit_code
    data["sections"] = {
        k: {"passed": p, "checks": n} for k, (p, n) in _section_status(result).items()
    }
    data["range_queries"] = result.range_queries
    return data


def markdown(result: ValidationResult) -> str:
    """``validation.md``."""
    lines = [
        f"# Validation: {'PASS' if result.ok else 'FAIL'}",
        "",
        f"Source `{result.source}`, target `{result.target}` (schema `{result.schema}`).",
        "",
        "| section | passed |",
        "| --- | --- |",
    ]
    for section, (passed, total) in _section_status(result).items():
        lines.append(f"| {section} | {passed}/{total} |")
    lines += [
        "",
        "## Counts",
        "",
        "| table | SQLite | rejected | PostgreSQL | |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for c in result.counts:
        lines.append(
            f"| {_md(c.table)} | {c.source:,} | {c.rejected:,} | {c.target:,} | "
            f"{'ok' if c.ok else 'FAIL'} |"
        )
    lines += [
        "",
        "## Rows",
        "",
        "| table | method | rows | range queries | result |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for t in result.checksums:
        state = "equal" if t.equal else f"{len(t.diffs) + t.more_diffs} rows differ"
        lines.append(
            f"| {_md(t.table)} | {t.method} | {t.source_rows:,} | {t.range_queries} | {state} |"
        )
    problems = list(_problems(result))
    if problems:
        lines += ["", "## Differences", "", "| section | where | what |", "| --- | --- | --- |"]
        lines += [f"| {s} | {_md(w)} | {_md(x)} |" for s, w, x in problems]
    if result.queries:
        lines += [
            "",
            "## Query parity",
            "",
            "| query | rows | same | SQLite p50/p95 ms | PostgreSQL p50/p95 ms | indexes | flags |",
            "| --- | ---: | --- | ---: | ---: | --- | --- |",
        ]
        for q in result.queries:
            lines.append(
                f"| {_md(q.name)} | {q.rows:,} | {'yes' if q.same_rows else 'NO'} | "
                f"{q.sqlite_p50_ms:.2f} / {q.sqlite_p95_ms:.2f} | "
                f"{q.pg_p50_ms:.2f} / {q.pg_p95_ms:.2f} | "
                f"{_md(', '.join(dict.fromkeys(q.indexes)) or '-')} | {_md('; '.join(q.flags))} |"
            )
    if result.rejects:
        lines += ["", "## Rejected by the migration", ""]
        for table, records in result.rejects.items():
            lines.append(f"- {_md(table)}: {len(records):,} rows")
            for r in records[:5]:
                lines.append(
                    f"  - key {_md(json.dumps(r.get('key')))}: {_md(str(r.get('reason')))}"
                )
    lines += ["", "## How rows are compared", "", _CANONICAL_NOTE, ""]
    return "\n".join(lines)


_CANONICAL_NOTE = (
    "Each value is written in one canonical text form both engines produce: integers in "
    "decimal, doubles as their 8 IEEE bytes in hex, numeric without trailing zeros, booleans "
    "true/false, timestamps as YYYY-MM-DDTHH:MM:SS.ffffff (UTC and Z for timestamptz), text "
    "as its length, ':' and the text, jsonb as PostgreSQL prints it, bytes in hex, NULL as ~ "
    "(never equal to an empty text, 0:). A row hash is the first 8 bytes of the MD5 of the "
    "row's text; ranges of the first key column are compared by count and sum of hashes and "
    "split 16 ways until the differing rows stand alone."
)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def html(result: ValidationResult) -> str:
    """``validation.html``, in the load reports' style."""
    from harness.analysis.page import escape, page, table_html

    status = _section_status(result)
    verdict = (
        f'<p class="{"pass" if result.ok else "fail"}">{"PASS" if result.ok else "FAIL"}: '
        f"{escape(result.source)} against {escape(result.target)} "
        f"(schema {escape(result.schema)})</p>"
    )
    sections = [
        verdict,
        "<h2>Sections</h2>"
        + table_html(["section", "passed"], [(k, f"{p}/{n}") for k, (p, n) in status.items()]),
        "<h2>Counts</h2>"
        + table_html(
            ["table", "SQLite", "rejected", "PostgreSQL", ""],
            [
                (
                    c.table,
                    f"{c.source:,}",
                    f"{c.rejected:,}",
                    f"{c.target:,}",
                    "ok" if c.ok else "FAIL",
                )
                for c in result.counts
            ],
        ),
        "<h2>Rows</h2>"
        + table_html(
            ["table", "method", "rows", "range queries", "result"],
            [
                (
                    t.table,
                    t.method,
                    f"{t.source_rows:,}",
                    t.range_queries,
                    "equal" if t.equal else "differs",
                )
                for t in result.checksums
            ],
        ),
    ]
    problems = list(_problems(result))
    if problems:
        sections.append(
            "<h2>Differences</h2>" + table_html(["section", "where", "what"], problems, left=3)
        )
    if result.queries:
        sections.append(
            "<h2>Query parity</h2>"
            + table_html(
                ["query", "rows", "same", "SQLite p95 ms", "PostgreSQL p95 ms", "indexes", "flags"],
                [
                    (
                        q.name,
                        q.rows,
                        "yes" if q.same_rows else "NO",
                        f"{q.sqlite_p95_ms:.2f}",
                        f"{q.pg_p95_ms:.2f}",
                        ", ".join(dict.fromkeys(q.indexes)) or "-",
                        "; ".join(q.flags),
                    )
                    for q in result.queries
                ],
            )
        )
    sections.append(f'<p class="note">{escape(_CANONICAL_NOTE)}</p>')
    return page("Migration validation", sections)


def write_reports(result: ValidationResult, out_dir: Path) -> dict[str, Path]:
    """Write the three files; return kind -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "validation.json",
        "md": out_dir / "validation.md",
        "html": out_dir / "validation.html",
    }
    paths["json"].write_text(json.dumps(to_dict(result), indent=2, default=str))
    paths["md"].write_text(markdown(result))
    paths["html"].write_text(html(result))
    return paths
