"""Pool sizing analysis: the knee of each curve, where the rules of thumb land, Little's law,
the SLA, and a recommendation in plain words with its evidence.

Works on the cells of ``pools.json`` (plain dicts), so a partial experiment (Ctrl-C) is
analysed the same way as a whole one.

The knee of a curve (one driver, one concurrency, pool size growing) is the smallest pool
whose throughput is within :data:`THROUGHPUT_SHARE` of the best cell's and whose p99 is not
worse than the best cell's by more than :data:`P99_MARGIN` (and which fails no more often).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

THROUGHPUT_SHARE = 0.95
P99_MARGIN = 0.10
FAILURE_MARGIN = 0.01
LITTLE_TOLERANCE = 0.10
# DESIGN.md: every critical query must hold p95 < 100 ms and p99 < 500 ms.
SLA_P95_MS = 100.0
SLA_P99_MS = 500.0

Cell = Mapping[str, Any]


def failure_share(cell: Cell) -> float:
    n = int(cell.get("iterations") or 0)
    return (int(cell.get("timeouts") or 0) + int(cell.get("errors") or 0)) / n if n else 1.0


def holds_sla(cell: Cell) -> bool:
    """Whether the cell's latency (acquire + query) holds the critical queries' SLA."""
    p95, p99 = cell.get("p95"), cell.get("p99")
    return (
        p95 is not None
        and p99 is not None
        and p95 < SLA_P95_MS
        and p99 < SLA_P99_MS
        and failure_share(cell) == 0.0
    )


def _usable(cell: Cell) -> bool:
    return bool(cell.get("throughput")) and cell.get("p99") is not None


def acceptable(cell: Cell, best: Cell) -> bool:
    """Within the knee's margins of ``best``: throughput, p99 and failures."""
    return (
        _usable(cell)
        and float(cell["throughput"]) >= THROUGHPUT_SHARE * float(best["throughput"])
        and float(cell["p99"]) <= (1.0 + P99_MARGIN) * float(best["p99"])
        and failure_share(cell) <= failure_share(best) + FAILURE_MARGIN
    )


def best_cell(curve: Sequence[Cell]) -> Cell | None:
    """The cell with the highest throughput (the smaller pool on a tie)."""
    usable = [c for c in curve if _usable(c)]
    if not usable:
        return None
    return max(usable, key=lambda c: (float(c["throughput"]), -int(c["pool_size"])))


@dataclass(frozen=True)
class Knee:
    """The knee of one curve and the best cell it is measured against."""

    driver: str
    concurrency: int
    pool_size: int
    throughput: float
    p99: float
    best_pool: int
    best_throughput: float
    best_p99: float


def find_knee(curve: Sequence[Cell]) -> tuple[Cell, Cell] | None:
    """(knee cell, best cell) of one curve, or None when no cell completed anything."""
    best = best_cell(curve)
    if best is None:
        return None
    for cell in sorted(curve, key=lambda c: int(c["pool_size"])):
        if acceptable(cell, best):
            return cell, best
    return best, best


def _curves(cells: Sequence[Cell]) -> dict[tuple[str, int], list[Cell]]:
    out: dict[tuple[str, int], list[Cell]] = {}
    for cell in cells:
        out.setdefault((str(cell["driver"]), int(cell["concurrency"])), []).append(cell)
    return {k: sorted(v, key=lambda c: int(c["pool_size"])) for k, v in sorted(out.items())}


@dataclass(frozen=True)
class Overall:
    """One pool size for a driver across every concurrency measured."""

    driver: str
    pool_size: int
    #: True when the size is within the knee's margins at every concurrency.
    everywhere: bool
    #: Concurrencies at which no pool size holds the SLA.
    sla_unreachable: tuple[int, ...]
    #: The largest concurrency up to which the recommended size holds the SLA (0: none).
    sla_up_to: int
    #: The lowest share of the best throughput this size reaches at any concurrency.
    worst_share: float = 0.0


