"""Scenario files: small declarative lists of named stages, read and checked without Locust.

A scenario file (``scenarios/spike.py``) assigns literals at module level::

    STAGES = [
        {"name": "baseline", "duration": "2m", "users": 20, "ramp": "20s"},
        {"name": "spike", "duration": "1m", "users": 200, "ramp": "1m"},
    ]
    SLAS = ["p95<500ms", "errors<1%"]

and, for ``locust -f``, declares ``class Spike(ScenarioShape)`` (see :mod:`harness.shapes`).
A stress scenario gives ``STRESS = {...}`` instead of stages. An open-model scenario gives
stages with a ``rate`` (iterations per second) instead of ``users``, optionally ``ARRIVALS``
(``"even"`` or ``"poisson"``) and ``MAX_INFLIGHT`` (see :mod:`harness.arrivals`). The file is
parsed with ``ast`` (never executed) when ``harness run`` checks it, so a typo is reported
before any load starts.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.arrivals import ARRIVAL_MODES, RateStage
from harness.errors import ConfigError
from harness.sla import parse_slas

STAGE_KEYS = ("duration", "end", "name", "ramp", "spawn_rate", "users")
RATE_STAGE_KEYS = ("duration", "end", "name", "ramp", "rate")
# Module-level literals a scenario file may set.
SCENARIO_NAMES = frozenset({"STAGES", "SLAS", "STRESS", "ARRIVALS", "MAX_INFLIGHT"})
STRESS_KEYS = (
    "error_limit",
    "max_users",
    "spawn_rate",
    "start_users",
    "step_duration",
    "step_users",
)
# Locust's own default spawn rate: 1 user per second is too slow for a 200-user spike, so a
# stage with neither ramp nor spawn_rate reaches its users within this many seconds.
DEFAULT_RAMP_S = 10.0
DEFAULT_ERROR_LIMIT = 0.05

# How long one iteration is guessed to take when sizing the in-flight pool from the rate (the
# way k6 users size preAllocatedVUs: rate x iteration time): a target within the reference
# SLAs (p99 < 1 s) with room for a stall of as long again.
LATENCY_GUESS_S = 2.0
MIN_INFLIGHT = 10

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")


class ScenarioError(ConfigError):
    """A scenario file that cannot be used; the message names the file, the stage and the fix."""


def parse_duration(value: Any, where: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: a duration, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())) and value.strip():
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    else:
        raise ScenarioError(f"{where}: cannot read duration {value!r}; write e.g. 90, '90s', '10m'")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ScenarioError(f"{where}: duration must be positive (got {value!r})")
    return seconds


@dataclass(frozen=True)
class Stage:
    """One stage: hold ``users`` for ``duration`` s, reaching them at ``spawn_rate`` users/s.

    An open-model stage sets ``rate`` (iterations per second) instead, reached linearly from
    the previous stage's rate over its first ``ramp`` seconds; its ``users`` is 0.
    """

    name: str
    duration: float
    users: int
    spawn_rate: float
    rate: float | None = None
    ramp: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        if self.rate is not None:
            return {
                "name": self.name,
                "duration": self.duration,
                "rate": self.rate,
                "ramp": self.ramp,
            }
        return {
            "name": self.name,
            "duration": self.duration,
            "users": self.users,
            "spawn_rate": self.spawn_rate,
        }


@dataclass(frozen=True)
class Stress:
    """Step users up every ``step_duration`` s until an SLA breaks or errors pass a limit."""

    start_users: int
    step_users: int
    step_duration: float
    max_users: int
    spawn_rate: float
    error_limit: float = DEFAULT_ERROR_LIMIT

    def steps(self) -> list[Stage]:
        count = max(1, (self.max_users - self.start_users) // self.step_users + 1)
        return [
            Stage(
                f"step-{i + 1}",
                self.step_duration,
                min(self.start_users + i * self.step_users, self.max_users),
                self.spawn_rate,
            )
            for i in range(count)
        ]


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: its stages (or stress plan), SLAs and where it came from."""

    name: str
    source: Path
    stages: tuple[Stage, ...]
    slas: tuple[str, ...] = ()
    stress: Stress | None = None
    description: str = ""
    scale: tuple[float, float] = field(default=(1.0, 1.0))
    arrivals: str = "even"
    max_inflight: int | None = None

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.stages)

    @property
    def open_model(self) -> bool:
        """True when the stages set arrival rates (an open model), not users."""
        return bool(self.stages) and self.stages[0].rate is not None

    @property
    def peak_rate(self) -> float:
        return max((s.rate or 0.0) for s in self.stages)

    def rate_stages(self) -> list[RateStage]:
        """The stages as :mod:`harness.arrivals` plans them (open-model scenarios only)."""
        return [RateStage(s.name, s.duration, s.rate or 0.0, s.ramp) for s in self.stages]

    def inflight_bound(self, given: int | None = None) -> int:
        """How many iterations may run at once: ``given``, else the scenario's
        ``MAX_INFLIGHT``, else the peak rate times :data:`LATENCY_GUESS_S`."""
        if given is not None:
            return check_max_inflight(given)
        if self.max_inflight is not None:
            return self.max_inflight
        return max(MIN_INFLIGHT, math.ceil(self.peak_rate * LATENCY_GUESS_S))

    def overridden(self, rate: float | None = None, duration: float | None = None) -> Scenario:
        """``--rate`` scales every stage's rate so the peak is ``rate``; ``--duration``
        scales every stage's length so the run lasts ``duration`` seconds."""
        out = self
        if rate is not None:
            if not self.open_model:
                raise ScenarioError(
                    f"{self.source}: --rate needs an open-model scenario, and {self.name!r} "
                    "sets users; use constant_rate, ramping_rate or spike_rate, or give its "
                    "stages a 'rate' instead of 'users'"
                )
            if isinstance(rate, bool) or not math.isfinite(rate) or rate <= 0:
                raise ScenarioError(
                    f"--rate must be a positive number of iterations per second (got {rate:g})"
                )
            factor = rate / self.peak_rate
            out = replace(
                out,
                stages=tuple(replace(s, rate=(s.rate or 0.0) * factor) for s in out.stages),
            )
        if duration is not None:
            if not math.isfinite(duration) or duration <= 0:
                raise ScenarioError(f"--duration must be a positive time (got {duration:g} s)")
            factor = duration / out.duration
            out = replace(
                out,
                stages=tuple(
                    replace(s, duration=s.duration * factor, ramp=s.ramp * factor)
                    for s in out.stages
                ),
            )
        return out

    def scaled(self, time_scale: float = 1.0, users_scale: float = 1.0) -> Scenario:
        """The same shape shrunk (or grown) in time and in users, for quick runs."""
        if time_scale <= 0 or users_scale <= 0:
            raise ScenarioError("--time-scale and --users-scale must be positive")

        def users(n: int) -> int:
            return 0 if n == 0 else max(1, round(n * users_scale))

        # An open-model stage's load is its rate: --users-scale (and --quick) scale it.
        stages = tuple(
            Stage(
                s.name,
                s.duration * time_scale,
                users(s.users),
                max(0.1, s.spawn_rate * users_scale / time_scale),
                None if s.rate is None else s.rate * users_scale,
                s.ramp * time_scale,
            )
            for s in self.stages
        )
        stress = None
        if self.stress is not None:
            st = self.stress
            stress = replace(
                st,
                start_users=users(st.start_users),
                step_users=users(st.step_users),
                max_users=users(st.max_users),
                step_duration=st.step_duration * time_scale,
                spawn_rate=max(0.1, st.spawn_rate * users_scale / time_scale),
            )
            stages = tuple(stress.steps())
        return replace(
            self,
            stages=stages,
            stress=stress,
            scale=(self.scale[0] * time_scale, self.scale[1] * users_scale),
        )

    def stage_at(self, elapsed: float) -> Stage | None:
        """The stage running ``elapsed`` seconds into the run; None once all are done."""
        t = 0.0
        for stage in self.stages:
            t += stage.duration
            if elapsed < t:
                return stage
        return None

    def timeline(self) -> list[tuple[str, float, float]]:
        """Planned (stage, start, end) offsets in seconds from the start of the run."""
        out, t = [], 0.0
        for s in self.stages:
            out.append((s.name, t, t + s.duration))
            t += s.duration
        return out


