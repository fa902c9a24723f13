"""Locust event hooks: the exact recorder, stage labels, live SLA checks and the verdict.

Importing this module (``harness.users`` and ``harness.shapes`` do) registers listeners on
Locust's events, so any locustfile gets, without subclassing anything:

* every request as one sample in ``<run-dir>/samples/`` (latency as float ms, stage, active
  users, worker id), written in batches while the run goes on. Workers (``--processes`` or
  ``--worker`` on other hosts) send their batches to the master, which writes one file per
  worker, so every sample ends up in the master's run directory;
* the scenario's stage name stamped on each sample (the master tells workers on each change);
* ``--sla`` checks: a verdict table at the end from the exact samples, ``verdict.json``, and
  exit code 10 when an SLA failed (11 when the run was interrupted: a partial verdict);
* ``--abort-on-sla``: stop as soon as an SLA is broken beyond recovery;
* ``progress.json`` refreshed every second for ``harness run``'s live display;
* for open-model scenarios (:mod:`harness.users.open_model`): each sample timed from its
  intended start, every scheduled iteration in ``iterations/``, the generator's CPU, and a
  verdict that says when the generator, not the target, was the bottleneck (exit 13).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import platform
import socket
import sys
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import numpy as np
from locust import __version__ as locust_version
from locust import events
from locust.env import Environment
from locust.runners import (
    STATE_INIT,
    STATE_MISSING,
    STATE_STOPPED,
    MasterRunner,
    WorkerRunner,
)

from harness import __version__, generator_health
from harness.errors import EXIT_GENERATOR_LIMITED, ConfigError
from harness.recorder import (
    ITERATION_SCHEMA,
    ITERATIONS_DIR,
    SampleWriter,
    file_name,
    read_samples,
    to_batch,
)
from harness.scenario import Scenario
from harness.sla import (
    EXIT_PARTIAL,
    EXIT_SLA_FAILED,
    PERCENTILES,
    REFERENCE_API_SLAS,
    SampleView,
    Sla,
    evaluate,
    format_value,
    parse_slas,
    scope_mask,
    with_defaults,
)
from harness.verdict import print_verdict

MSG_SAMPLES = "harness_samples"
MSG_STATE = "harness_state"
# A worker sends or a process writes its buffer every second, or sooner when it fills:
# a crash loses at most this much.
FLUSH_INTERVAL_S = 1.0
FLUSH_ROWS = 5_000
RECENT_WINDOW_S = 10.0
DEFAULT_STAGE = "run"
RUNS_DIR = "runs"
ERROR_TEXT_MAX = 300


def _now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).isoformat(
        timespec="milliseconds"
    )


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("harness", "Exact samples, stages and SLA verdicts")
    group.add_argument(
        "--run-dir",
        default=None,
        env_var="HARNESS_RUN_DIR",
        help="Run directory for samples and verdict (default runs/<UTC>-<name>)",
    )
    group.add_argument(
        "--sla",
        action="append",
        default=[],
        env_var="HARNESS_SLA",
        help="SLA like 'p95<500ms', 'GET /discoveries:p99<1s', 'errors<1%%'; repeatable",
    )
    group.add_argument(
        "--abort-on-sla",
        action="store_true",
        default=False,
        env_var="HARNESS_ABORT_ON_SLA",
        help="Stop early when an SLA is broken beyond recovery",
    )
    group.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        env_var="HARNESS_TIME_SCALE",
        help="Multiply every stage duration (0.05 = 20x shorter)",
    )
    group.add_argument(
        "--users-scale",
        type=float,
        default=1.0,
        env_var="HARNESS_USERS_SCALE",
        help="Multiply every stage's user count",
    )
    group.add_argument(
        "--no-default-slas",
        action="store_true",
        default=False,
        env_var="HARNESS_NO_DEFAULT_SLAS",
        help="Do not add the reference API's SLAs when ApiUser runs",
    )
    group.add_argument(
        "--no-record",
        action="store_true",
        default=False,
        env_var="HARNESS_NO_RECORD",
        help="Do not record samples (to measure the recorder's own overhead)",
    )


@dataclass
class _Live:
    """What the master (or a local runner) keeps in memory to judge SLAs while running."""

    latency: dict[str, array[float]] = field(default_factory=dict)
    ok: dict[str, array[int]] = field(default_factory=dict)
    endpoint: dict[str, list[str]] = field(default_factory=dict)
    recent: deque[tuple[float, float, bool]] = field(default_factory=deque)
    total: int = 0
    failures: int = 0

    def add(self, rows: list[Any]) -> None:
        for r in rows:
            stage = r[8]
            if stage not in self.latency:
                self.latency[stage], self.ok[stage], self.endpoint[stage] = (
                    array("d"),
                    array("b"),
                    [],
                )
            self.latency[stage].append(r[4])
            self.ok[stage].append(1 if r[5] else 0)
            self.endpoint[stage].append(f"{r[3]} {r[2]}")
            self.recent.append((r[0] + r[4] / 1000.0, r[4], r[5]))
            self.total += 1
            self.failures += 0 if r[5] else 1

    def view(self, stages: list[str] | None = None) -> SampleView:
        names = [s for s in self.latency if stages is None or s in stages]
        lat = (
            np.concatenate([np.frombuffer(self.latency[s], dtype=np.float64) for s in names])
            if names
            else np.empty(0)
        )
        ok = (
            np.concatenate([np.frombuffer(self.ok[s], dtype=np.int8) for s in names]).astype(bool)
            if names
            else np.empty(0, bool)
        )
        ep = np.array([e for s in names for e in self.endpoint[s]], dtype=object)
        stage = np.array([s for s in names for _ in range(len(self.latency[s]))], dtype=object)
        name = np.array([e.split(" ", 1)[1] for e in ep], dtype=object)
        return SampleView(
            endpoint=ep, name=name, stage=stage, latency_ms=lat, ok=ok, start=np.zeros(len(lat))
        )

    def recent_figures(self, now: float) -> dict[str, Any]:
        while self.recent and self.recent[0][0] < now - RECENT_WINDOW_S:
            self.recent.popleft()
        lat = np.fromiter((r[1] for r in self.recent), dtype=np.float64)
        failed = sum(1 for r in self.recent if not r[2])
        return {
            "rps": len(lat) / RECENT_WINDOW_S,
            "p95_ms": float(np.percentile(lat, 95)) if len(lat) else None,
            "failures_per_s": failed / RECENT_WINDOW_S,
        }


@dataclass
class _State:
    """Per-process recorder state, attached to the Locust environment."""

    role: str  # local | master | worker
    process_id: str
    record: bool = True
    run_dir: Path | None = None
    stage: str = DEFAULT_STAGE
    users: int = 0
    buffer: list[Any] = field(default_factory=list)
    writers: dict[str, SampleWriter] = field(default_factory=dict)
    live: _Live = field(default_factory=_Live)
    slas: list[Sla] = field(default_factory=list)
    spans: list[list[Any]] = field(default_factory=list)  # [stage, start, end|None]
    plan: Scenario | None = None
    started_at: float | None = None
    completed: bool = False
    stop_reason: str | None = None
    broken_step: str | None = None
    workers_seen: set[str] = field(default_factory=set)
    final_from: set[str] = field(default_factory=set)
    sent_final: bool = False
    closed: bool = False
    greenlets: list[Any] = field(default_factory=list)
    finished: bool = False
    # Open-model runs: scheduled iterations and CPU readings waiting to be written or sent,
    # the writers of iterations/, every process's CPU readings, and the run's open-model facts.
    iterations: list[Any] = field(default_factory=list)
    cpu_readings: list[tuple[float, float]] = field(default_factory=list)
    iteration_writers: dict[str, SampleWriter] = field(default_factory=dict)
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    open_model: dict[str, Any] | None = None


def state(env: Environment) -> _State | None:
    """The harness state of a Locust environment (None before init)."""
    return getattr(env, "harness_state", None)


# -- setup --------------------------------------------------------------------------------------


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    options = environment.parsed_options
    if isinstance(runner, WorkerRunner):
        role, pid = "worker", str(runner.client_id)
    elif isinstance(runner, MasterRunner):
        role, pid = "master", "master"
    else:
        role, pid = "local", "local"
    st = _State(role=role, process_id=pid, record=not getattr(options, "no_record", False))
    environment.harness_state = st  # type: ignore[attr-defined]
    # pyarrow initialises its conversions on first use (~0.3 s, holding the gevent hub): pay
    # that now, before any user runs, not in the first flush during the run.
    to_batch([(0.0, None, "", "", 0.0, True, None, 0, "", 0, "", None)])
    if role != "worker":
        shape = environment.shape_class
        given = list(getattr(options, "sla", None) or [])
        if shape is not None and hasattr(shape, "scenario"):
            scenario: Scenario = shape.scenario
            given = [*scenario.slas, *given]
            st.stage = scenario.stages[0].name
        try:
            st.slas = parse_slas(given)
        except ConfigError as exc:
            # One line and exit 2, as the harness CLI does, instead of a traceback.
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        if _runs_reference_api_users(environment) and not getattr(
            options, "no_default_slas", False
        ):
            st.slas = with_defaults(st.slas, REFERENCE_API_SLAS)
        st.run_dir = _run_dir(options, shape)
        st.run_dir.mkdir(parents=True, exist_ok=True)
        _update_run_json(st.run_dir, _static_facts(environment, st))
    if role == "master" and runner is not None:
        runner.register_message(MSG_SAMPLES, lambda msg, **_: _on_worker_samples(environment, msg))
    if role == "worker" and runner is not None:
        runner.register_message(MSG_STATE, lambda msg, **_: _on_master_state(environment, msg))
    environment.events.request.add_listener(lambda **kw: _on_request(environment, **kw))


def _runs_reference_api_users(env: Environment) -> bool:
    """True when the run drives the reference API (its SLAs are then the defaults)."""
    from harness.users.api import ApiUser

    return any(issubclass(c, ApiUser) for c in env.user_classes or [])


def _run_dir(options: Any, shape: Any) -> Path:
    given = getattr(options, "run_dir", None)
    if given:
        return Path(given)
    name = shape.scenario.name if shape is not None and hasattr(shape, "scenario") else "locust"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(RUNS_DIR) / f"{stamp}-{name}"


def _git_commit(where: Path | None = None) -> str | None:
    """HEAD of the git checkout at ``where`` (default: the current folder), if any."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=where,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _static_facts(env: Environment, st: _State) -> dict[str, Any]:
    options = env.parsed_options
    shape = env.shape_class
    facts: dict[str, Any] = {
        "schema": "harness.run/1",
        "harness_version": __version__,
        "locust_version": locust_version,
        "git_commit": _git_commit(),
        "harness_git_commit": _git_commit(Path(__file__).resolve().parent),
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        "slas": [s.text for s in st.slas],
        "locust": {
            "runner": st.role,
            "processes": getattr(options, "processes", None),
            "users": getattr(options, "num_users", None),
            "spawn_rate": getattr(options, "spawn_rate", None),
            "run_time": getattr(options, "run_time", None),
            "time_scale": getattr(options, "time_scale", 1.0),
            "users_scale": getattr(options, "users_scale", 1.0),
        },
    }
    if shape is not None and hasattr(shape, "scenario"):
        scenario: Scenario = shape.scenario
        facts["scenario"] = {
            "name": scenario.name,
            "file": str(scenario.source),
            "description": scenario.description,
        }
    return facts