@dataclass(frozen=True)
class FormulaPoint:
    """Where a rule of thumb's pool size lands on one measured curve."""

    formula: str
    pool_size: int
    driver: str
    concurrency: int
    #: "measured", "interpolated between A and B", or "outside the grid (A..B)".
    how: str
    throughput_share: float | None
    p99_ratio: float | None
    knee: int
    acceptable: bool | None


@dataclass(frozen=True)
class LittleCheck:
    driver: str
    pool_size: int
    concurrency: int
    ratio: float | None
    ok: bool


@dataclass
class PoolsAnalysis:
    knees: list[Knee] = field(default_factory=list)
    overall: list[Overall] = field(default_factory=list)
    formulas: list[FormulaPoint] = field(default_factory=list)
    little: list[LittleCheck] = field(default_factory=list)
    recommendation: list[str] = field(default_factory=list)

    @property
    def little_flagged(self) -> list[LittleCheck]:
        return [c for c in self.little if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "knees": [asdict(k) for k in self.knees],
            "overall": [asdict(o) for o in self.overall],
            "formulas": [asdict(f) for f in self.formulas],
            "little": [asdict(c) for c in self.little],
            "little_tolerance": LITTLE_TOLERANCE,
            "knee_rule": (
                f"smallest pool with throughput >= {THROUGHPUT_SHARE:.0%} of the best cell's, "
                f"p99 <= best's + {P99_MARGIN:.0%}, failures <= best's + {FAILURE_MARGIN:.0%}"
            ),
            "sla": f"p95 < {SLA_P95_MS:g} ms and p99 < {SLA_P99_MS:g} ms, no failures",
            "recommendation": self.recommendation,
        }


def check_little(cell: Cell, tolerance: float = LITTLE_TOLERANCE) -> LittleCheck:
    """Little's law on one cell: flagged when X x R strays from the clients in flight.

    Computed again from the cell's counts, window and mean latency, so a cell whose figures
    do not agree with each other (or were edited) is caught, not only a stored ratio.
    """
    n, window = cell.get("iterations"), cell.get("window_s")
    mean, clients = cell.get("mean_all_ms"), cell.get("concurrency")
    ratio: float | None = None
    if n and window and mean is not None and clients:
        ratio = float(n) / float(window) * float(mean) / 1000.0 / float(clients)
    ok = ratio is not None and abs(float(ratio) - 1.0) <= tolerance
    return LittleCheck(
        str(cell["driver"]),
        int(cell["pool_size"]),
        int(cell["concurrency"]),
        None if ratio is None else float(ratio),
        ok,
    )


def _at_size(curve: Sequence[Cell], size: int) -> tuple[str, float | None, float | None]:
    """(how, throughput, p99) at ``size`` on a curve: measured, or interpolated in log2(size)."""
    usable = [c for c in curve if _usable(c)]
    for cell in usable:
        if int(cell["pool_size"]) == size:
            return "measured", float(cell["throughput"]), float(cell["p99"])
    below = [c for c in usable if int(c["pool_size"]) < size]
    above = [c for c in usable if int(c["pool_size"]) > size]
    if not below or not above:
        sizes = [int(c["pool_size"]) for c in usable]
        span = f"{min(sizes)}..{max(sizes)}" if sizes else "empty"
        return f"outside the grid ({span})", None, None
    lo, hi = below[-1], above[0]
    a, b = math.log2(int(lo["pool_size"])), math.log2(int(hi["pool_size"]))
    w = (math.log2(size) - a) / (b - a)
    tp = float(lo["throughput"]) + w * (float(hi["throughput"]) - float(lo["throughput"]))
    p99 = float(lo["p99"]) + w * (float(hi["p99"]) - float(lo["p99"]))
    return f"interpolated between {lo['pool_size']} and {hi['pool_size']}", tp, p99