def check_max_inflight(value: Any) -> int:
    """``--max-inflight``: a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ScenarioError(
            f"--max-inflight must be a whole number >= 1 (got {value!r}): it is how many "
            "iterations may run at once; leave it out to size it from the rate"
        )
    return value


def _stage_label(raw: Any, index: int, where: str) -> str:
    label = f"{where}: stage {index + 1}"
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if isinstance(name, str) and name:
        label += f" ({name!r})"
    return label


def _stage_name(raw: Mapping[str, Any], label: str) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ScenarioError(
            f"{label}: 'name' must be a word (letters, digits, - _ .), got {name!r}"
        )
    return name


def _stage_duration(raw: Mapping[str, Any], label: str, previous_end: float) -> float:
    if ("duration" in raw) == ("end" in raw):
        raise ScenarioError(
            f"{label}: give exactly one of 'duration' (this stage's length) "
            "or 'end' (time since the run started)"
        )
    if "end" in raw:
        end = parse_duration(raw["end"], f"{label} 'end'")
        if end <= previous_end:
            raise ScenarioError(
                f"{label}: stages out of order: 'end' {raw['end']!r} is not after "
                f"the previous stage's end ({previous_end:g} s)"
            )
        return end - previous_end
    return parse_duration(raw["duration"], f"{label} 'duration'")


def parse_rate(value: Any, where: str) -> float:
    """Iterations per second from ``100``, ``"100/s"`` or ``"6000/m"``; must be positive."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: a rate, not {value!r}")
    rate: float | None = None
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str) and (m := re.fullmatch(r"\s*([0-9.]+)\s*/\s*(s|m|h)\s*", value)):
        try:
            rate = float(m[1]) / {"s": 1.0, "m": 60.0, "h": 3600.0}[m[2]]
        except ValueError:
            rate = None
    if rate is None:
        raise ScenarioError(f"{where}: cannot read rate {value!r}; write e.g. 100, '100/s', '30/m'")
    if not math.isfinite(rate) or rate <= 0:
        raise ScenarioError(
            f"{where}: 'rate' must be a positive number of iterations per second "
            f"(got {value!r}); to leave a pause, end the previous stage later instead"
        )
    return rate