def _update_run_json(run_dir: Path, updates: dict[str, Any]) -> None:
    """Merge ``updates`` into run.json (``harness run`` may have written target facts first)."""
    path = run_dir / "run.json"
    current: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(ValueError, OSError):
            current = json.loads(path.read_text())
    current.update(updates)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2, default=str))
    tmp.replace(path)


# -- requests -----------------------------------------------------------------------------------


def _error_text(exception: Any) -> str | None:
    if exception is None:
        return None
    text = f"{type(exception).__name__}: {exception}"
    return text[:ERROR_TEXT_MAX]


def _on_request(env: Environment, **kw: Any) -> None:
    st = state(env)
    if st is None or not st.record:
        return
    latency = float(kw.get("response_time") or 0.0)
    start = kw.get("start_time") or (time.time() - latency / 1000.0)
    response = kw.get("response")
    status = getattr(response, "status_code", None) if response is not None else None
    context = kw.get("context") or {}
    intended = context.get("intended_start") if isinstance(context, dict) else None
    stage = st.stage
    if intended is not None and "iteration_lag_s" in context:
        # An open-model iteration: every request of it is timed from when it was meant to be
        # sent, i.e. shifted by how late the iteration started (harness.users.open_model).
        lag = float(context["iteration_lag_s"])
        intended = float(start) - lag
        latency += lag * 1000.0
        stage = str(context.get("stage") or stage)
    if st.role == "worker" and st.users:
        users = st.users  # the total across workers, as the master last announced it
    else:
        users = env.runner.user_count if env.runner else 0
    st.buffer.append(
        (
            float(start),
            None if intended is None else float(intended),
            str(kw.get("name")),
            str(kw.get("request_type")),
            latency,
            kw.get("exception") is None,
            int(status) if isinstance(status, int) else None,
            int(kw.get("response_length") or 0),
            stage,
            int(users),
            st.process_id,
            _error_text(kw.get("exception")),
        )
    )
    if len(st.buffer) >= FLUSH_ROWS:
        _flush(env)