def analyze(cells: Sequence[Cell], formulas: Mapping[str, int]) -> PoolsAnalysis:
    """Knees, overall sizes, formula positions, Little's law checks and the recommendation."""
    out = PoolsAnalysis()
    curves = _curves(cells)
    # Locust users think between requests: Little's law with L = users does not apply.
    out.little = [check_little(c) for c in cells if c.get("closed_loop", True)]
    for (driver, concurrency), curve in curves.items():
        found = find_knee(curve)
        if found is None:
            continue
        knee, best = found
        out.knees.append(
            Knee(
                driver,
                concurrency,
                int(knee["pool_size"]),
                float(knee["throughput"]),
                float(knee["p99"]),
                int(best["pool_size"]),
                float(best["throughput"]),
                float(best["p99"]),
            )
        )
        for name, size in formulas.items():
            how, tp, p99 = _at_size(curve, size)
            share = tp / float(best["throughput"]) if tp is not None else None
            ratio = p99 / float(best["p99"]) if p99 is not None else None
            ok = (
                None
                if share is None or ratio is None
                else share >= THROUGHPUT_SHARE and ratio <= 1.0 + P99_MARGIN
            )
            out.formulas.append(
                FormulaPoint(
                    name, size, driver, concurrency, how, share, ratio, int(knee["pool_size"]), ok
                )
            )
    for driver in dict.fromkeys(d for d, _ in curves):
        out.overall.append(_overall(driver, {c: v for (d, c), v in curves.items() if d == driver}))
    out.recommendation = recommend(out, cells, formulas)
    return out


def _overall(driver: str, curves: Mapping[int, Sequence[Cell]]) -> Overall:
    sizes = sorted({int(c["pool_size"]) for curve in curves.values() for c in curve})
    bests = {conc: best_cell(curve) for conc, curve in curves.items()}
    chosen: int | None = None
    for size in sizes:
        fits = True
        for conc, curve in curves.items():
            best = bests[conc]
            cell = next((c for c in curve if int(c["pool_size"]) == size), None)
            if best is None or cell is None or not acceptable(cell, best):
                fits = False
                break
        if fits:
            chosen = size
            break
    everywhere = chosen is not None
    if chosen is None:
        # No size is within the margins everywhere: the best compromise, the size whose
        # worst throughput share across the concurrencies is highest (smaller on a tie).
        chosen = max(sizes, key=lambda s: (_worst_share(s, curves, bests), -s)) if sizes else 0
    unreachable = tuple(
        conc for conc, curve in sorted(curves.items()) if not any(holds_sla(c) for c in curve)
    )
    up_to = 0
    for conc, curve in sorted(curves.items()):
        cell = next((c for c in curve if int(c["pool_size"]) == chosen), None)
        if cell is None or not holds_sla(cell):
            break
        up_to = conc
    return Overall(
        driver, chosen, everywhere, unreachable, up_to, _worst_share(chosen, curves, bests)
    )


def _worst_share(
    size: int, curves: Mapping[int, Sequence[Cell]], bests: Mapping[int, Cell | None]
) -> float:
    """The lowest share of the best throughput ``size`` reaches across the concurrencies."""
    shares = []
    for conc, curve in curves.items():
        best = bests[conc]
        cell = next((c for c in curve if int(c["pool_size"]) == size), None)
        if best is None or cell is None or not _usable(cell):
            shares.append(0.0)
        else:
            shares.append(float(cell["throughput"]) / float(best["throughput"]))
    return min(shares) if shares else 0.0


