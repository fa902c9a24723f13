"""Open-model runs on Locust's own machinery: iterations start on a schedule, not when the
previous response came back.

A scenario whose stages set a ``rate`` (``scenarios/constant_rate.py``) turns any user class
of the run into an open-model one (``ApiUser``, ``PostgresUser``, your own ``HttpUser``):

* the scenario's shape spawns a fixed pool of users, one per iteration allowed in flight
  (``--max-inflight``, else the scenario's ``MAX_INFLIGHT``, else peak rate x
  :data:`harness.scenario.LATENCY_GUESS_S`), split across worker processes by Locust;
* in every process that runs users, a dispatcher greenlet walks its share of the arrival
  schedule (:mod:`harness.arrivals`): at each intended start it hands the iteration to an
  idle user, or, when every user is busy, records the iteration as **dropped** (with its
  intended start and stage) instead of skipping it;
* a user runs one of its own tasks per iteration (its weights and ``--tags`` as usual, its
  think time ignored: the schedule sets the pace), and its requests carry the iteration's
  intended start in Locust's request ``context``: the recorder times each request from when
  it was meant to be sent (``latency_ms``), and the service time from the actual send is
  ``latency_ms - (start_time - intended_start)``;
* the origin of the schedule is one instant for every process (the master picks it when all
  users are spawned and tells the workers), and process ``i`` of ``n`` takes arrivals
  ``i, i + n, ...``: the rates add up to the target exactly, and the processes interleave.

Every scheduled iteration is logged (``iterations/``) with how late it started, and each
process records its CPU once a second: :mod:`harness.generator_health` judges from them
whether the generator kept up. Locust's own statistics (console, ``--csv``) time requests
from their actual send, as Locust always does; the harness's samples, verdict and report
carry both figures.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
import numpy as np
import psutil
from gevent.event import Event
from locust import TaskSet, User, events
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_WAITING

from harness import locust_hooks
from harness.arrivals import ARRIVAL_MODES, RateStage, schedule
from harness.errors import ConfigError
from harness.recorder import ITERATION_DONE, ITERATION_DROPPED, ITERATION_UNFINISHED
from harness.scenario import Scenario
from harness.users import settings

MSG_OPEN = "harness_open_model"
# The schedule starts this long after every user is spawned, so each user's on_start (e.g.
# ApiUser reading /meta) is done and every process has heard the origin before it comes.
START_LEAD_S = 1.0
# When the schedule ends, iterations still running get this long to finish (Locust's
# --stop-timeout, when not given): a request held by a stall is timed, not cut off.
DRAIN_TIMEOUT_S = 10.0
CPU_INTERVAL_S = 1.0
# How long the master waits for the workers to report their users before it starts anyway.
SPAWN_REPORT_TIMEOUT_S = 30.0

logger = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group(
        "harness open model", "Arrival-rate scenarios (stages with a 'rate')"
    )
    group.add_argument(
        "--rate",
        type=float,
        default=None,
        env_var="HARNESS_RATE",
        help="Iterations per second at the scenario's peak (every stage's rate scaled to it)",
    )
    group.add_argument(
        "--duration",
        default=None,
        env_var="HARNESS_DURATION",
        help="Length of the whole scenario, e.g. 30s or 10m (every stage scaled to it)",
    )
    group.add_argument(
        "--max-inflight",
        type=int,
        default=None,
        env_var="HARNESS_MAX_INFLIGHT",
        help="Iterations that may run at once; beyond it an iteration is dropped and counted "
        "(default: peak rate x 2 s)",
    )
    group.add_argument(
        "--arrivals",
        choices=ARRIVAL_MODES,
        default=None,
        env_var="HARNESS_ARRIVALS",
        help="Arrivals evenly spaced or Poisson (seeded by HARNESS_SEED; default: even)",
    )


# -- the run's open-model state ------------------------------------------------------------------


@dataclass
class OpenModelRun:
    """What one process knows about the open-model run (attached to the environment)."""

    plan: Scenario
    arrivals: str
    seed: int
    max_inflight: int
    executor: Executor | None = None
    origin: float | None = None
    starting: bool = False
    drain_deadline: float | None = None  # monotonic time by which draining must be over
    entered: list[str] = field(default_factory=list)


def current(env: Environment) -> OpenModelRun | None:
    """The environment's open-model run, or None for a closed-model one."""
    return getattr(env, "harness_open_model", None)


def _fail(exc: ConfigError) -> None:
    # Under plain `locust -f`, one line and exit 2 rather than a traceback, as the hooks do.
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(exc.exit_code) from None