def _flush(env: Environment, *, final: bool = False) -> None:
    """Write (or, on a worker, send) the buffered samples. A worker's ``final`` batch tells
    the master it has nothing more, so the master knows when it may close its files."""
    st = state(env)
    if st is None or (not st.buffer and not st.iterations and not st.cpu_readings and not final):
        return
    rows, st.buffer = st.buffer, []
    iterations, st.iterations = st.iterations, []
    cpu, st.cpu_readings = st.cpu_readings, []
    if st.role == "worker":
        if env.runner is not None and not (final and st.sent_final):
            message: dict[str, Any] = {"worker": st.process_id, "rows": rows, "final": final}
            if iterations or cpu:
                message.update(iterations=iterations, cpu=cpu)
            env.runner.send_message(MSG_SAMPLES, message)
            st.sent_final = st.sent_final or final
        return
    _store(env, st.process_id, rows)
    _store_open_model(st, st.process_id, iterations, cpu)


def record_iteration(env: Environment, row: tuple[Any, ...]) -> None:
    """Keep one scheduled iteration (see ``recorder.ITERATION_SCHEMA``) for the next flush."""
    st = state(env)
    if st is not None and st.record:
        st.iterations.append(row)


def record_cpu(env: Environment, at: float, percent: float) -> None:
    """Keep one CPU reading of this process for the next flush."""
    st = state(env)
    if st is not None:
        st.cpu_readings.append((at, percent))


