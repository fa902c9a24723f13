"""Exact statistics from raw samples: per group, per time window, per error kind.

Every latency figure is computed from every sample in its group, never from buckets.
Percentiles use :data:`PERCENTILE_DEFINITION`, and the values are *identical* (bit for bit) to
``numpy.percentile(values, q, method="linear")`` on the same values: the samples are sorted
once by group key and latency, and each percentile is read from the sorted values by index
with the same interpolation formula numpy uses. That costs one sort of the latencies however
many groups and percentiles are asked for, so ten million samples split by stage x endpoint
take a couple of seconds.

Inputs are ``Run.samples`` frames (see :mod:`harness.analysis.load`): ``latency_ms``, ``ok``,
``start_time``, ``users``, ``status``, ``error`` and the grouping columns (``endpoint``,
``stage``, ``name``, ``request_type``...). Grouping columns may be strings or categoricals;
:func:`categorize` turns them into categoricals once, which makes repeated grouping of big
frames faster.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

PERCENTILE_DEFINITION = (
    "linear interpolation between closest ranks (numpy's default, Hyndman & Fan type 7)"
)
QUANTILES: dict[str, float] = {
    "p50": 50,
    "p75": 75,
    "p90": 90,
    "p95": 95,
    "p99": 99,
    "p99.9": 99.9,
}
STAT_COLUMNS = (
    "count",
    "failures",
    "error_rate",
    "seconds",
    "rps",
    "mean",
    "min",
    *QUANTILES,
    "max",
)
WINDOW_QUANTILES = ("p50", "p95", "p99")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
T = TypeVar("T")


def _threads() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


def _parallel(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run ``tasks`` on a few threads and return their results in order.

    The heavy parts here (sorting, hashing strings in Arrow) release the GIL, so threads use
    the machine's cores; the results do not depend on how the work was split.
    """
    workers = min(_threads(), len(tasks))
    if workers <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]


