"""Charts of one run, as inline SVG ``<figure>`` elements for the HTML report.

Every chart plots aggregates (per time window, per endpoint, per histogram bin), never the
raw samples, so a ten-million-request run still gives SVGs of a few tens of kilobytes. Text
stays text in the SVG (``svg.fonttype = none``): smaller, and it takes the page's font.
Figures drawn from Locust's bucketed figures say "approximate (Locust buckets)" in their
title and caption.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from harness.analysis.html import figure_svg, new_figure

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

P = ParamSpec("P")
R = TypeVar("R")
APPROXIMATE = "approximate (Locust buckets)"
COLORS = {
    "p50": "#2f6fb0",
    "p95": "#e07b00",
    "p99": "#c0392b",
    "users": "#6e7781",
    "rps": "#2f6fb0",
    "errors": "#cf222e",
}
STAGE_FILLS = ("#f3f6fa", "#e4ebf3")
PALETTE = (
    "#2f6fb0",
    "#e07b00",
    "#2e9e5b",
    "#c0392b",
    "#8e5bb5",
    "#8c564b",
    "#d15fae",
    "#6e7781",
    "#b5a300",
    "#17a2b8",
)
RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,  # endpoint names may hold "$"
    "font.size": 9.0,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.grid": True,
    "grid.color": "#d8dee4",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Draw (and render) a chart under the report's matplotlib style."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def _svg(fig: Figure, caption: str) -> str:
    return figure_svg(fig, caption)


def _figure(width: float = 10.0, height: float = 3.6) -> tuple[Figure, Axes]:
    fig, ax = new_figure(width, height)
    return fig, ax


def _title(text: str, approximate: bool) -> str:
    return f"{text} - {APPROXIMATE}" if approximate else text


def _caption(text: str, approximate: bool) -> str:
    return f"{text} Figures are {APPROXIMATE}." if approximate else text


def _time_axis(duration_s: float) -> tuple[float, str]:
    """Divisor and label for elapsed time: minutes for runs over 10 minutes, else seconds."""
    if duration_s > 3 * 3600:
        return 3600.0, "time since start (h)"
    if duration_s > 600:
        return 60.0, "time since start (min)"
    return 1.0, "time since start (s)"


def _stage_bands(
    ax: Axes, spans: Sequence[tuple[str, float, float]], origin: float, divisor: float
) -> None:
    """Shade each stage's span and write its name at the top of the axes."""
    transform = ax.get_xaxis_transform()
    for i, (name, start, end) in enumerate(spans):
        x0, x1 = (start - origin) / divisor, (end - origin) / divisor
        if x1 <= x0:
            continue
        ax.axvspan(x0, x1, color=STAGE_FILLS[i % 2], zorder=0, linewidth=0)
        ax.text(
            (x0 + x1) / 2,
            0.985,
            name,
            transform=transform,
            ha="center",
            va="top",
            fontsize=8,
            color="#57606a",
            clip_on=True,
        )


def _ms_formatter(value: float, _pos: object) -> str:
    if value >= 1000:
        return f"{value / 1000:g} s"
    return f"{value:g} ms"


