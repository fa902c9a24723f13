"""``harness pools --api``: the sweep through the reference API's own SQLAlchemy pool.

For each pool size, a load run (:func:`harness.run.run`) of a scenario, shrunk to a fixed
length and user count, against the reference API on PostgreSQL with ``--pool-size N`` and no
overflow (so N is every connection the API may open). Each run keeps its own run directory
under ``api/``; the cell's figures come from its exact samples in the scenario's last stage
(the ramp is left out). The knee and the rules of thumb are judged as in the driver sweep;
Little's law is not, because Locust users think between requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from harness.errors import ConfigError
from harness.pools.timing import cell_progress

DEFAULT_USERS = (50,)
QUICK_USERS = (20,)
DEFAULT_API_SIZES = (1, 2, 4, 16)
DEFAULT_API_DURATION_S = 25.0
QUICK_API_DURATION_S = 12.0
DEFAULT_SCENARIO = "steady"


def check_scenario(name: str) -> tuple[float, int]:
    """(planned seconds, peak users) of a scenario a sweep can shrink to a fixed load."""
    from harness.run import SCENARIOS
    from harness.scenario import find_scenario, load_scenario

    plan = load_scenario(find_scenario(name, SCENARIOS))
    if plan.stress is not None:
        raise ConfigError(
            f"--scenario {name}: a stress scenario keeps adding users, so no pool size sees a "
            "fixed load; use steady (or another scenario with stages)"
        )
    peak = max((s.users for s in plan.stages), default=0)
    if peak < 1 or plan.duration <= 0:
        raise ConfigError(f"--scenario {name}: it runs no users")
    return plan.duration, peak


def cell_from_run(run_dir: Path, pool_size: int, users: int) -> dict[str, Any]:
    """The figures of one API run, from its exact samples in the last stage."""
    from harness.analysis.load import load_run

    run = load_run(run_dir)
    spans = run.stage_spans
    samples = run.samples
    window_s = 0.0
    if spans:
        stage, start, end = spans[-1]
        samples = samples[samples["stage"] == stage]
        window_s = max(0.0, end - start)
    ok = samples[samples["ok"]]
    lat = ok["latency_ms"].to_numpy(dtype=np.float64)
    failures = int((~samples["ok"]).sum())
    pcts = np.percentile(lat, [50, 95, 99]) if len(lat) else [None, None, None]
    return {
        "driver": "api",
        "pool_size": pool_size,
        "concurrency": users,
        "window_s": window_s,
        "iterations": len(samples),
        "ok": len(ok),
        "timeouts": int(samples["error"].fillna("").str.contains("TimeoutError|QueuePool").sum())
        if "error" in samples
        else 0,
        "errors": failures,
        "throughput": len(ok) / window_s if window_s > 0 else 0.0,
        "mean_ms": float(lat.mean()) if len(lat) else None,
        "p50": None if pcts[0] is None else float(pcts[0]),
        "p95": None if pcts[1] is None else float(pcts[1]),
        "p99": None if pcts[2] is None else float(pcts[2]),
        "closed_loop": False,
        "run_dir": str(run_dir),
    }


def run_api_sweep(
    *,
    sizes: tuple[int, ...],
    users: tuple[int, ...],
    duration_s: float,
    acquire_timeout_s: float,
    scenario: str,
    pg: str | None,
    redis: str | None,
    dataset: Path | None,
    out_dir: Path,
    console: Console | None,
    on_cell: Any,
) -> None:
    """Run one load run per (users, pool size); hand each cell to ``on_cell`` as it ends."""
    from harness.run import RunOptions, run

    duration, peak = check_scenario(scenario)
    progress: Progress | None = None
    if console is not None:
        progress = cell_progress(console)
        progress.start()
    task = progress.add_task("API runs", total=len(sizes) * len(users)) if progress else None
    # No overflow: the pool size is every connection the API may open.
    api_env = {"HARNESS_API_MAX_OVERFLOW": "0", "HARNESS_API_POOL_TIMEOUT": str(acquire_timeout_s)}
    try:
        for n in users:
            for size in sizes:
                result = run(
                    RunOptions(
                        scenario=scenario,
                        backend="postgres",
                        pool_size=size,
                        time_scale=duration_s / duration,
                        users_scale=n / peak,
                        runs_dir=out_dir / "api",
                        pg=pg,
                        redis=redis,
                        dataset=dataset,
                        api_env=api_env,
                    )
                )
                cell = cell_from_run(result.run_dir, size, n)
                cell["run_dir"] = str(result.run_dir.relative_to(out_dir))
                on_cell(cell)
                if progress is not None and task is not None:
                    progress.update(
                        task,
                        advance=1,
                        description=(
                            f"API pool {size} x {n} users: {cell['throughput']:,.0f}/s "
                            f"p99 {cell['p99'] or 0:.1f} ms"
                        ),
                    )
    finally:
        if progress is not None:
            progress.stop()