def _sort_segments(values: FloatArray, starts: IntArray, counts: IntArray) -> None:
    """Sort ``values[starts[g]:starts[g] + counts[g]]`` in place for every group ``g``,
    split into a few chunks of about equal size sorted on separate threads."""
    bounds = list(zip(starts.tolist(), counts.tolist(), strict=True))
    total = int(counts.sum())
    n_chunks = _threads() if total > 1_000_000 else 1
    chunks: list[list[tuple[int, int]]] = [[] for _ in range(n_chunks)]
    for s, c in bounds:
        chunks[min(n_chunks - 1, s * n_chunks // max(total, 1))].append((s, c))

    def work(chunk: list[tuple[int, int]]) -> None:
        for s, c in chunk:
            if c > 1:
                values[s : s + c].sort()

    _parallel([functools.partial(work, chunk) for chunk in chunks])


# -- percentiles -----------------------------------------------------------------------------


def percentiles_sorted(
    values: FloatArray, starts: IntArray, counts: IntArray, qs: Sequence[float]
) -> FloatArray:
    """Percentiles of groups laid out sorted and contiguous in ``values``.

    Group ``g`` is ``values[starts[g] : starts[g] + counts[g]]``, sorted ascending and not
    empty. Returns an array of shape ``(len(starts), len(qs))``; ``qs`` are in percent. The
    arithmetic is numpy's own for ``method="linear"`` (``_lerp`` included), so each value
    equals ``np.percentile(group, q)`` exactly.
    """
    starts = np.asarray(starts, dtype=np.int64)[:, None]
    n = np.asarray(counts, dtype=np.int64)[:, None]
    if len(starts) == 0:
        return np.empty((0, len(qs)), dtype=np.float64)
    if (n <= 0).any():
        raise ValueError("percentiles of an empty group")
    q = np.true_divide(np.asarray(qs, dtype=np.float64), 100)[None, :]
    virtual = (n - 1) * q  # numpy: get_virtual_index for "linear"
    prev = np.floor(virtual)
    above = virtual >= n - 1
    gamma = virtual - prev
    lo = np.where(above, n - 1, prev.astype(np.int64))
    hi = np.where(above, n - 1, lo + 1)
    a = values[starts + lo]
    b = values[starts + hi]
    diff = b - a
    out = a + diff * gamma
    upper = b - diff * (1 - gamma)
    out = np.where(gamma >= 0.5, upper, out)
    return np.where(above, b, out)


# -- grouping ---------------------------------------------------------------------------------

WINDOW = "window"
_MANY_GROUPS = 200_000  # above this, one lexsort beats a Python loop over the groups


@dataclass
class Grouped:
    """Samples grouped by key columns, each group's latencies sorted, with per-group sums.

    ``keys`` has one row per non-empty group, in key order (each key column's codes follow
    ``labels``); group ``g``'s latencies are ``sorted_latency[starts[g]:starts[g] +
    counts[g]]``, ascending. :meth:`coarsen` derives a grouping by fewer keys without going
    back to the samples: the finer groups' sorted runs are concatenated and sorted again,
    which is cheaper than grouping the samples anew.
    """

    keys: pd.DataFrame
    codes: dict[str, IntArray]
    labels: dict[str, list[object]]
    sorted_latency: FloatArray
    starts: IntArray
    counts: IntArray
    failures: FloatArray
    latency_sum: FloatArray
    users_max: IntArray | None

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def by(self) -> list[str]:
        return list(self.keys.columns)

    def percentiles(self, qs: Sequence[float]) -> FloatArray:
        return percentiles_sorted(self.sorted_latency, self.starts, self.counts, qs)

    def coarsen(self, by: Sequence[str], latencies: bool = True) -> Grouped:
        """The same samples grouped by ``by`` (a subset of this grouping's keys).

        ``latencies=False`` skips sorting the latencies (counts and sums only; the result's
        ``sorted_latency`` is empty and percentiles must not be asked of it).
        """
        by = list(by)
        missing = set(by) - set(self.by)
        if missing:
            raise ValueError(f"cannot coarsen to {by}: not grouped by {sorted(missing)}")
        if by == self.by:
            return self
        n_fine = len(self)
        combined = _combine(self.codes, self.labels, by)
        if not by:
            combined = np.zeros(n_fine, dtype=np.int64)
        present, coarse = np.unique(combined, return_inverse=True)
        coarse = coarse.ravel().astype(np.int64)
        n = len(present)
        perm = np.argsort(coarse, kind="stable")
        members = np.bincount(coarse, minlength=n)
        first_member = np.zeros(n, dtype=np.int64)
        first_member[1:] = np.cumsum(members)[:-1]
        counts = np.bincount(coarse, weights=self.counts, minlength=n).astype(np.int64)
        starts = _starts(counts)
        if not latencies:
            values = np.empty(0, dtype=np.float64)
        elif n == 1:
            values = np.sort(self.sorted_latency)
        else:
            fine_starts, fine_counts = self.starts[perm].tolist(), self.counts[perm].tolist()
            values = np.concatenate(
                [
                    self.sorted_latency[s : s + c]
                    for s, c in zip(fine_starts, fine_counts, strict=True)
                ]
            )
            for g in np.flatnonzero(members > 1).tolist():
                values[starts[g] : starts[g] + counts[g]].sort()
        codes = {col: self.codes[col][perm[first_member]] for col in by}
        users = None
        if self.users_max is not None:
            users = np.maximum.reduceat(self.users_max[perm], first_member)
        return Grouped(
            keys=_keys_frame(codes, self.labels, by, n),
            codes=codes,
            labels={col: self.labels[col] for col in by},
            sorted_latency=values,
            starts=starts,
            counts=counts,
            failures=np.bincount(coarse, weights=self.failures, minlength=n).astype(np.float64),
            latency_sum=np.bincount(coarse, weights=self.latency_sum, minlength=n).astype(
                np.float64
            ),
            users_max=users,
        )


def _combine(
    codes: Mapping[str, IntArray], labels: Mapping[str, list[object]], cols: Sequence[str]
) -> IntArray:
    """One integer per group from several key codes (mixed radix)."""
    n = len(next(iter(codes.values()))) if codes else 0
    combined = np.zeros(n, dtype=np.int64)
    for col in cols:
        combined = combined * max(len(labels[col]), 1) + codes[col]
    return combined


def _starts(counts: IntArray) -> IntArray:
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts):
        starts[1:] = np.cumsum(counts)[:-1]
    return starts


def _keys_frame(
    codes: Mapping[str, IntArray], labels: Mapping[str, list[object]], by: Sequence[str], n: int
) -> pd.DataFrame:
    data = {}
    for col in by:
        table = np.empty(len(labels[col]), dtype=object)
        table[:] = labels[col]
        data[col] = table[codes[col]] if len(table) else np.empty(0, dtype=object)
    return pd.DataFrame(data, index=range(n))


def _key_codes(
    column: pd.Series, order: Sequence[str] | None = None
) -> tuple[IntArray, list[object]]:
    """Integer codes (0..k-1) and the labels they stand for, in a stable display order."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy().astype(np.int64)
        labels: list[object] = list(column.cat.categories)
        if (codes < 0).any():
            codes = np.where(codes < 0, len(labels), codes)
            labels.append(None)
    else:
        raw, uniques = pd.factorize(column, sort=True, use_na_sentinel=False)
        codes = np.asarray(raw, dtype=np.int64)
        labels = [None if _isna(u) else u for u in uniques]
    if order:
        rank = {name: i for i, name in enumerate(order)}
        ordered = sorted(
            range(len(labels)),
            key=lambda i: (rank.get(str(labels[i]), len(rank)), str(labels[i])),
        )
        remap = np.empty(len(labels), dtype=np.int64)
        remap[ordered] = np.arange(len(labels))
        codes = remap[codes] if len(codes) else codes
        labels = [labels[i] for i in ordered]
    return codes, labels


def _isna(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _group_order(gid: IntArray, n_groups: int) -> IntArray:
    """Row indices ordered by group, stable: numpy radix-sorts 16-bit integers, so a group
    id is sorted as one or two 15-bit digits (least significant first)."""
    if n_groups < 2**15:
        return np.argsort(gid.astype(np.int16), kind="stable")
    if n_groups < 2**30:
        first = np.argsort((gid & 0x7FFF).astype(np.int16), kind="stable")
        second = np.argsort((gid[first] >> 15).astype(np.int16), kind="stable")
        return first[second]
    return np.argsort(gid, kind="stable")


def build(
    samples: pd.DataFrame,
    by: Sequence[str],
    orders: Mapping[str, Sequence[str]] | None = None,
    window: tuple[IntArray, int] | None = None,
) -> Grouped:
    """Group ``samples`` by the columns ``by`` (after a ``window`` key, if given).

    ``orders`` gives a display order for some key columns (e.g. stages in time order; other
    columns sort by value). ``window`` is (window index of every row, number of windows).
    Sorting values is several times faster than argsort of floats, so rows are ordered by
    group with a radix sort of small integers, then each group's latencies sorted in place.
    """
    latency = samples["latency_ms"].to_numpy(dtype=np.float64)
    n_rows = len(latency)
    parts: list[tuple[str, IntArray, list[object]]] = []
    if window is not None:
        parts.append((WINDOW, window[0], list(range(window[1]))))
    for col in by:
        codes, labels = _key_codes(samples[col], (orders or {}).get(col))
        parts.append((col, codes, labels))
    sizes = [max(len(labels), 1) for _, _, labels in parts]
    combined = np.zeros(n_rows, dtype=np.int64)
    for (_, codes, _labels), size in zip(parts, sizes, strict=True):
        combined = combined * size + codes
    space = int(np.prod(sizes, dtype=np.float64)) if parts else 1
    if space <= 4 * max(n_rows, 1):
        present = np.flatnonzero(np.bincount(combined, minlength=space))
        lookup = np.full(space, -1, dtype=np.int64)
        lookup[present] = np.arange(len(present))
        gid = lookup[combined]
    else:
        present, inverse = np.unique(combined, return_inverse=True)
        gid = inverse.astype(np.int64).ravel()
    n_groups = len(present)
    codes_of: dict[str, IntArray] = {}
    rest = present.astype(np.int64)
    for (name, _codes, _labels), size in reversed(list(zip(parts, sizes, strict=True))):
        codes_of[name] = rest % size
        rest = rest // size
    counts = np.bincount(gid, minlength=n_groups).astype(np.int64)
    starts = _starts(counts)
    if n_groups <= 1:
        ordered = np.sort(latency)
    elif n_groups > _MANY_GROUPS:
        ordered = latency[np.lexsort((latency, gid))]
    else:
        ordered = latency[_group_order(gid, n_groups)]
        _sort_segments(ordered, starts, counts)
    users_max: IntArray | None = None
    if "users" in samples and n_groups:
        users_max = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(users_max, gid, samples["users"].to_numpy(dtype=np.int64))
    names = [name for name, _, _ in parts]
    labels_of = {name: labels for name, _, labels in parts}
    failed = (~samples["ok"].to_numpy(dtype=bool)).astype(np.float64)
    return Grouped(
        keys=_keys_frame(codes_of, labels_of, names, n_groups),
        codes=codes_of,
        labels=labels_of,
        sorted_latency=ordered,
        starts=starts,
        counts=counts,
        failures=np.bincount(gid, weights=failed, minlength=n_groups).astype(np.float64),
        latency_sum=np.bincount(gid, weights=latency, minlength=n_groups).astype(np.float64),
        users_max=users_max,
    )


def _stage_order(
    samples: pd.DataFrame, spans: Mapping[str, tuple[float, float]] | None
) -> list[str]:
    if spans:
        return list(spans)
    if "stage" not in samples or samples.empty:
        return []
    first = samples.groupby("stage", observed=True, sort=False)["start_time"].min()
    return [str(s) for s in first.sort_values().index]


def categorize(
    samples: pd.DataFrame, columns: Sequence[str] = ("endpoint", "stage", "name", "request_type")
) -> pd.DataFrame:
    """``samples`` with its grouping columns as categoricals (a shallow copy; cheap to group)."""
    out = samples.copy(deep=False)
    todo = [c for c in columns if c in out and not isinstance(out[c].dtype, pd.CategoricalDtype)]
    # Hashing strings is done in Arrow without the GIL: a column per thread.
    factorized = _parallel([functools.partial(pd.factorize, out[col], sort=True) for col in todo])
    for col, (codes, uniques) in zip(todo, factorized, strict=True):
        out[col] = pd.Categorical.from_codes(codes, categories=pd.Index(uniques), validate=False)
    return out


# -- exact statistics -------------------------------------------------------------------------


def _stats_frame(
    g: Grouped,
    seconds: float,
    spans: Mapping[str, tuple[float, float]] | None,
) -> pd.DataFrame:
    by = [c for c in g.by if c != WINDOW]
    counts = g.counts.astype(np.float64)
    duration = np.full(len(g), float(seconds))
    if "stage" in by and spans:
        for i, stage in enumerate(g.keys["stage"].tolist()):
            if stage in spans:
                s, e = spans[stage]
                duration[i] = max(float(e) - float(s), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rps = np.where(duration > 0, counts / duration, np.nan)
    pct = g.percentiles(list(QUANTILES.values()))
    out = g.keys[by].copy()
    out["count"] = g.counts
    out["failures"] = g.failures.astype(np.int64)
    out["error_rate"] = g.failures / counts
    out["seconds"] = duration
    out["rps"] = rps
    out["mean"] = g.latency_sum / counts
    out["min"] = g.sorted_latency[g.starts]
    for i, name in enumerate(QUANTILES):
        out[name] = pct[:, i]
    out["max"] = g.sorted_latency[g.starts + g.counts - 1]
    return out[[*by, *STAT_COLUMNS]].reset_index(drop=True)


def _span_seconds(samples: pd.DataFrame) -> float:
    start = samples["start_time"].to_numpy(dtype=np.float64)
    return float(start.max() - start.min()) if len(start) else 0.0


def exact_stats(
    samples: pd.DataFrame,
    by: list[str],
    seconds: float | None = None,
    spans: dict[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """One row per group of ``by`` (``[]`` = all samples together) with exact statistics.

    Columns: the ``by`` keys, then ``count``, ``failures``, ``error_rate`` (failures/count),
    ``seconds`` (the duration rps is over), ``rps`` (count/seconds), ``mean``, ``min``,
    ``p50`` ``p75`` ``p90`` ``p95`` ``p99`` ``p99.9``, ``max`` (latencies in ms; percentiles
    per :data:`PERCENTILE_DEFINITION`, failed requests included).

    The duration is the stage's span when grouped by ``stage`` and ``spans`` (stage ->
    (start, end) epoch seconds) names it, else ``seconds``, else the span of the samples'
    start times. Stages are listed in ``spans`` order (else by first sample), other keys
    sorted by value. Several groupings of one big frame: :func:`summarize` is faster.
    """
    if samples.empty:
        return pd.DataFrame(columns=[*by, *STAT_COLUMNS])
    orders = {"stage": _stage_order(samples, spans)} if "stage" in by else None
    g = build(samples, by, orders)
    return _stats_frame(g, _span_seconds(samples) if seconds is None else seconds, spans)


@dataclass
class Summary:
    """Several groupings of one run's samples, computed together (see :func:`summarize`)."""

    stats: dict[tuple[str, ...], pd.DataFrame]
    windows: pd.DataFrame | None
    groups: dict[tuple[str, ...], Grouped]