def _check_closed_model_options(env: Environment, scenario: Scenario | None) -> None:
    options = env.parsed_options
    given = [
        flag
        for flag, attr in (
            ("--rate", "rate"),
            ("--max-inflight", "max_inflight"),
            ("--arrivals", "arrivals"),
            ("--duration", "duration"),
        )
        if getattr(options, attr, None) not in (None, "")
        and not (attr == "duration" and scenario is not None)
    ]
    if given:
        what = f"scenario {scenario.name!r} sets users" if scenario else "no scenario is given"
        _fail(
            ConfigError(
                f"{', '.join(given)} need an open-model scenario, but {what}; add one, e.g. "
                "-f locustfiles/api.py,scenarios/constant_rate.py"
            )
        )


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    scenario = getattr(environment.shape_class, "scenario", None)
    if not isinstance(scenario, Scenario) or not scenario.open_model:
        _check_closed_model_options(environment, scenario)
        return
    options = environment.parsed_options
    try:
        plan = locust_hooks.plan(environment, scenario)
        max_inflight = plan.inflight_bound(getattr(options, "max_inflight", None))
        classes = [open_model_class(c) for c in environment.user_classes]
        seed = settings.seed() or 0
    except ConfigError as exc:
        _fail(exc)
        return
    environment.user_classes[:] = classes
    if not environment.stop_timeout:
        environment.stop_timeout = DRAIN_TIMEOUT_S
    arrivals = getattr(options, "arrivals", None) or plan.arrivals
    run = OpenModelRun(plan, arrivals, seed, max_inflight)
    environment.harness_open_model = run  # type: ignore[attr-defined]
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        run.executor = Executor(environment, run.seed)
    if isinstance(runner, WorkerRunner):
        runner.register_message(MSG_OPEN, lambda msg, **_: _on_open(environment, msg.data))
    else:
        # Locust's spawning_complete says how many users, not in which environment.
        environment.events.spawning_complete.add_listener(
            functools.partial(_on_spawned, environment)
        )
    st = locust_hooks.state(environment)
    if st is not None and st.role != "worker":
        st.open_model = {
            "arrivals": run.arrivals,
            "seed": run.seed,
            "max_inflight": run.max_inflight,
            "drain_timeout_s": environment.stop_timeout,
            "start_lead_s": START_LEAD_S,
        }


def _on_spawned(environment: Environment, **_kwargs: Any) -> None:
    """Locust spawned the pool (master or local runner): fix the schedule's origin."""
    run = current(environment)
    if run is None or run.origin is not None or run.starting:
        return
    run.starting = True
    gevent.spawn(_fix_origin, environment, run)


def _fix_origin(environment: Environment, run: OpenModelRun) -> None:
    runner = environment.runner
    workers: list[str] = []
    if isinstance(runner, MasterRunner):
        # The master's spawning_complete can come before the workers report their users;
        # wait for the reports, so no worker's share starts before its users exist.
        deadline = time.monotonic() + SPAWN_REPORT_TIMEOUT_S
        while runner.user_count < run.max_inflight and time.monotonic() < deadline:
            gevent.sleep(0.1)
        workers = sorted(c.id for c in runner.clients.all if c.state != STATE_MISSING)
        if len(workers) > run.max_inflight:
            logger.warning(
                "--max-inflight %d is below the %d workers: a worker without users drops "
                "its whole share of the schedule",
                run.max_inflight,
                len(workers),
            )
    run.origin = time.time() + START_LEAD_S
    if isinstance(runner, MasterRunner):
        message = {
            "origin": run.origin,
            "stages": [s.as_dict() for s in run.plan.stages],
            "arrivals": run.arrivals,
            "seed": run.seed,
            "workers": workers,
        }
        runner.send_message(MSG_OPEN, message)
    elif run.executor is not None:
        run.executor.start(run.origin, run.plan.rate_stages(), run.arrivals, 0, 1, seed=run.seed)
    st = locust_hooks.state(environment)
    if st is not None and st.open_model is not None:
        st.open_model.update(
            origin=run.origin, processes=len(workers) or 1, workers=workers or [st.process_id]
        )