def _store_open_model(
    st: _State, process: str, iterations: list[Any], cpu: list[tuple[float, float]]
) -> None:
    if cpu:
        st.cpu.setdefault(process, []).extend((float(t), float(p)) for t, p in cpu)
    if not iterations or st.run_dir is None:
        return
    writer = st.iteration_writers.get(process)
    if writer is None:
        writer = st.iteration_writers[process] = SampleWriter(
            st.run_dir / ITERATIONS_DIR / file_name(process), ITERATION_SCHEMA
        )
    writer.write([tuple(r) for r in iterations])


def _store(env: Environment, process: str, rows: list[Any]) -> None:
    st = state(env)
    if st is None or st.run_dir is None:
        return
    if st.spans:
        rows = _label_by_start(st.spans, rows)
    writer = st.writers.get(process)
    if writer is None:
        writer = st.writers[process] = SampleWriter(st.run_dir / "samples" / file_name(process))
    writer.write(rows)
    st.live.add(rows)


def _label_by_start(spans: list[list[Any]], rows: list[Any]) -> list[Any]:
    """Give each sample the stage in which it was *sent* (a request sent during the spike and
    answered after it belongs to the spike). Workers stamp the stage they last heard of; the
    master's stage spans are the timeline of record."""
    starts = [s[1] for s in spans]
    out = []
    for r in rows:
        # An open-model request belongs to the stage of its intended start.
        i = bisect.bisect_right(starts, r[0] if r[1] is None else r[1]) - 1
        if i >= 0 and r[8] != spans[i][0]:
            r = (*r[:8], spans[i][0], *r[9:])
        out.append(r)
    return out


def _on_worker_samples(env: Environment, msg: Any) -> None:
    data = msg.data
    st = state(env)
    if st is None or st.closed:
        return
    st.workers_seen.add(data["worker"])
    if data.get("final"):
        st.final_from.add(data["worker"])
    if data["rows"]:
        _store(env, data["worker"], [tuple(r) for r in data["rows"]])
    if data.get("iterations") or data.get("cpu"):
        _store_open_model(st, data["worker"], data.get("iterations") or [], data.get("cpu") or [])