def summarize(
    samples: pd.DataFrame,
    groupings: Sequence[Sequence[str]],
    seconds: float | None = None,
    spans: dict[str, tuple[float, float]] | None = None,
    window_s: float | None = None,
    origin: float | None = None,
    end: float | None = None,
) -> Summary:
    """:func:`exact_stats` for each of ``groupings`` (and :func:`windows` when ``window_s``),
    from one grouping of the samples by every key involved: the samples are ordered and
    sorted once, each coarser table is derived from the finest groups.

    ``stats[tuple(by)]`` is exactly ``exact_stats(samples, by, seconds, spans)``.
    """
    keys = list(dict.fromkeys(col for by in groupings for col in by))
    if window_s is not None and "stage" in samples and "stage" not in keys:
        keys.append("stage")
    if samples.empty:
        return Summary(
            stats={tuple(by): exact_stats(samples, list(by)) for by in groupings},
            windows=windows(samples, window_s) if window_s is not None else None,
            groups={},
        )
    orders = {"stage": _stage_order(samples, spans)}
    window = None
    if window_s is not None:
        window, t0 = _window_index(samples, window_s, origin)
    fine = build(samples, keys, orders, window)
    secs = _span_seconds(samples) if seconds is None else seconds
    # Each table comes from the fine groups alone: derive them side by side.
    coarse = _parallel([functools.partial(fine.coarsen, list(by)) for by in groupings])
    groups = {tuple(by): g for by, g in zip(groupings, coarse, strict=True)}
    stats = {key: _stats_frame(g, secs, spans) for key, g in groups.items()}
    win = None
    if window is not None:
        win = _windows_frame(fine, [], window_s or 10.0, t0, window[1], end, samples)
    return Summary(stats=stats, windows=win, groups=groups)


