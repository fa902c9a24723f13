"""Scenario files: small declarative lists of named stages, read and checked without Locust.

A scenario file (``scenarios/spike.py``) assigns literals at module level::

    STAGES = [
        {"name": "baseline", "duration": "2m", "users": 20, "ramp": "20s"},
        {"name": "spike", "duration": "1m", "users": 200, "ramp": "1m"},
    ]
    SLAS = ["p95<500ms", "errors<1%"]

and, for ``locust -f``, declares ``class Spike(ScenarioShape)`` (see :mod:`harness.shapes`).
A stress scenario gives ``STRESS = {...}`` instead of stages. The file is parsed with ``ast``
(never executed) when ``harness run`` checks it, so a typo is reported before any load starts.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.sla import parse_slas

STAGE_KEYS = ("duration", "end", "name", "ramp", "spawn_rate", "users")
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
    """One stage: hold ``users`` for ``duration`` s, reaching them at ``spawn_rate`` users/s."""

    name: str
    duration: float
    users: int
    spawn_rate: float

    def as_dict(self) -> dict[str, Any]:
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

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.stages)

    def scaled(self, time_scale: float = 1.0, users_scale: float = 1.0) -> Scenario:
        """The same shape shrunk (or grown) in time and in users, for quick runs."""
        if time_scale <= 0 or users_scale <= 0:
            raise ScenarioError("--time-scale and --users-scale must be positive")

        def users(n: int) -> int:
            return 0 if n == 0 else max(1, round(n * users_scale))

        stages = tuple(
            Stage(
                s.name,
                s.duration * time_scale,
                users(s.users),
                max(0.1, s.spawn_rate * users_scale / time_scale),
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


def _stage(
    raw: Any, index: int, previous_users: int, previous_end: float, where: str
) -> tuple[Stage, float]:
    label = f"{where}: stage {index + 1}"
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            f"{label}: must be a dict like {{'name': 'steady', 'duration': '10m', 'users': 100}}"
        )
    name = raw.get("name")
    if isinstance(name, str) and name:
        label += f" ({name!r})"
    unknown = sorted(set(raw) - set(STAGE_KEYS))
    if unknown:
        raise ScenarioError(
            f"{label}: unknown key {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(STAGE_KEYS)}"
        )
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ScenarioError(
            f"{label}: 'name' must be a word (letters, digits, - _ .), got {name!r}"
        )
    users = raw.get("users")
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        raise ScenarioError(f"{label}: 'users' must be a whole number >= 0, got {users!r}")
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
        duration = end - previous_end
    else:
        duration = parse_duration(raw["duration"], f"{label} 'duration'")
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
) -> Scenario:
    """Check raw scenario values and build a :class:`Scenario`, or raise :class:`ScenarioError`."""
    where = str(source)
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
    for i, raw in enumerate(stages):
        stage, end = _stage(raw, i, users, end, where)
        if any(s.name == stage.name for s in built):
            raise ScenarioError(
                f"{where}: stage {i + 1}: name {stage.name!r} is used twice; "
                "stage names label every sample, so they must be unique"
            )
        built.append(stage)
        users = stage.users
    return Scenario(name, source, tuple(built), tuple(slas or ()), None, description)


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
            if isinstance(target, ast.Name) and target.id in {"STAGES", "SLAS", "STRESS"}:
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