def _on_master_state(env: Environment, msg: Any) -> None:
    st = state(env)
    if st is not None:
        st.stage = msg.data.get("stage", st.stage)
        st.users = int(msg.data.get("users", st.users))


# -- stages (called by harness.shapes on the master or local runner) ----------------------------


def plan(env: Environment, scenario: Scenario) -> Scenario:
    """The scenario scaled by ``--time-scale``/``--users-scale``, fixed at first use."""
    st = state(env)
    options = env.parsed_options
    if st is None:
        return generator_health.planned(scenario, options)
    if st.plan is None:
        st.plan = generator_health.planned(scenario, options)
        if st.run_dir is not None:
            _update_run_json(
                st.run_dir,
                {
                    "planned_stages": [s.as_dict() for s in st.plan.stages],
                    "planned_duration_s": st.plan.duration,
                    "stress": None if st.plan.stress is None else vars(st.plan.stress),
                },
            )
    return st.plan


def enter_stage(env: Environment, name: str, at: float | None = None) -> bool:
    """Record that ``name`` is running (since ``at``, epoch s, when the schedule fixes it);
    False means stop now (stress broke, SLA aborted)."""
    st = state(env)
    if st is None:
        return True
    if st.stop_reason is not None:
        return False
    now = time.time() if at is None else at
    if not st.spans or st.spans[-1][0] != name:
        previous = st.spans[-1][0] if st.spans else None
        if st.spans:
            st.spans[-1][2] = now
        if previous is not None and st.plan is not None and st.plan.stress is not None:
            _flush(env)
            if _step_broken(st, previous):
                st.spans[-1][2] = now
                return False
        st.spans.append([name, now, None])
        st.stage = name
        _broadcast(env)
    return True


def finish_plan(env: Environment, at: float | None = None) -> None:
    """The shape ran every stage (the last one ending at ``at``, when the schedule fixes it):
    the run is complete, not interrupted."""
    st = state(env)
    if st is None:
        return
    st.completed = True
    if st.spans and st.spans[-1][2] is None:
        st.spans[-1][2] = time.time() if at is None else at
    if st.plan is not None and st.plan.stress is not None and st.spans and st.broken_step is None:
        _flush(env)
        _step_broken(st, st.spans[-1][0])


def _step_broken(st: _State, step: str) -> bool:
    """Judge one stress step on its own samples; remember the first that breaks."""
    assert st.plan is not None and st.plan.stress is not None
    view = st.live.view([step])
    reasons = []
    if len(view.ok):
        share = float((~view.ok).sum() / len(view.ok))
        if share > st.plan.stress.error_limit:
            reasons.append(f"errors {share:.1%} > {st.plan.stress.error_limit:.0%}")
    span = next((s for s in st.spans if s[0] == step), None)
    seconds = (span[2] or time.time()) - span[1] if span else 0.0
    whole_run = [s for s in st.slas if s.stage is None]
    for outcome in evaluate(whole_run, view, {step: (0.0, seconds)}, (0.0, seconds)):
        if not outcome.passed and outcome.count:
            reasons.append(
                f"{outcome.sla} ({outcome.scope}: {format_value(outcome.metric, outcome.measured)})"
            )
    if reasons:
        st.broken_step = step
        st.stop_reason = f"stress broke at {step}: {'; '.join(reasons)}"
        return True
    return False


def should_stop(env: Environment) -> bool:
    st = state(env)
    return st is not None and st.stop_reason is not None


# -- the master's (or local runner's) loop ------------------------------------------------------


def _broadcast(env: Environment) -> None:
    st = state(env)
    runner = env.runner
    if st is None or runner is None or st.role != "master":
        return
    runner.send_message(MSG_STATE, {"stage": st.stage, "users": runner.user_count})