# -- time windows -----------------------------------------------------------------------------


def _window_index(
    samples: pd.DataFrame, seconds: float, origin: float | None
) -> tuple[tuple[IntArray, int], float]:
    if seconds <= 0:
        raise ValueError("window length must be positive")
    start_time = samples["start_time"].to_numpy(dtype=np.float64)
    t0 = float(start_time.min()) if origin is None else float(origin)
    widx = np.maximum(np.floor((start_time - t0) / seconds).astype(np.int64), 0)
    return (widx, int(widx.max()) + 1), t0


def _window_columns(by: Sequence[str]) -> list[str]:
    cols = ["window", "start", "t", *by, "count", "failures", "rps", "error_rate", "mean"]
    cols += [*WINDOW_QUANTILES, "users"]
    if "stage" not in by:
        cols.append("stage")
    return cols


def _windows_frame(
    fine: Grouped,
    by: Sequence[str],
    seconds: float,
    t0: float,
    n_windows: int,
    end: float | None,
    samples: pd.DataFrame,
) -> pd.DataFrame:
    g = fine.coarsen([WINDOW, *by])
    counts = g.counts.astype(np.float64)
    out = g.keys.copy()
    win = out[WINDOW].to_numpy(dtype=np.int64)
    out.insert(1, "start", t0 + win * seconds)
    out.insert(2, "t", win * seconds)
    if end is None:
        end = float(samples["start_time"].max())
    length = np.clip(float(end) - out["start"].to_numpy(dtype=np.float64), 0.0, seconds)
    length = np.where(win < n_windows - 1, seconds, np.maximum(length, min(seconds, 1.0)))
    out["count"] = g.counts
    out["failures"] = g.failures.astype(np.int64)
    out["rps"] = counts / length
    out["error_rate"] = g.failures / counts
    out["mean"] = g.latency_sum / counts
    pct = g.percentiles([QUANTILES[q] for q in WINDOW_QUANTILES])
    for i, name in enumerate(WINDOW_QUANTILES):
        out[name] = pct[:, i]
    out["users"] = g.users_max if g.users_max is not None else np.nan
    if "stage" not in by:
        if "stage" in fine.by:
            # The stage most of the window's requests were sent in.
            per = fine.coarsen([WINDOW, *by, "stage"], latencies=False)
            key_cols = [WINDOW, *by]
            per_key = _combine(per.codes, per.labels, key_cols)
            g_key = _combine(g.codes, g.labels, key_cols)
            order = np.lexsort((per.codes["stage"], -per.counts, per_key))
            keys_sorted, first = np.unique(per_key[order], return_index=True)
            best = per.codes["stage"][order[first]]
            stage_codes = best[np.searchsorted(keys_sorted, g_key)]
            table = np.empty(len(per.labels["stage"]), dtype=object)
            table[:] = per.labels["stage"]
            out["stage"] = table[stage_codes]
        else:
            out["stage"] = None
    if not by:
        full = pd.DataFrame({WINDOW: np.arange(n_windows, dtype=np.int64)})
        out = full.merge(out, on=WINDOW, how="left")
        out["start"] = t0 + out[WINDOW] * seconds
        out["t"] = out[WINDOW] * seconds
        out["count"] = out["count"].fillna(0).astype(np.int64)
        out["failures"] = out["failures"].fillna(0).astype(np.int64)
        out["rps"] = out["rps"].fillna(0.0)
        out["stage"] = out["stage"].ffill()
    return out[_window_columns(by)].reset_index(drop=True)