def _on_open(environment: Environment, data: dict[str, Any]) -> None:
    """A worker hears the schedule from the master and starts its share of it."""
    run = current(environment)
    runner = environment.runner
    if run is None or run.executor is None or not isinstance(runner, WorkerRunner):
        return
    workers = list(data["workers"])
    if runner.client_id not in workers:
        return
    run.origin = float(data["origin"])
    stages = [
        RateStage(str(s["name"]), float(s["duration"]), float(s["rate"]), float(s["ramp"]))
        for s in data["stages"]
    ]
    run.executor.start(
        run.origin,
        stages,
        str(data["arrivals"]),
        workers.index(runner.client_id),
        len(workers),
        seed=int(data["seed"]),
    )


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    run = current(environment)
    if run is not None and run.executor is not None:
        run.executor.stop()


def shape_tick(env: Environment, plan: Scenario) -> tuple[int, float] | None:
    """The shape's answer for an open-model plan: the pool of users until the schedule ends,
    stage spans exactly where the schedule puts them."""
    run = current(env)
    if run is None or locust_hooks.should_stop(env):
        return None
    pool = (run.max_inflight, float(run.max_inflight))  # the whole pool within a second
    if run.origin is None:
        return pool
    elapsed = time.time() - run.origin
    for name, start, _end in plan.timeline():
        if start <= elapsed and name not in run.entered:
            run.entered.append(name)
            if not locust_hooks.enter_stage(env, name, at=run.origin + start):
                return None
    if elapsed < plan.duration:
        return pool
    if run.drain_deadline is None:
        locust_hooks.finish_plan(env, at=run.origin + plan.duration)
        run.drain_deadline = time.monotonic() + (env.stop_timeout or DRAIN_TIMEOUT_S) + 5.0
    # The schedule is over: stop the users the way a ramp-down does (iterations in flight
    # finish, within Locust's --stop-timeout) while the master still hears from its workers;
    # quitting at once would lose what the workers record while they drain.
    runner = env.runner
    if (runner is not None and runner.user_count == 0) or time.monotonic() > run.drain_deadline:
        return None
    return 0, float(run.max_inflight)


# -- the executor (each process that runs users) ----------------------------------------------


class Executor:
    """Hands each arrival of this process's share of the schedule to an idle user."""

    def __init__(self, env: Environment, seed: int) -> None:
        self.env = env
        self.idle: dict[str, list[OpenModelUser]] = {}
        classes = list(env.user_classes)
        self.class_names = [c.__name__ for c in classes]
        weights = np.array([max(float(c.weight), 0.0) for c in classes], dtype=np.float64)
        self.class_p = weights / weights.sum() if weights.sum() > 0 else None
        self.rng = np.random.default_rng([seed, 0x0E11])
        self.greenlets: list[gevent.Greenlet] = []

    @property
    def process(self) -> str:
        st = locust_hooks.state(self.env)
        return st.process_id if st is not None else "local"

    def ready(self, user: OpenModelUser) -> None:
        # Last in, first out: the most recently idle user (its connection open) goes next,
        # so a pool larger than needed opens no more connections than the load takes.
        self.idle.setdefault(type(user).__name__, []).append(user)

    def forget(self, user: OpenModelUser) -> None:
        stack = self.idle.get(type(user).__name__, [])
        if user in stack:
            stack.remove(user)

    def start(
        self,
        origin: float,
        stages: Sequence[RateStage],
        arrivals: str,
        process: int,
        processes: int,
        seed: int,
    ) -> None:
        share = schedule(stages, mode=arrivals, process=process, processes=processes, seed=seed)
        self.greenlets.append(gevent.spawn(self._dispatch, origin, share))
        self.greenlets.append(gevent.spawn(self._watch_cpu, origin))

    def stop(self) -> None:
        for g in self.greenlets:
            g.kill(block=False)
        self.greenlets.clear()

    def _pick(self) -> OpenModelUser | None:
        name = (
            self.class_names[0]
            if len(self.class_names) == 1 or self.class_p is None
            else self.class_names[int(self.rng.choice(len(self.class_names), p=self.class_p))]
        )
        stack = self.idle.get(name)
        while stack:
            user = stack.pop()
            if not user.greenlet.dead:
                return user
        return None

    def _dispatch(self, origin: float, share: Any) -> None:
        for arrival in share:
            intended = origin + arrival.offset
            delay = intended - time.time()
            if delay <= 0:
                # Behind schedule: still let the users handed iterations so far start first.
                gevent.sleep(0)
            # Never early: sleep until the intended start (gevent may wake a hair before).
            # The users woken for earlier arrivals run while this greenlet sleeps.
            while delay > 0:
                gevent.sleep(delay)
                delay = intended - time.time()
            user = self._pick()
            if user is None:
                self.log(intended, arrival.stage, ITERATION_DROPPED, None, None, "")
            else:
                user.assign(intended, arrival.stage)

    def _watch_cpu(self, origin: float) -> None:
        process = psutil.Process()
        gevent.sleep(max(0.0, origin - time.time()))
        process.cpu_percent(None)
        while True:
            gevent.sleep(CPU_INTERVAL_S)
            locust_hooks.record_cpu(self.env, time.time(), process.cpu_percent(None))

    def log(
        self,
        intended: float,
        stage: str,
        outcome: str,
        lag_s: float | None,
        duration_s: float | None,
        user_class: str,
    ) -> None:
        locust_hooks.record_iteration(
            self.env,
            (
                intended,
                stage,
                outcome,
                None if lag_s is None else lag_s * 1000.0,
                None if duration_s is None else duration_s * 1000.0,
                user_class,
                self.process,
            ),
        )


