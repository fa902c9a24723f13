"""Reading the Grafana dashboards as the tests check them: JSON, PromQL, metric names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DASHBOARDS = REPO / "grafana" / "dashboards"
# The provisioned data source's uid (grafana/provisioning/datasources/prometheus.yml).
DATASOURCE_UID = "prometheus"
# Grafana's own variables, as a dashboard with every variable on "All" sends them. The rate
# window suits the tests' 1 s scrape interval (Grafana makes it 4 x the scrape interval).
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$__interval": "5s"}
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_METRIC = re.compile(r"\b(?:harness|pg)_[a-z0-9_]+\b")


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    """The dashboard's JSON; an AssertionError naming the file and the place when it is not."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    assert isinstance(data, dict), f"{path.name}: a dashboard is a JSON object"
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def concrete(expr: str, dashboard: dict[str, Any]) -> str:
    """The expression as Grafana sends it with every template variable on "All"."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    for variable in dashboard.get("templating", {}).get("list", []):
        expr = expr.replace(f"${variable['name']}", variable.get("allValue") or ".*")
    assert "$" not in expr, f"unknown variable left in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """The harness_* and pg_* metric names an expression reads (label values left out)."""
    return set(_METRIC.findall(_QUOTED.sub('""', expr)))