def _rate_stage(raw: Mapping[str, Any], label: str, previous_end: float) -> tuple[Stage, float]:
    unknown = sorted(set(raw) - set(RATE_STAGE_KEYS))
    if unknown:
        raise ScenarioError(
            f"{label}: unknown key {', '.join(map(repr, unknown))} in a rate stage; "
            f"valid keys: {', '.join(RATE_STAGE_KEYS)}"
        )
    name = _stage_name(raw, label)
    if "ramp" in raw and "duration" not in raw and "end" not in raw:
        raise ScenarioError(
            f"{label}: a ramp needs the stage's 'duration' (the ramp runs within it), "
            "e.g. {'rate': 100, 'ramp': '30s', 'duration': '2m'}"
        )
    duration = _stage_duration(raw, label, previous_end)
    rate = parse_rate(raw.get("rate"), f"{label} 'rate'")
    ramp = 0.0
    if "ramp" in raw:
        ramp = parse_duration(raw["ramp"], f"{label} 'ramp' (a ramp needs a positive duration)")
        if ramp > duration:
            raise ScenarioError(
                f"{label}: 'ramp' ({ramp:g} s) is longer than the stage ({duration:g} s); "
                "make the stage longer or the ramp shorter"
            )
    return Stage(name, duration, 0, 1.0, rate, ramp), previous_end + duration