def windows(
    samples: pd.DataFrame,
    seconds: float = 10.0,
    by: list[str] | None = None,
    origin: float | None = None,
    end: float | None = None,
) -> pd.DataFrame:
    """Exact figures per time window of ``seconds`` (by when requests were sent).

    Columns: ``window`` (index), ``start`` (epoch s), ``t`` (s since ``origin``), the ``by``
    keys, ``count``, ``failures``, ``rps``, ``error_rate``, ``mean``, ``p50``, ``p95``,
    ``p99`` (ms), ``users`` (most active users seen), ``stage`` (the stage most requests of
    the window were sent in, unless ``stage`` is a key). ``origin`` defaults to the first
    sample; ``end`` (the run's end) shortens the last window's rps denominator. Without
    ``by``, windows with no requests are listed too (count 0, no latencies).
    """
    by = list(by or [])
    if seconds <= 0:
        raise ValueError("window length must be positive")
    if samples.empty:
        return pd.DataFrame(columns=_window_columns(by))
    window, t0 = _window_index(samples, seconds, origin)
    keys = [*by, "stage"] if "stage" in samples and "stage" not in by else by
    fine = build(samples, keys, {"stage": _stage_order(samples, None)}, window)
    return _windows_frame(fine, by, seconds, t0, window[1], end, samples)