def _log_ms_axis(ax: Axes, axis: str = "x", subs: Sequence[float] = (1.0, 2.0, 5.0)) -> None:
    """Log-scale latency ticks labelled "5 ms", "1 s"; ``subs=(1.0,)`` for decades only."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=tuple(subs)))
    target.set_major_formatter(FuncFormatter(_ms_formatter))
    target.set_minor_locator(NullLocator())  # tick objects are most of a chart's drawing time


@_styled
def latency_over_time(
    win: pd.DataFrame,
    spans: Sequence[tuple[str, float, float]],
    origin: float,
    duration_s: float,
    window_s: float,
    approximate: bool = False,
) -> str:
    """p50/p95/p99 per window over time, stages shaded and named, active users on the right."""
    divisor, xlabel = _time_axis(duration_s)
    fig, ax = _figure(10.0, 3.8)
    x = (win["start"].to_numpy(dtype=np.float64) - origin + window_s / 2) / divisor
    _stage_bands(ax, spans, origin, divisor)
    for q in ("p99", "p95", "p50"):
        ax.plot(x, win[q].to_numpy(dtype=np.float64), color=COLORS[q], lw=1.3, label=q)
    ax.set_ylabel("latency (ms)")
    ax.set_xlabel(xlabel)
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(duration_s / divisor, float(x.max()) if len(x) else 1.0))
    ax.set_title(_title(f"Latency percentiles per {window_s:g} s window", approximate), loc="left")
    handles, labels = ax.get_legend_handles_labels()
    if "users" in win and win["users"].notna().any():
        twin = ax.twinx()
        twin.step(
            x,
            win["users"].to_numpy(dtype=np.float64),
            where="mid",
            color=COLORS["users"],
            lw=1.0,
            ls="--",
            label="users",
        )
        twin.set_ylabel("active users", color=COLORS["users"])
        twin.set_ylim(bottom=0)
        twin.grid(False)
        twin.spines["top"].set_visible(False)
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper left", ncols=4, bbox_to_anchor=(0.0, -0.18))
    return _svg(
        fig,
        _caption(
            f"Exact p50, p95 and p99 of the requests sent in each {window_s:g} s window "
            "(failed requests included); shaded bands are the run's stages; dashed: the most "
            "users active in the window.",
            approximate,
        ),
    )


@_styled
def throughput_over_time(
    win: pd.DataFrame,
    spans: Sequence[tuple[str, float, float]],
    origin: float,
    duration_s: float,
    window_s: float,
) -> str:
    """Requests per second and failures per second per window; error rate on the right."""
    divisor, xlabel = _time_axis(duration_s)
    fig, ax = _figure(10.0, 3.4)
    x = (win["start"].to_numpy(dtype=np.float64) - origin + window_s / 2) / divisor
    _stage_bands(ax, spans, origin, divisor)
    rps = win["rps"].to_numpy(dtype=np.float64)
    count = win["count"].to_numpy(dtype=np.float64)
    fails = np.divide(
        win["failures"].to_numpy(dtype=np.float64) * rps,
        count,
        out=np.zeros_like(rps),
        where=count > 0,
    )
    ax.plot(x, rps, color=COLORS["rps"], lw=1.3, label="requests/s")
    ax.fill_between(x, 0, fails, color=COLORS["errors"], alpha=0.55, lw=0, label="failures/s")
    ax.set_ylabel("requests per second")
    ax.set_xlabel(xlabel)
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(duration_s / divisor, float(x.max()) if len(x) else 1.0))
    ax.set_title(f"Throughput and errors per {window_s:g} s window", loc="left")
    twin = ax.twinx()
    rate = win["error_rate"].to_numpy(dtype=np.float64) * 100
    twin.plot(x, rate, color=COLORS["errors"], lw=0.9, ls=":", label="error rate %")
    twin.set_ylabel("error rate (%)", color=COLORS["errors"])
    top = float(np.nanmax(rate)) if np.isfinite(rate).any() else 0.0
    twin.set_ylim(0, max(top * 1.15, 1.0))
    twin.grid(False)
    twin.spines["top"].set_visible(False)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", ncols=3, bbox_to_anchor=(0.0, -0.2))
    return _svg(
        fig,
        f"Requests sent per second in each {window_s:g} s window, the failed ones in red, "
        "and the share that failed (dotted, right axis).",
    )


def log_bins(low: float, high: float, per_decade: int = 40) -> npt.NDArray[np.float64]:
    """Bin edges evenly spaced on a log scale covering [low, high]."""
    low = max(low, 1e-3)
    high = max(high, low * 1.01)
    lo, hi = math.floor(math.log10(low) * per_decade), math.ceil(math.log10(high) * per_decade)
    return np.asarray(10.0 ** (np.arange(lo, hi + 1) / per_decade), dtype=np.float64)


def histogram_sorted(
    values: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    edges: npt.NDArray[np.float64],
) -> npt.NDArray[np.int64]:
    """Counts per (group, bin) of groups laid out sorted in ``values`` (see
    :class:`harness.analysis.stats.Grouped`): shape ``(len(starts), len(edges) - 1)``.

    Bins are ``(edges[i], edges[i + 1]]``; values outside the edges are counted in the first
    or last bin. A binary search per edge, so the cost does not grow with the samples.
    """
    out = np.zeros((len(starts), len(edges) - 1), dtype=np.int64)
    for g, (s, c) in enumerate(zip(starts.tolist(), counts.tolist(), strict=True)):
        seg = values[s : s + c]
        cuts = np.searchsorted(seg, edges, side="right")
        cuts[0], cuts[-1] = 0, c
        out[g] = np.diff(cuts)
    return out


@_styled
def latency_distribution(
    edges: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    labels: Sequence[str],
    marks: Mapping[str, float],
    approximate: bool = False,
) -> str:
    """Left: histogram of all latencies (log x). Right: CDF per endpoint (log x)."""
    fig = Figure(figsize=(10.0, 3.8), dpi=100)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    total = counts.sum(axis=0)
    left.stairs(total, edges, fill=True, color="#9ab8d8", lw=0)
    colours = ("#2f6fb0", "#e07b00", "#c0392b")
    for k, ((name, value), color) in enumerate(zip(marks.items(), colours, strict=False)):
        if value is None or not np.isfinite(value):
            continue
        left.axvline(value, color=color, lw=1.1, ls="--")
        left.text(
            value,
            0.98 - 0.08 * k,
            f" {name}",
            transform=left.get_xaxis_transform(),
            color=color,
            fontsize=8,
            va="top",
        )
    left.set_xscale("log")
    _log_ms_axis(left, subs=(1.0,))
    left.set_ylabel("requests per bin")
    left.set_xlabel("latency (log scale)")
    left.set_title(_title("Latency distribution, all requests", approximate), loc="left")
    order = np.argsort(-counts.sum(axis=1), kind="stable")
    for rank, i in enumerate(order):
        row = counts[i]
        n = row.sum()
        if n == 0:
            continue
        cdf = np.cumsum(row) / n
        right.step(
            edges[1:],
            cdf * 100,
            where="post",
            lw=1.1,
            color=PALETTE[rank % len(PALETTE)],
            label=labels[i] if rank < 12 else None,
        )
    right.set_xscale("log")
    _log_ms_axis(right, subs=(1.0,))
    right.set_ylim(0, 100.5)
    right.set_ylabel("% of requests at or below")
    right.set_xlabel("latency (log scale)")
    right.set_title(_title("Cumulative distribution per endpoint", approximate), loc="left")
    right.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7.5)
    return _svg(
        fig,
        _caption(
            "Latencies in log-spaced bins (40 per decade); dashed lines: the whole run's "
            "exact percentiles. Right: the share of each endpoint's requests at or below a "
            "latency (bin resolution).",
            approximate,
        ),
    )


@_styled
def endpoint_percentiles(
    table: pd.DataFrame,
    approximate: bool = False,
    threshold_ms: float | None = None,
    threshold_label: str = "",
) -> str:
    """Horizontal bars: p50, p95 and p99 per endpoint (log x), an SLA threshold if given."""
    rows = table.sort_values("p95", ascending=True, na_position="first")
    n = len(rows)
    fig, ax = _figure(10.0, max(1.6, 0.36 * n + 1.0))
    y = np.arange(n, dtype=np.float64)
    height = 0.26
    for k, q in enumerate(("p50", "p95", "p99")):
        if q not in rows:
            continue
        values = pd.to_numeric(rows[q], errors="coerce").to_numpy(dtype=np.float64)
        ax.barh(y + (k - 1) * height, values, height=height, color=COLORS[q], label=q, lw=0)
    ax.set_yticks(y, [str(e) for e in rows["endpoint"]], fontsize=8)
    ax.set_xscale("log")
    shown = pd.to_numeric(rows.get("p50", pd.Series(dtype=float)), errors="coerce")
    smallest = float(shown[shown > 0].min()) if (shown > 0).any() else math.nan
    if math.isfinite(smallest):
        ax.set_xlim(left=smallest / 2)  # bars grow from the left edge: keep the shortest seen
    _log_ms_axis(ax)
    ax.grid(axis="y", visible=False)
    if threshold_ms is not None:
        ax.axvline(threshold_ms, color="#cf222e", lw=1.2, ls="--", label=threshold_label or "SLA")
    ax.set_xlabel("latency (log scale)")
    ax.set_title(_title("Latency per endpoint, whole run", approximate), loc="left")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, fontsize=8)
    return _svg(
        fig,
        _caption(
            "p50, p95 and p99 of every request to each endpoint over the whole run.",
            approximate,
        ),
    )


@_styled
def stage_endpoint_heatmap(cells: pd.DataFrame, metric: str = "p95") -> str:
    """p95 per endpoint (rows) and stage (columns), colour on a log scale, values written."""
    pivot = cells.pivot_table(
        index="endpoint", columns="stage", values=metric, aggfunc="first", observed=True
    )
    stages = [s for s in dict.fromkeys(cells["stage"].tolist()) if s in pivot.columns]
    pivot = pivot[stages]
    pivot = pivot.loc[pivot.max(axis=1).sort_values(ascending=False).index]
    values = pivot.to_numpy(dtype=np.float64)
    fig, ax = _figure(10.0, max(1.8, 0.34 * len(pivot) + 1.1))
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if len(finite) else 1.0
    hi = float(finite.max()) if len(finite) else 10.0
    norm = mpl.colors.LogNorm(vmin=max(lo, 1e-3), vmax=max(hi, lo * 1.01, 1e-3))
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, aspect="auto", cmap="YlOrRd", norm=norm)
    ax.set_xticks(range(len(stages)), stages)
    ax.set_yticks(range(len(pivot)), [str(e) for e in pivot.index], fontsize=8)
    ax.tick_params(axis="x", top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    for (r, c), v in np.ndenumerate(values):
        if np.isfinite(v):
            dark = norm(v) > 0.6
            ax.text(
                c,
                r,
                _ms(v),
                ha="center",
                va="center",
                fontsize=7.5,
                color="white" if dark else "#1b1f24",
            )
    ax.set_title(f"{metric} per endpoint and stage", loc="left", pad=18)
    cbar = fig.colorbar(image, ax=ax, pad=0.01)
    cbar.ax.yaxis.set_major_formatter(FuncFormatter(_ms_formatter))
    cbar.ax.yaxis.set_minor_formatter(NullFormatter())
    cbar.ax.minorticks_off()
    return _svg(fig, f"Exact {metric} of each endpoint in each stage (blank: no requests).")


def _ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


@_styled
def bucket_distribution(
    buckets: Mapping[str, Mapping[Any, int]], approximate: bool = True
) -> str | None:
    """CDF per endpoint from Locust's ``response_times`` buckets (``--json-file``)."""
    usable = {k: v for k, v in buckets.items() if v}
    if not usable:
        return None
    fig, ax = _figure(10.0, 3.4)
    for i, (name, hist) in enumerate(sorted(usable.items())):
        keys = np.array([float(k) for k in hist], dtype=np.float64)
        vals = np.array(list(hist.values()), dtype=np.float64)
        order = np.argsort(keys)
        keys, vals = np.maximum(keys[order], 0.5), vals[order]
        ax.step(
            keys,
            np.cumsum(vals) / vals.sum() * 100,
            where="post",
            lw=1.1,
            color=PALETTE[i % len(PALETTE)],
            label=name,
        )
    ax.set_xscale("log")
    _log_ms_axis(ax)
    ax.set_ylim(0, 100.5)
    ax.set_ylabel("% of requests at or below")
    ax.set_xlabel("latency (log scale)")
    ax.set_title(_title("Cumulative distribution per endpoint", approximate), loc="left")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7.5)
    return _svg(fig, _caption("From Locust's response-time buckets.", approximate))
