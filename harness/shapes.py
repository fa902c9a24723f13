"""``LoadTestShape`` classes driven by scenario files (see :mod:`harness.scenario`).

A scenario file declares ``class Spike(ScenarioShape)`` below its ``STAGES``; the class reads
them when it is defined, so a typo fails at import, naming the file and the stage. At run
time the shape applies ``--time-scale`` / ``--users-scale`` and tells the hooks which stage
is running, so every sample carries its stage name. An open-model scenario (stages with a
``rate``) is played by :mod:`harness.users.open_model`: the shape holds its pool of users
and the schedule sets when each iteration starts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from locust import LoadTestShape

from harness import locust_hooks
from harness.scenario import Scenario, ScenarioError, build_scenario
from harness.users import open_model


class ScenarioShape(LoadTestShape):
    """Base class for scenario files: stages come from the module's STAGES/SLAS/STRESS."""

    abstract = True
    scenario: ClassVar[Scenario]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        module = sys.modules[cls.__module__]
        source = Path(getattr(module, "__file__", None) or cls.__module__)
        namespace = vars(module)
        try:
            cls.scenario = build_scenario(
                name=source.stem,
                source=source,
                stages=namespace.get("STAGES"),
                slas=namespace.get("SLAS"),
                stress=namespace.get("STRESS"),
                description=(module.__doc__ or "").strip(),
                arrivals=namespace.get("ARRIVALS"),
                max_inflight=namespace.get("MAX_INFLIGHT"),
            )
        except ScenarioError as exc:
            # Under plain `locust -f`, one line and exit 2 rather than an import traceback.
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None, "Locust sets the runner before it calls tick()"
        env = self.runner.environment
        plan = locust_hooks.plan(env, self.scenario)
        if plan.open_model:
            return open_model.shape_tick(env, plan)
        stage = plan.stage_at(self.get_run_time())
        if stage is None:
            locust_hooks.finish_plan(env)
            return None
        if not locust_hooks.enter_stage(env, stage.name):
            return None
        return stage.users, stage.spawn_rate
