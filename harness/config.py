"""Settings read once per team: command line, then ``HARNESS_*`` variables, then ``harness.toml``.

One name in three places, as Locust does: ``--pg``, ``HARNESS_PG_URL``, ``pg_url`` in the
``[harness]`` table of ``harness.toml`` (looked up in the current folder, or ``HARNESS_CONFIG``).
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

CONFIG_FILE = "harness.toml"

# Environment variable for each setting a team sets once.
ENV_NAMES: dict[str, str] = {
    "pg_url": "HARNESS_PG_URL",
    "redis_url": "HARNESS_REDIS_URL",
    "admin_token": "HARNESS_ADMIN_TOKEN",
    "home": "HARNESS_HOME",
}


@cache
def _file_settings(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None
    table = data.get("harness", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [harness] must be a table of settings")
    unknown = sorted(set(table) - set(ENV_NAMES))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(ENV_NAMES))}"
        )
    return table


def config_path() -> Path | None:
    """The ``harness.toml`` in use, if any."""
    explicit = os.environ.get("HARNESS_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"HARNESS_CONFIG points at {path}, which is not a file")
        return path
    path = Path.cwd() / CONFIG_FILE
    return path if path.is_file() else None


def setting(name: str, given: str | None = None, default: str | None = None) -> str | None:
    """Resolve one setting: ``given`` (the command line) wins, then env, then file, then default."""
    if name not in ENV_NAMES:
        raise KeyError(name)
    if given:
        return given
    env = os.environ.get(ENV_NAMES[name])
    if env:
        return env
    path = config_path()
    if path is not None:
        value = _file_settings(path).get(name)
        if value is not None:
            return str(value)
    return default


def home() -> Path:
    """Folder where the harness keeps embedded servers and state (default ``.harness``)."""
    return Path(setting("home", default=".harness") or ".harness").resolve()