def _stage(
    raw: Any, index: int, previous_users: int, previous_end: float, where: str
) -> tuple[Stage, float]:
    label = _stage_label(raw, index, where)
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            f"{label}: must be a dict like {{'name': 'steady', 'duration': '10m', 'users': 100}}"
        )
    unknown = sorted(set(raw) - set(STAGE_KEYS))
    if unknown:
        raise ScenarioError(
            f"{label}: unknown key {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(STAGE_KEYS)}"
        )
    name = _stage_name(raw, label)
    users = raw.get("users")
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        raise ScenarioError(f"{label}: 'users' must be a whole number >= 0, got {users!r}")
    duration = _stage_duration(raw, label, previous_end)
    if "spawn_rate" in raw and "ramp" in raw:
        raise ScenarioError(f"{label}: give 'ramp' or 'spawn_rate', not both")
    delta = abs(users - previous_users)
    if "spawn_rate" in raw:
        rate = raw["spawn_rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
            raise ScenarioError(f"{label}: 'spawn_rate' must be a positive number, got {rate!r}")
        spawn_rate = float(rate)
    else:
        if "ramp" in raw:
            ramp = parse_duration(raw["ramp"], f"{label} 'ramp'")
        else:
            ramp = min(DEFAULT_RAMP_S, duration)
        if ramp > duration:
            raise ScenarioError(
                f"{label}: 'ramp' ({ramp:g} s) is longer than the stage ({duration:g} s)"
            )
        spawn_rate = max(delta / ramp, 1.0)
    return Stage(name, duration, users, spawn_rate), previous_end + duration


def _stress(raw: Any, where: str) -> Stress:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: STRESS must be a dict")
    unknown = sorted(set(raw) - set(STRESS_KEYS))
    if unknown:
        raise ScenarioError(
            f"{where}: STRESS: unknown key {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(STRESS_KEYS)}"
        )
    missing = sorted({"start_users", "step_users", "step_duration", "max_users"} - set(raw))
    if missing:
        raise ScenarioError(f"{where}: STRESS: missing {', '.join(missing)}")
    ints = {}
    for key in ("start_users", "step_users", "max_users"):
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ScenarioError(f"{where}: STRESS '{key}' must be a whole number >= 1, got {v!r}")
        ints[key] = v
    if ints["max_users"] < ints["start_users"]:
        raise ScenarioError(f"{where}: STRESS 'max_users' is below 'start_users'")
    step = parse_duration(raw["step_duration"], f"{where}: STRESS 'step_duration'")
    rate = raw.get("spawn_rate", max(ints["step_users"] / min(step, DEFAULT_RAMP_S), 1.0))
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise ScenarioError(f"{where}: STRESS 'spawn_rate' must be positive, got {rate!r}")
    limit = raw.get("error_limit", DEFAULT_ERROR_LIMIT)
    if isinstance(limit, str) and limit.endswith("%"):
        limit = float(limit[:-1]) / 100
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1:
        raise ScenarioError(f"{where}: STRESS 'error_limit' must be a share like '5%' or 0.05")
    return Stress(
        ints["start_users"], ints["step_users"], step, ints["max_users"], float(rate), float(limit)
    )


def build_scenario(
    name: str,
    source: Path,
    stages: Any = None,
    slas: Sequence[str] | None = None,
    stress: Any = None,
    description: str = "",
    arrivals: Any = None,
    max_inflight: Any = None,
) -> Scenario:
    """Check raw scenario values and build a :class:`Scenario`, or raise :class:`ScenarioError`."""
    where = str(source)
    if arrivals is not None and arrivals not in ARRIVAL_MODES:
        raise ScenarioError(
            f"{where}: ARRIVALS must be one of {', '.join(map(repr, ARRIVAL_MODES))}, "
            f"not {arrivals!r}"
        )
    if max_inflight is not None:
        try:
            check_max_inflight(max_inflight)
        except ScenarioError as exc:
            raise ScenarioError(f"{where}: MAX_INFLIGHT: {exc}") from None
    if (stages is None) == (stress is None):
        raise ScenarioError(f"{where}: define STAGES (a list of stages) or STRESS, exactly one")
    if slas is not None:
        if isinstance(slas, str) or not all(isinstance(s, str) for s in slas):
            raise ScenarioError(f"{where}: SLAS must be a list of strings like ['p95<500ms']")
        try:
            parse_slas(slas)
        except ConfigError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
    if stress is not None:
        plan = _stress(stress, where)
        return Scenario(name, source, tuple(plan.steps()), tuple(slas or ()), plan, description)
    if not isinstance(stages, list | tuple) or not stages:
        raise ScenarioError(f"{where}: STAGES must be a non-empty list of stages")
    built: list[Stage] = []
    users, end = 0, 0.0
    open_model = _is_rate_stage(stages[0], 0, where)
    for i, raw in enumerate(stages):
        if _is_rate_stage(raw, i, where) != open_model:
            first, this = ("rate", "users") if open_model else ("users", "rate")
            raise ScenarioError(
                f"{_stage_label(raw, i, where)}: sets {this!r} but stage 1 sets {first!r}; "
                "one scenario is either open (every stage a 'rate') or closed (every stage "
                "'users'): split it into two scenario files"
            )
        if open_model:
            stage, end = _rate_stage(raw, _stage_label(raw, i, where), end)
        else:
            stage, end = _stage(raw, i, users, end, where)
        if any(s.name == stage.name for s in built):
            raise ScenarioError(
                f"{where}: stage {i + 1}: name {stage.name!r} is used twice; "
                "stage names label every sample, so they must be unique"
            )
        built.append(stage)
        users = stage.users
    if not open_model and (arrivals is not None or max_inflight is not None):
        raise ScenarioError(
            f"{where}: ARRIVALS and MAX_INFLIGHT are for open-model scenarios (stages with "
            "'rate'); this one sets users"
        )
    return Scenario(
        name,
        source,
        tuple(built),
        tuple(slas or ()),
        None,
        description,
        arrivals=arrivals or "even",
        max_inflight=max_inflight,
    )


def _is_rate_stage(raw: Any, index: int, where: str) -> bool:
    if not isinstance(raw, Mapping):
        return False  # _stage reports the shape of a stage
    if "rate" in raw and "users" in raw:
        raise ScenarioError(
            f"{_stage_label(raw, index, where)}: gives both 'rate' and 'users'; a stage sets "
            "an arrival rate (open model) or a number of users (closed model), not both"
        )
    return "rate" in raw


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file without executing it and check it."""
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise ScenarioError(f"{path}:{exc.lineno}: not valid Python ({exc.msg})") from None
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in SCENARIO_NAMES:
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise ScenarioError(
                        f"{path}:{node.lineno}: {target.id} must be written as a literal "
                        "(lists, dicts, strings, numbers), not computed"
                    ) from None
    return build_scenario(
        path.stem,
        path,
        values.get("STAGES"),
        values.get("SLAS"),
        values.get("STRESS"),
        ast.get_docstring(tree) or "",
        values.get("ARRIVALS"),
        values.get("MAX_INFLIGHT"),
    )


def find_scenario(name_or_path: str, folder: Path) -> Path:
    """A scenario by name (``spike`` -> ``scenarios/spike.py``) or by path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".py" or candidate.exists():
        return candidate
    path = folder / f"{name_or_path}.py"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))
        raise ScenarioError(
            f"no scenario {name_or_path!r} in {folder}; known: {', '.join(known) or 'none'}"
        )
    return path
