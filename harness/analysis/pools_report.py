"""The pool experiment's reports: a terminal table, ``pools.md`` and ``pools.html`` with
heatmaps (pool size x concurrency, for p99 and for throughput) and curves against pool size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from harness.analysis.pools import (
    DRIVER_NAMES,
    SLA_P99_MS,
    PoolsAnalysis,
    holds_sla,
)

Cell = Mapping[str, Any]


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    v = float(value)
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}%"


def _knee_sizes(analysis: PoolsAnalysis) -> dict[tuple[str, int], int]:
    return {(k.driver, k.concurrency): k.pool_size for k in analysis.knees}


CELL_COLUMNS = (
    "driver",
    "pool",
    "concurrency",
    "throughput/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "query p99 ms",
    "acquire p50 ms",
    "acquire p99 ms",
    "timeouts",
    "errors",
    "server active (mean/max)",
    "server waiting (mean)",
    "client CPU",
    "server CPU",
    "X*R/L",
    "SLA",
    "knee",
)


def cell_rows(data: Mapping[str, Any], analysis: PoolsAnalysis) -> list[list[str]]:
    """One row per cell, in the order they ran."""
    knees = _knee_sizes(analysis)
    rows = []
    for c in data["cells"]:
        active = (
            f"{c['server_active_mean']:.1f}/{c['server_active_max']}"
            if c.get("server_active_mean") is not None
            else "-"
        )
        waiting = (
            f"{c['server_waiting_mean']:.1f}" if c.get("server_waiting_mean") is not None else "-"
        )
        knee = knees.get((c["driver"], c["concurrency"])) == c["pool_size"]
        rows.append(
            [
                c["driver"],
                str(c["pool_size"]),
                str(c["concurrency"]),
                f"{c['throughput']:,.0f}",
                _ms(c.get("p50")),
                _ms(c.get("p95")),
                _ms(c.get("p99")),
                _ms(c.get("query_p99")),
                _ms(c.get("acquire_p50")),
                _ms(c.get("acquire_p99")),
                str(c["timeouts"]),
                str(c["errors"]),
                active,
                waiting,
                _pct(c.get("client_cpu_pct")),
                _pct(c.get("server_cpu_pct")),
                "-" if c.get("little_ratio") is None else f"{c['little_ratio']:.2f}",
                "pass" if holds_sla(c) else "fail",
                "knee" if knee else "",
            ]
        )
    return rows


def formula_rows(analysis: PoolsAnalysis) -> list[list[str]]:
    rows = []
    for f in analysis.formulas:
        rows.append(
            [
                f.formula,
                str(f.pool_size),
                f.driver,
                str(f.concurrency),
                f.how,
                "-" if f.throughput_share is None else f"{f.throughput_share:.0%}",
                "-" if f.p99_ratio is None else f"{f.p99_ratio:.2f}x",
                str(f.knee),
                "-" if f.acceptable is None else ("yes" if f.acceptable else "no"),
            ]
        )
    return rows


FORMULA_COLUMNS = (
    "rule",
    "pool",
    "driver",
    "concurrency",
    "how",
    "throughput vs best",
    "p99 vs best",
    "measured knee",
    "within margins",
)


def _status_line(data: Mapping[str, Any]) -> str:
    grid = data["grid"]
    total = len(grid["drivers"]) * len(grid["pool_sizes"]) * len(grid["concurrencies"])
    done = len(data["cells"])
    if data.get("interrupted"):
        return f"Interrupted: {done} of {total} cells measured; the analysis covers those."
    return f"{done} of {total} cells measured in {data.get('elapsed_s', 0):.0f} s."


def render_terminal(data: Mapping[str, Any], analysis: PoolsAnalysis, console: Console) -> None:
    """The summary table per driver (throughput and p99 by pool size and concurrency)."""
    knees = _knee_sizes(analysis)
    for driver in data["grid"]["drivers"]:
        cells = [c for c in data["cells"] if c["driver"] == driver]
        if not cells:
            continue
        concs = sorted({int(c["concurrency"]) for c in cells})
        table = Table(title=DRIVER_NAMES.get(driver, driver), title_justify="left")
        table.add_column("pool", justify="right")
        for conc in concs:
            table.add_column(f"c={conc}", justify="right")
        for size in sorted({int(c["pool_size"]) for c in cells}):
            row = [str(size)]
            for conc in concs:
                c = next(
                    (x for x in cells if x["pool_size"] == size and x["concurrency"] == conc), None
                )
                if c is None:
                    row.append("")
                    continue
                mark = " *" if knees.get((driver, conc)) == size else ""
                tp, p99, acq = c["throughput"], c.get("p99"), c.get("acquire_p99")
                row.append(f"{tp:,.0f} | {_ms(p99)} | {_ms(acq)}{mark}")
            table.add_row(*row)
        console.print(table)
    console.print(
        "each cell: throughput/s | p99 ms | acquire p99 ms; * the knee: the smallest pool "
        "within 5% of the best throughput whose p99 is within 10% of the best cell's",
        highlight=False,
    )
    console.print(_status_line(data), highlight=False)
    for line in analysis.recommendation:
        console.print(line, highlight=False, soft_wrap=True)


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    return head + "".join("| " + " | ".join(r) + " |\n" for r in rows)


def measured_lines(data: Mapping[str, Any]) -> list[str]:
    """How the figures were measured, for both reports."""
    server = data["server"]
    grid = data["grid"]
    lines = [
        f"Target: {data['target']} (PostgreSQL {server['version']}, max_connections "
        f"{server['max_connections']}, {server['cores']} cores from {server['cores_from']}).",
    ]
    if data.get("mode") == "api":
        lines += [
            f"Workload: the {grid.get('scenario', 'steady')} scenario shrunk to "
            f"{grid['duration_s']:g} s per pool size, run by `harness run --backend postgres` "
            "against the reference API (its Redis cache on); one run directory per cell "
            "under api/.",
        ]
    else:
        lines += [
            f"Database: a private clone of the reference dataset ({data['dataset']}), "
            "dropped after.",
            f"Workload: the critical queries with the database users' weights, plus "
            f"{grid['write_share']:.0%} ingestion transactions; one client per thread "
            "(psycopg) or task (asyncpg), no think time.",
            f"Each cell: {grid['warmup_s']} s warm-up, {grid['duration_s']} s measured; "
            f"acquire timeout {grid['acquire_timeout_s']} s; seed {grid['seed']}.",
        ]
    lines += [f"{k}: {v}." for k, v in data["definitions"].items()]
    lines.append(f"harness {data['harness_version']}, started {data['started']}.")
    return lines


def markdown(data: Mapping[str, Any], analysis: PoolsAnalysis) -> str:
    """``pools.md``."""
    parts = [
        "# Connection pool sizing\n",
        _status_line(data) + "\n",
        "## Recommendation\n",
        *(f"- {line}" for line in analysis.recommendation),
        "",
        "## How it was measured\n",
        *(f"- {line}" for line in measured_lines(data)),
        f"- Knee: {analysis.to_dict()['knee_rule']}. SLA: {analysis.to_dict()['sla']}.",
        "",
        "## Rules of thumb against the measurements\n",
        _md_table(FORMULA_COLUMNS, formula_rows(analysis)),
        "## Every cell\n",
        _md_table(CELL_COLUMNS, cell_rows(data, analysis)),
        (
            "Raw samples: each cell's run directory under `api/`.\n"
            if data.get("mode") == "api"
            else "Raw samples: `samples/<driver>-pool<size>-c<concurrency>.parquet`; "
            "`pg_stat_activity` samples: `activity/`.\n"
        ),
    ]
    return "\n".join(parts)


def _grid_values(
    cells: Sequence[Cell], metric: str
) -> tuple[list[int], list[int], np.ndarray[Any, np.dtype[np.float64]]]:
    sizes = sorted({int(c["pool_size"]) for c in cells})
    concs = sorted({int(c["concurrency"]) for c in cells})
    values = np.full((len(sizes), len(concs)), np.nan)
    for c in cells:
        v = c.get(metric)
        if v is not None:
            values[sizes.index(int(c["pool_size"])), concs.index(int(c["concurrency"]))] = float(v)
    return sizes, concs, values


def _heatmap(cells: Sequence[Cell], metric: str, title: str, log: bool, caption: str) -> str:
    import matplotlib as mpl

    from harness.analysis.html import figure_svg, new_figure

    sizes, concs, values = _grid_values(cells, metric)
    fig, ax = new_figure(6.5, max(2.4, 0.36 * len(sizes) + 1.2))
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if len(finite) else 1.0
    hi = float(finite.max()) if len(finite) else 10.0
    norm: Any = (
        mpl.colors.LogNorm(vmin=max(lo, 1e-3), vmax=max(hi, lo * 1.01, 1e-3))
        if log
        else mpl.colors.Normalize(vmin=lo, vmax=max(hi, lo * 1.01 + 1e-9))
    )
    image = ax.imshow(
        np.ma.masked_invalid(values), aspect="auto", cmap="YlOrRd" if log else "YlGn", norm=norm
    )
    ax.set_xticks(range(len(concs)), [str(c) for c in concs])
    ax.set_yticks(range(len(sizes)), [str(s) for s in sizes])
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("pool size")
    ax.grid(False)
    for (r, c), v in np.ndenumerate(values):
        if np.isfinite(v):
            dark = float(norm(v)) > 0.6
            ax.text(
                c,
                r,
                _ms(v) if log else f"{v:,.0f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "#1b1f24",
            )
    ax.set_title(title, loc="left")
    fig.colorbar(image, ax=ax, pad=0.01)
    return figure_svg(fig, caption)


def _curves(
    cells: Sequence[Cell],
    metric: str,
    title: str,
    ylabel: str,
    formulas: Mapping[str, int],
    knees: Mapping[int, int],
    log_y: bool,
    sla: float | None,
    caption: str,
) -> str:
    from harness.analysis.html import figure_svg, new_figure

    fig, ax = new_figure(6.5, 3.4)
    concs = sorted({int(c["concurrency"]) for c in cells})
    for conc in concs:
        curve = sorted(
            (c for c in cells if int(c["concurrency"]) == conc and c.get(metric) is not None),
            key=lambda c: int(c["pool_size"]),
        )
        if not curve:
            continue
        xs = [int(c["pool_size"]) for c in curve]
        ys = [float(c[metric]) for c in curve]
        (line,) = ax.plot(xs, ys, marker="o", markersize=3.5, label=f"{conc} clients")
        knee = knees.get(conc)
        if knee in xs:
            ax.plot(
                [knee],
                [ys[xs.index(knee)]],
                marker="D",
                markersize=8,
                color=line.get_color(),
                markerfacecolor="none",
            )
    styles = ("--", ":")
    for (name, size), style in zip(formulas.items(), styles, strict=False):
        ax.axvline(size, color="#57606a", linestyle=style, linewidth=1, label=f"{name} = {size}")
    if sla is not None:
        ax.axhline(sla, color="#cf222e", linewidth=1, label=f"SLA {sla:g} ms")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(mpl_scalar())
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("pool size (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(fontsize=7.5)
    return figure_svg(fig, caption)


def mpl_scalar() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _p: f"{v:g}")


def html_report(data: Mapping[str, Any], analysis: PoolsAnalysis) -> str:
    """``pools.html``: recommendation, charts, tables; self-contained."""
    from harness.analysis.html import escape, page, table_html

    knees = _knee_sizes(analysis)
    formulas = data["formulas"]
    sections = [
        f'<p class="note">{escape(_status_line(data))}</p>',
        "<h2>Recommendation</h2><ul>"
        + "".join(f"<li>{escape(line)}</li>" for line in analysis.recommendation)
        + "</ul>",
    ]
    for driver in data["grid"]["drivers"]:
        cells = [c for c in data["cells"] if c["driver"] == driver]
        if not cells:
            continue
        dk = {conc: size for (d, conc), size in knees.items() if d == driver}
        name = DRIVER_NAMES.get(driver, driver)
        sections.append(f"<h2>{escape(name)}</h2>")
        sections.append(
            _heatmap(
                cells,
                "p99",
                f"p99 latency (ms), {driver}",
                True,
                "p99 of acquire + query per cell, exact over every sample.",
            )
        )
        sections.append(
            _heatmap(
                cells,
                "throughput",
                f"throughput (/s), {driver}",
                False,
                "Iterations completed without error per second of the window.",
            )
        )
        sections.append(
            _curves(
                cells,
                "throughput",
                f"throughput against pool size, {driver}",
                "iterations / s",
                formulas,
                dk,
                False,
                None,
                "Diamonds: the knee of each curve. Dashed and dotted: the rules of thumb.",
            )
        )
        sections.append(
            _curves(
                cells,
                "p99",
                f"p99 against pool size, {driver}",
                "p99 (ms)",
                formulas,
                dk,
                True,
                SLA_P99_MS,
                "p99 of acquire + query; red: the critical queries' SLA.",
            )
        )
        sections.append(
            _curves(
                cells,
                "acquire_p99",
                f"pool wait p99 against pool size, {driver}",
                "acquire p99 (ms)",
                formulas,
                dk,
                True,
                None,
                "Time to get a connection from the pool, p99.",
            )
        )
    sections.append("<h2>Rules of thumb against the measurements</h2>")
    sections.append(table_html(FORMULA_COLUMNS, formula_rows(analysis), left=3))
    sections.append("<h2>Every cell</h2>")
    sections.append(table_html(CELL_COLUMNS, cell_rows(data, analysis), left=1))
    sections.append(
        "<h2>How it was measured</h2><ul>"
        + "".join(f"<li>{escape(x)}</li>" for x in measured_lines(data))
        + "</ul>"
    )
    return page("Connection pool sizing", sections)


def write_reports(
    data: Mapping[str, Any], analysis: PoolsAnalysis, run_dir: Path
) -> dict[str, Path]:
    """Write ``pools.md`` and ``pools.html`` into ``run_dir``."""
    md = run_dir / "pools.md"
    md.write_text(markdown(data, analysis))
    html = run_dir / "pools.html"
    html.write_text(html_report(data, analysis))
    return {"markdown": md, "html": html}