def _beyond_recovery(st: _State, planned_s: float | None, elapsed: float) -> str | None:
    """An SLA that cannot pass any more, however the rest of the run goes."""
    for sla in st.slas:
        # Only upper bounds (p95<500ms, errors<1%) can be broken for good by what already ran.
        if (
            sla.metric not in (*PERCENTILES, "errors", "max")
            or sla.per_endpoint
            or sla.op not in ("<", "<=")
        ):
            continue
        stages = [sla.stage] if sla.stage else None
        view = st.live.view(stages)
        if sla.scope is not None:
            mask = scope_mask(view, sla.scope)
            lat, ok = view.latency_ms[mask], view.ok[mask]
        else:
            lat, ok = view.latency_ms, view.ok
        n = len(lat)
        if n < 20:
            continue
        projected = n
        if planned_s and elapsed > 0 and sla.stage is None:
            projected = max(n, int(n * planned_s / elapsed))
        if sla.metric == "errors":
            bad, allowed = int((~ok).sum()), sla.threshold * projected
        elif sla.metric == "max":
            bad, allowed = int((lat >= sla.threshold).sum()), 0.0
        else:
            bad = int((lat >= sla.threshold).sum())
            allowed = (1.0 - PERCENTILES[sla.metric] / 100.0) * projected
        if bad > allowed:
            return f"{sla.text} is broken beyond recovery ({bad} of {n} requests over the line)"
    return None


def _loop(env: Environment) -> None:
    st = state(env)
    assert st is not None
    options = env.parsed_options
    while True:
        gevent.sleep(FLUSH_INTERVAL_S)
        _flush(env)
        if st.role == "worker":
            continue
        _broadcast(env)
        now = time.time()
        elapsed = now - (st.started_at or now)
        planned = st.plan.duration if st.plan is not None else _run_time(options)
        if getattr(options, "abort_on_sla", False) and st.stop_reason is None:
            reason = _beyond_recovery(st, planned, elapsed)
            if reason is not None:
                st.stop_reason = f"aborted: {reason}"
                print(f"harness: {st.stop_reason}; stopping the run", file=sys.stderr)
                if env.runner is not None and env.shape_class is None:
                    gevent.spawn(env.runner.quit)
        if st.run_dir is not None:
            progress = {
                "time": _now_iso(now),
                "elapsed_s": round(elapsed, 2),
                "stage": st.stage,
                "users": env.runner.user_count if env.runner else 0,
                "requests": st.live.total,
                "failures": st.live.failures,
                "planned_duration_s": planned,
                "stop_reason": st.stop_reason,
                "workers": sorted(st.workers_seen),
                **st.live.recent_figures(now),
            }
            tmp = st.run_dir / "progress.json.tmp"
            tmp.write_text(json.dumps(progress))
            tmp.replace(st.run_dir / "progress.json")


def _run_time(options: Any) -> float | None:
    value = getattr(options, "run_time", None)
    return float(value) if value else None


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    st = state(environment)
    if st is None or st.started_at is not None:
        return
    st.started_at = time.time()
    if st.role != "worker":
        if environment.shape_class is None:
            st.spans.append([st.stage, st.started_at, None])
        if st.run_dir is not None:
            _update_run_json(
                st.run_dir, {"start": _now_iso(st.started_at), "start_epoch": st.started_at}
            )
    st.greenlets.append(gevent.spawn(_loop, environment))


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    st = state(environment)
    _flush(environment, final=st is not None and st.role == "worker")


# How long the master waits, at the end, for every live worker's final batch.
FINAL_BATCH_TIMEOUT_S = 15.0


def _collect_final_batches(env: Environment, st: _State) -> None:
    """Stop the workers if they still run (Ctrl-C fires ``quitting`` first) and wait until
    every live worker has sent its final batch, so no flushed sample is left behind."""
    runner = env.runner
    if not isinstance(runner, MasterRunner):
        return
    if runner.state not in (STATE_STOPPED, STATE_INIT):
        runner.stop()
    deadline = time.monotonic() + FINAL_BATCH_TIMEOUT_S
    while time.monotonic() < deadline:
        alive = {c.id for c in runner.clients.all if c.state != STATE_MISSING}
        if alive <= st.final_from:
            return
        gevent.sleep(0.05)
    missing = sorted({c.id for c in runner.clients.all if c.state != STATE_MISSING} - st.final_from)
    print(
        f"harness: no final batch from worker(s) {', '.join(missing)} within "
        f"{FINAL_BATCH_TIMEOUT_S:.0f} s; their last second of samples may be missing",
        file=sys.stderr,
    )


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    st = state(environment)
    if st is None or st.finished:
        return
    st.finished = True
    for g in st.greenlets:
        g.kill(block=False)
    if st.role == "worker":
        _flush(environment, final=True)
        return
    _flush(environment)
    _collect_final_batches(environment, st)
    st.closed = True
    for writer in [*st.writers.values(), *st.iteration_writers.values()]:
        writer.close()
    _finish(environment, st)