# -- error kinds ------------------------------------------------------------------------------

_NUMBERS = re.compile(r"\d+")
_EXC_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?::|\(|$)")
_STATUS_IN_TEXT = re.compile(r"code\W{0,3}([1-5]\d\d)\b|(?<![\d.])(?<!Errno )([1-5]\d\d)(?![\d.])")


def error_kind(error: str | None, status: int | None) -> str:
    """A short kind for one failure: ``HTTP 500``, ``ConnectionRefusedError``, ``timeout``...

    HTTP status codes of 400 and above name the kind (whatever exception carried them);
    otherwise the exception's class name from the recorder's ``"Class: message"`` text; a
    status code mentioned in the message is used when the status column is missing.
    """
    if status is not None and status >= 400:
        return f"HTTP {status}"
    text = (error or "").strip()
    if not text:
        return "failed (no error text)" if not status else f"HTTP {status}"
    match = _EXC_NAME.match(text)
    name = match.group(1).rsplit(".", 1)[-1] if match else ""
    if name in {"HTTPError", "CatchResponseError", "BadStatusCode", "ResponseError"} or not name:
        code = _STATUS_IN_TEXT.search(text)
        if code:
            return f"HTTP {code.group(1) or code.group(2)}"
    if "timed out" in text.lower() or "timeout" in name.lower():
        return name or "timeout"
    return name or _NUMBERS.sub("N", text[:60])


