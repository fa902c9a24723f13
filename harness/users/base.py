"""What every harness user shares: a weighted task mix, think time, seeded draws of skewed ids.

A user class declares its tasks as ``task_<name>`` methods and its mix as ``weights``
(``{name: weight}``); :class:`WeightedTasks` turns that into Locust's ``tasks`` list when the
class is created, after applying the run's environment overrides
(:mod:`harness.users.settings`). Subclasses override ``weights``, ``think_time`` and
``zipf_exponent`` as plain class attributes, or add ``task_*`` methods of their own.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NoReturn

import gevent
import numpy as np

from harness.errors import ConfigError, HarnessError
from harness.popularity import DEFAULT_EXPONENT
from harness.users import settings
from harness.workload import IdRange, Popularity

logger = logging.getLogger(__name__)

TASK_PREFIX = "task_"


_popularity: dict[tuple[str, float, int], Popularity] = {}
_popularity_failed: dict[tuple[str, float, int], HarnessError] = {}
# Patched by gevent inside Locust, so a greenlet waiting here lets the others run while the
# first one reads the id ranges over the network.
_popularity_lock = threading.Lock()


def shared_popularity(
    target: str, exponent: float, seed: int, load: Callable[[], Mapping[str, IdRange]]
) -> Popularity:
    """The process-wide :class:`Popularity` for ``target``, loading its ranges once.

    A failure is remembered too, so a hundred users starting together try the target once.
    """
    key = (target, exponent, seed)
    with _popularity_lock:
        if key in _popularity_failed:
            raise _popularity_failed[key]
        found = _popularity.get(key)
        if found is None:
            try:
                found = Popularity(load(), exponent, seed)
            except HarnessError as exc:
                _popularity_failed[key] = exc
                raise
            _popularity[key] = found
            logger.info(
                "id ranges of %s: %s",
                target,
                ", ".join(f"{k} {r.min_id}..{r.max_id}" for k, r in found.ranges.items()),
            )
        return found


_stopping = False


def stop_test(environment: Any, error: HarnessError) -> NoReturn:
    """Stop the whole run with ``error``'s one-line message and exit code; end this user.

    A user that cannot start (no target, unreachable server, empty dataset) would only fail
    again and again. Locust 2.x does not stop the run when a user raises ``StopTest`` (only
    its own greenlets have that handler) and exits 0 unless told, so do both here.
    """
    global _stopping
    if not _stopping:
        _stopping = True
        logger.error("%s", error)
        if getattr(environment, "process_exit_code", None) is None:
            environment.process_exit_code = error.exit_code
        # From another greenlet: quitting kills every user greenlet, this one included.
        gevent.spawn(_stop_run, environment)
    # Ends this user's greenlet the way a kill does: Locust runs on_stop and logs nothing
    # more (any other exception would be logged again with a traceback per user).
    raise gevent.GreenletExit


def _stop_run(environment: Any) -> None:
    runner = getattr(environment, "runner", None)
    if runner is None:
        return
    options = getattr(environment, "parsed_options", None)
    if options is not None and getattr(options, "headless", False):
        runner.quit()
    else:
        runner.stop()


class WeightedTasks:
    """Mixin for Locust users: ``weights`` over ``task_*`` methods, think time and Zipf skew.

    Put it first in the bases (``class MyUser(WeightedTasks, User)``) so that its
    ``wait_time`` wins over Locust's default.
    """

    #: Task name (a ``task_<name>`` method) -> relative weight. 0 leaves a task out.
    weights: ClassVar[dict[str, int]] = {}
    #: Environment variable that replaces ``weights`` for the run (empty: none).
    weights_env: ClassVar[str] = ""
    #: Seconds between two tasks of one user, drawn uniformly from ``(low, high)``.
    think_time: ClassVar[tuple[float, float]] = (0.0, 0.0)
    #: Skew of id popularity: 0 uniform, 1 classic Zipf.
    zipf_exponent: ClassVar[float] = DEFAULT_EXPONENT

    # Resolved when the class is created (environment applied), read by instances.
    resolved_weights: ClassVar[dict[str, int]]
    resolved_think_time: ClassVar[tuple[float, float]]
    resolved_exponent: ClassVar[float]
    _user_counter: ClassVar[itertools.count[int]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._user_counter = itertools.count()
        names = cls.available_tasks()
        if not names:
            # An abstract base (e.g. DatabaseUser): nothing to schedule yet.
            return
        where = f"{cls.__name__}.weights"
        settings.check_weights(cls.weights, names, source=where)
        weights = {n: cls.weights.get(n, 0) for n in names}
        env_text = os.environ.get(cls.weights_env) if cls.weights_env else None
        if env_text:
            # The operator's choice for this run wins over the mix written in code.
            weights = settings.parse_weights(env_text, names, source=cls.weights_env)
        if not cls.__dict__.get("abstract", False) and not any(weights.values()):
            raise ConfigError(f"{where} gives no task a positive weight")
        cls.resolved_weights = {n: weights.get(n, 0) for n in names}
        # Locust schedules by drawing uniformly from this list, so a task appears `weight` times.
        cls.tasks = [  # type: ignore[attr-defined]
            getattr(cls, TASK_PREFIX + name)
            for name, weight in cls.resolved_weights.items()
            for _ in range(weight)
        ]
        think_env = os.environ.get(settings.THINK_TIME_ENV)
        cls.resolved_think_time = (
            settings.parse_think_time(think_env)
            if think_env
            else settings.check_think_time(cls.think_time, source=f"{cls.__name__}.think_time")
        )
        cls.resolved_exponent = settings.zipf_exponent(cls.zipf_exponent)

    @classmethod
    def available_tasks(cls) -> list[str]:
        """Names of the tasks this class can run (its ``task_*`` methods), sorted."""
        return sorted(
            attr[len(TASK_PREFIX) :]
            for attr in dir(cls)
            if attr.startswith(TASK_PREFIX) and callable(getattr(cls, attr))
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        #: Spawn order of this user among its class's users in this process.
        self.user_index = next(cls._user_counter)
        self.rng = np.random.default_rng(self._seed_material())

    def _seed_material(self) -> list[int] | None:
        base = settings.seed()
        if base is None:
            return None
        # Same seed, worker and spawn order -> the same draws, run after run.
        runner = getattr(getattr(self, "environment", None), "runner", None)
        worker = max(0, int(getattr(runner, "worker_index", 0) or 0))
        return [base, worker, zlib.crc32(type(self).__name__.encode()), self.user_index]

    def on_start(self) -> None:
        """Pick tasks with this user's generator; subclasses call this first."""
        # Locust draws the next task with the module-global `random`, shared by every
        # greenlet, so a seeded run would not repeat its task sequence. Its root task set
        # exists by the time on_start runs; if a Locust version names it otherwise, its own
        # choice stays.
        taskset = getattr(self, "_taskset_instance", None)
        if taskset is not None and hasattr(taskset, "get_next_task"):
            taskset.get_next_task = self.next_task
        super().on_start()  # type: ignore[misc]

    def next_task(self) -> Callable[..., Any]:
        """The next task, drawn from Locust's ``tasks`` list (weights, ``--tags`` applied)."""
        tasks: list[Callable[..., Any]] = self.tasks  # type: ignore[attr-defined]
        if not tasks:
            raise ConfigError(f"{type(self).__name__} has no task left to run (check --tags)")
        return tasks[int(self.rng.integers(len(tasks)))]

    @staticmethod
    def popularity_seed() -> int:
        """Seed of the hot-id permutation: the run's seed, else a fixed one."""
        return settings.seed() or 0

    def wait_time(self) -> float:
        """Think time before the next task, from this user's own generator."""
        low, high = self.resolved_think_time
        return low if high <= low else float(self.rng.uniform(low, high))