# -- the verdict --------------------------------------------------------------------------------


def _finish(env: Environment, st: _State) -> None:
    assert st.run_dir is not None
    end = time.time()
    if st.spans and st.spans[-1][2] is None:
        st.spans[-1][2] = end
    options = env.parsed_options
    run_time = _run_time(options)
    if not getattr(options, "headless", True):
        # From the web UI a person decides when the run ends: pressing Stop completes it.
        st.completed = True
    if not st.completed and run_time and st.started_at is not None:
        # A fixed -t run that lasted its time ended normally.
        st.completed = end - st.started_at >= run_time - 1.0
    aborted = st.stop_reason is not None and st.broken_step is None
    partial = not st.completed and not aborted and st.broken_step is None
    result = read_samples(st.run_dir)
    table = result.table
    view = SampleView(
        endpoint=np.array(
            [
                f"{t} {n}"
                for t, n in zip(
                    table.column("request_type").to_pylist(),
                    table.column("name").to_pylist(),
                    strict=True,
                )
            ],
            dtype=object,
        ),
        name=np.array(table.column("name").to_pylist(), dtype=object),
        stage=np.array(table.column("stage").to_pylist(), dtype=object),
        latency_ms=table.column("latency_ms").to_numpy(),
        ok=table.column("ok").to_numpy(zero_copy_only=False),
        start=table.column("start_time").to_numpy(),
    )
    spans = {name: (start, stop or end) for name, start, stop in st.spans}
    run_span = (st.started_at or end, end)
    outcomes = evaluate(st.slas, view, spans, run_span)
    health = generator_health.judge_run(st.run_dir, st.plan, st.open_model, st.cpu)
    if health is not None:
        outcomes.append(health.dropped_outcome())
    passed = all(o.passed for o in outcomes)
    limited = health is not None and health.generator_limited
    verdict = {
        "schema": "harness.verdict/1",
        "passed": (
            passed and not partial and st.broken_step is None and not aborted and not limited
        ),
        "slas_passed": passed,
        "partial": partial,
        "stop_reason": st.stop_reason,
        "broken_step": st.broken_step,
        "broken_step_users": _step_users(st),
        "samples": table.num_rows,
        "warnings": [*result.warnings, *worker_watch.loss_warnings(env)],
        "percentile_definition": "linear interpolation between closest ranks (numpy default)",
        "outcomes": [o.as_dict() for o in outcomes],
    }
    if health is not None:
        verdict["generator_limited"] = limited
        verdict["open_model"] = health.as_dict()
    if st.open_model is not None:
        _update_run_json(st.run_dir, {"open_model": {**st.open_model, "cpu": st.cpu}})
    (st.run_dir / "verdict.json").write_text(json.dumps(verdict, indent=2))
    _update_run_json(
        st.run_dir,
        {
            "end": _now_iso(end),
            "end_epoch": end,
            "stages": [{"name": n, "start": s, "end": e or end} for n, s, e in st.spans],
            "samples": table.num_rows,
            "partial": partial,
            "stop_reason": st.stop_reason,
            "workers": sorted(st.workers_seen) or [st.process_id],
        },
    )
    from rich.console import Console

    print_verdict(verdict, Console(stderr=True, width=120))
    if env.process_exit_code:
        return  # a user or another plugin already said why this run failed; keep that
    if partial:
        env.process_exit_code = EXIT_PARTIAL
    elif limited:
        env.process_exit_code = EXIT_GENERATOR_LIMITED
    elif not verdict["passed"] and (outcomes or st.broken_step or aborted):
        env.process_exit_code = EXIT_SLA_FAILED


def _step_users(st: _State) -> int | None:
    if st.broken_step is None or st.plan is None:
        return None
    return next((s.users for s in st.plan.stages if s.name == st.broken_step), None)


# Their listeners go with these hooks: any locustfile using the harness gets live metrics
# (--prometheus-port) and the lost-worker record.
from harness import live_metrics, worker_watch  # noqa: E402, F401