def _executor(env: Environment) -> Executor:
    run = current(env)
    if run is None or run.executor is None:
        raise ConfigError("an open-model user runs only under an open-model scenario")
    return run.executor


# -- users ---------------------------------------------------------------------------------------


class OpenModelUser(User):
    """Mixin (first base) that makes a user run one task per scheduled arrival."""

    abstract = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake = Event()
        self._arrival: tuple[float, str] | None = None
        self._lag_s = 0.0

    def wait_time(self) -> float:
        """No think time: the schedule, not the user, decides when the next iteration starts."""
        return 0.0

    def context(self) -> dict[str, Any]:
        """Locust's request context, plus the iteration's intended start, lag and stage."""
        base: dict[str, Any] = super().context()
        if self._arrival is None:
            return base
        intended, stage = self._arrival
        return {**base, "intended_start": intended, "iteration_lag_s": self._lag_s, "stage": stage}

    def assign(self, intended: float, stage: str) -> None:
        """Called by the executor: run an iteration meant to start at ``intended``."""
        self._arrival = (intended, stage)
        self._wake.set()

    def await_arrival(self) -> tuple[float, str]:
        """Wait, idle, until the executor assigns an iteration; return it."""
        executor = _executor(self.environment)
        # Waiting, for Locust: a user stopped now is stopped at once, not waited for.
        self._state = LOCUST_STATE_WAITING
        executor.ready(self)
        try:
            self._wake.wait()
        except BaseException:
            executor.forget(self)
            if self._arrival is not None:  # assigned, killed before it could start
                intended, stage = self._arrival
                executor.log(intended, stage, ITERATION_UNFINISHED, None, None, type(self).__name__)
            raise
        self._wake.clear()
        self._state = LOCUST_STATE_RUNNING
        assert self._arrival is not None
        return self._arrival


def _as_iteration(task: Any, owner: type[User]) -> Callable[[User], None]:
    """Wrap one of a user's tasks so that each call is one scheduled iteration."""
    if inspect.isclass(task) and issubclass(task, TaskSet):
        raise ConfigError(
            f"{owner.__name__}: open-model runs drive task functions, and task "
            f"{task.__name__} is a TaskSet; give {owner.__name__} its tasks as methods"
        )

    run_task: Callable[[User], object] = task

    @functools.wraps(task)
    def iteration(user: User) -> None:
        assert isinstance(user, OpenModelUser)
        executor = _executor(user.environment)
        intended, stage = user.await_arrival()
        started = time.time()
        user._lag_s = max(0.0, started - intended)
        outcome = ITERATION_DONE
        try:
            run_task(user)
        except BaseException as exc:
            if isinstance(exc, gevent.GreenletExit):
                outcome = ITERATION_UNFINISHED  # stopped after the drain timeout
            raise
        finally:
            duration = time.time() - started if outcome == ITERATION_DONE else None
            executor.log(intended, stage, outcome, user._lag_s, duration, type(user).__name__)
            user._arrival = None

    return iteration


def open_model_class(cls: type[User]) -> type[User]:
    """``cls`` driven by the schedule: a subclass of the same name whose tasks are iterations."""
    if issubclass(cls, OpenModelUser):
        return cls
    tasks: list[Any] = list(getattr(cls, "tasks", []))
    sub = type(
        cls.__name__,
        (OpenModelUser, cls),
        {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__},
    )
    # After the class exists: harness users' WeightedTasks sets `tasks` when it is created.
    sub.tasks = [_as_iteration(t, cls) for t in tasks]  # type: ignore[attr-defined]
    return sub
