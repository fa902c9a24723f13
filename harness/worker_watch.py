"""Workers that die mid-run: noticed by the master, kept in ``run.json`` and told on stderr.

Locust's master marks a worker ``missing`` when its heartbeats stop (a killed process, a host
gone). The master checks its workers every second; each one lost is written at once to
``run.json`` under ``lost_workers`` (worker id, when, how far into the run, samples kept), so
the record survives even a master that dies next. The samples a lost worker sent before it
went silent stay in its file in ``samples/``; the verdict and ``harness report`` list the loss
as a warning (:mod:`harness.lost_workers`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner

from harness.lost_workers import describe

# How often the master looks at its workers' states (Locust's heartbeat interval).
CHECK_INTERVAL_S = 1.0


@dataclass
class WorkerWatch:
    """The master's record of the workers it lost."""

    env: Environment
    lost: dict[str, dict[str, Any]] = field(default_factory=dict)

    def loop(self) -> None:
        while True:
            gevent.sleep(CHECK_INTERVAL_S)
            self.sweep()

    def sweep(self, *, final: bool = False) -> None:
        """Note every worker the master now calls missing; write run.json when that changed."""
        from harness.locust_hooks import state

        runner = self.env.runner
        st = state(self.env)
        if not isinstance(runner, MasterRunner) or st is None:
            return
        changed = False
        now = time.time()
        for client in runner.clients.all:
            if client.state != STATE_MISSING or client.id in self.lost:
                continue
            started = st.started_at or now
            self.lost[client.id] = {
                "worker": client.id,
                "lost_at_epoch": now,
                "seconds_into_run": round(now - started, 3),
                "samples_kept": 0,
            }
            changed = True
            print(
                f"harness: worker {client.id} stopped answering the master "
                f"{now - started:.1f} s into the run; the samples it sent before are kept",
                file=sys.stderr,
            )
        for worker, entry in self.lost.items():
            writer = st.writers.get(worker)
            kept = writer.rows if writer is not None else 0
            if kept != entry["samples_kept"]:
                entry["samples_kept"] = kept
                changed = True
        if (changed or final) and st.run_dir is not None:
            from harness.locust_hooks import _update_run_json

            _update_run_json(st.run_dir, {"lost_workers": list(self.lost.values())})


def loss_warnings(env: Environment) -> list[str]:
    """One warning per lost worker, with its final sample count (for the verdict)."""
    watch: WorkerWatch | None = getattr(env, "harness_worker_watch", None)
    if watch is None:
        return []
    watch.sweep()
    return [describe(entry) for entry in watch.lost.values()]


def lost_workers(env: Environment) -> list[dict[str, Any]]:
    """The workers this master lost so far (empty on other runners)."""
    watch: WorkerWatch | None = getattr(env, "harness_worker_watch", None)
    return list(watch.lost.values()) if watch is not None else []


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        return
    watch = WorkerWatch(environment)
    environment.harness_worker_watch = watch  # type: ignore[attr-defined]
    greenlet = gevent.spawn(watch.loop)

    def at_quit(**_kw: Any) -> None:
        greenlet.kill(block=False)
        watch.sweep(final=True)

    # Added now, after harness.locust_hooks' own listener: the last sweep sees the final
    # sample counts and lands in run.json after the verdict's update of it.
    environment.events.quitting.add_listener(at_quit)