DRIVER_NAMES = {
    "psycopg": "psycopg_pool (threads)",
    "asyncpg": "asyncpg's pool (asyncio)",
    "api": "the reference API's SQLAlchemy pool (Locust load)",
}


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def recommend(
    analysis: PoolsAnalysis, cells: Sequence[Cell], formulas: Mapping[str, int]
) -> list[str]:
    """The recommendation, one paragraph per driver plus the caveats, in plain words."""
    lines: list[str] = []
    for overall in analysis.overall:
        driver = overall.driver
        name = DRIVER_NAMES.get(driver, driver)
        knees = [k for k in analysis.knees if k.driver == driver]
        mine = [
            c for c in cells if c["driver"] == driver and int(c["pool_size"]) == overall.pool_size
        ]
        concs = sorted(int(c["concurrency"]) for c in mine)
        shares = []
        for k in knees:
            cell = next((c for c in mine if int(c["concurrency"]) == k.concurrency), None)
            if cell is not None and cell.get("throughput"):
                shares.append(float(cell["throughput"]) / k.best_throughput)
        text = f"{name}: use a pool of {overall.pool_size}."
        if overall.everywhere and shares:
            text += (
                f" At every concurrency measured ({', '.join(map(str, concs))}) it gives "
                f"{min(shares):.0%}-{max(shares):.0%} of the best throughput with p99 within "
                f"{P99_MARGIN:.0%} of the best cell's."
            )
        elif knees:
            text += (
                " No single size is within the margins at every concurrency; "
                f"{overall.pool_size} is the best compromise: at worst "
                f"{overall.worst_share:.0%} of the best throughput."
            )
        per_conc = "; ".join(
            f"concurrency {k.concurrency}: knee {k.pool_size} ({k.throughput:,.0f}/s, "
            f"p99 {_fmt_ms(k.p99)}), best {k.best_pool} ({k.best_throughput:,.0f}/s)"
            for k in knees
        )
        if per_conc:
            text += f" Knees by concurrency: {per_conc}."
        if overall.sla_up_to:
            text += (
                f" It holds the critical queries' SLA (p95 < {SLA_P95_MS:g} ms, p99 < "
                f"{SLA_P99_MS:g} ms) up to concurrency {overall.sla_up_to}."
            )
        if overall.sla_unreachable:
            worst = ", ".join(map(str, overall.sla_unreachable))
            text += (
                f" At concurrency {worst} no pool size holds the SLA: the server is saturated, "
                "and a bigger pool only moves the queue from the pool into PostgreSQL; add "
                "capacity or admit fewer concurrent requests."
            )
        for formula, size in formulas.items():
            points = [f for f in analysis.formulas if f.driver == driver and f.formula == formula]
            if not points:
                continue
            judged = [p for p in points if p.acceptable is not None]
            good = sum(1 for p in judged if p.acceptable)
            where = "measured" if all(p.how == "measured" for p in points) else points[0].how
            verdict = f" The {formula} rule gives {size} ({where}): "
            if not judged:
                verdict += "not judged (outside the grid)."
            elif good == len(judged):
                extra = size - overall.pool_size
                verdict += "within the margins at every concurrency"
                verdict += (
                    f", holding {extra} connection{'s' if extra != 1 else ''} more than needed."
                    if extra > 0
                    else "."
                )
            else:
                bad = [p for p in judged if not p.acceptable]
                worst_p = min(bad, key=lambda p: p.throughput_share or 0.0)
                verdict += (
                    f"outside the margins at {len(bad)} of {len(judged)} concurrencies (at "
                    f"{worst_p.concurrency}: {worst_p.throughput_share or 0:.0%} of the best "
                    f"throughput, p99 {worst_p.p99_ratio or 0:.2f}x the best's)."
                )
            text += verdict
        lines.append(text)
    flagged = analysis.little_flagged
    if flagged:
        names = ", ".join(
            f"{c.driver} pool {c.pool_size} x {c.concurrency} (X*R/L = {c.ratio:.2f})"
            if c.ratio is not None
            else f"{c.driver} pool {c.pool_size} x {c.concurrency} (no data)"
            for c in flagged[:6]
        )
        more = f" and {len(flagged) - 6} more" if len(flagged) > 6 else ""
        lines.append(
            f"Little's law does not hold within {LITTLE_TOLERANCE:.0%} in {len(flagged)} "
            f"cell(s): {names}{more}. Their figures are not trustworthy: below 1 the client "
            "itself (CPU, GIL) held the clients outside the pool; above 1 a stall straddled "
            "the window's edge or the clock and the counts disagree. Run them again."
        )
    return lines