def error_kinds(samples: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Failures counted per error kind (see :func:`error_kind`), per group of ``by``.

    Columns: the ``by`` keys, ``kind``, ``count``, ``share`` (of the group's failures) and
    ``example`` (one error text of that kind, the first met). Groups in key order, most
    frequent kinds first within a group.
    """
    by = list(by or [])
    cols = [*by, "kind", "count", "share", "example"]
    if samples.empty:
        return pd.DataFrame(columns=cols)
    rows = np.flatnonzero(~samples["ok"].to_numpy(dtype=bool))
    if len(rows) == 0:
        return pd.DataFrame(columns=cols)
    if "error" in samples:
        err_codes, err_texts = pd.factorize(samples["error"].iloc[rows], use_na_sentinel=True)
        texts = [str(t) for t in err_texts]
    else:
        err_codes, texts = np.full(len(rows), -1, dtype=np.int64), []
    if "status" in samples:
        status = pd.to_numeric(samples["status"].iloc[rows], errors="coerce")
        status_codes = status.fillna(-1).to_numpy(dtype=np.int64)
    else:
        status_codes = np.full(len(rows), -1, dtype=np.int64)
    status_codes = np.clip(status_codes, -1, 9998)
    pair = (np.asarray(err_codes, dtype=np.int64) + 1) * 10_000 + (status_codes + 1)
    pairs, pair_of_row = np.unique(pair, return_inverse=True)
    kind_names: list[str] = []
    kind_index: dict[str, int] = {}
    kind_of_pair = np.empty(len(pairs), dtype=np.int64)
    for i, value in enumerate(pairs.tolist()):
        e, st = divmod(int(value), 10_000)
        kind = error_kind(texts[e - 1] if e > 0 else None, st - 1 if st > 0 else None)
        kind_of_pair[i] = kind_index.setdefault(kind, len(kind_names))
        if kind_index[kind] == len(kind_names):
            kind_names.append(kind)
    kind_of_row = kind_of_pair[pair_of_row.ravel()]
    subset = samples[by].iloc[rows]
    combined = np.zeros(len(rows), dtype=np.int64)
    key_labels: list[tuple[str, list[object]]] = []
    key_codes: list[IntArray] = []
    for col in by:
        codes, labels = _key_codes(
            subset[col], _stage_order(samples, None) if col == "stage" else None
        )
        combined = combined * max(len(labels), 1) + codes
        key_labels.append((col, labels))
        key_codes.append(codes)
    combined = combined * len(kind_names) + kind_of_row
    groups, first, counts = np.unique(combined, return_index=True, return_counts=True)
    out = pd.DataFrame(index=range(len(groups)))
    for (col, labels), codes in zip(key_labels, key_codes, strict=True):
        table = np.empty(len(labels), dtype=object)
        table[:] = labels
        out[col] = table[codes[first]]
    kinds = np.empty(len(kind_names), dtype=object)
    kinds[:] = kind_names
    out["kind"] = kinds[kind_of_row[first]]
    out["count"] = counts.astype(np.int64)
    group_of = groups // len(kind_names)
    _, group_index = np.unique(group_of, return_inverse=True)
    totals = np.bincount(group_index.ravel(), weights=counts)
    out["share"] = counts / totals[group_index.ravel()]
    example_codes = np.asarray(err_codes, dtype=np.int64)[first]
    out["example"] = [texts[c][:200] if c >= 0 else "" for c in example_codes.tolist()]
    out["_group"] = group_of
    out = out.sort_values(["_group", "count", "kind"], ascending=[True, False, True])
    return out[cols].reset_index(drop=True)
