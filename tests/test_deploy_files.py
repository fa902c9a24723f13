"""The docker-compose stack's files, checked with real tools (no Docker engine runs here).

- ``docker-compose.yml`` validates against the Compose Specification's JSON schema (vendored
  in ``tests/data/compose-spec``), after compose's own ``${VAR:-default}`` interpolation;
- every build context and Dockerfile exists, every service has an image or a build;
- ``promtool check config`` (Debian's ``prometheus`` package) accepts ``prometheus.yml``;
- the Grafana provisioning and dashboards are valid and point at what the stack runs;
- every port and volume the README's "Running on real infrastructure" names is in the stack;
- no password is written in the stack's files.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.dashboards import (
    DATASOURCE_UID,
    dashboard_files,
    expressions,
    load_dashboard,
    metric_names,
    panels,
)
from tests.harness.distributed_run import prometheus_tool

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec" / "compose-spec.json"
PROMETHEUS_YML = REPO / "prometheus.yml"
README = REPO / "README.md"
README_SECTION = "## Running on real infrastructure"
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")

# The metric names the community postgres_exporter documents for its default collectors, in
# its source: pg_up (the exporter), pg_stat_activity_count / _max_tx_duration (the builtin
# pg_stat_activity map), pg_stat_database_* (collector/pg_stat_database.go), pg_locks_count
# (collector/pg_locks.go), pg_settings_<name> (collector/pg_setting.go). The exporter cannot
# run here, so the PostgreSQL dashboard is checked against these names instead of live data.
POSTGRES_EXPORTER_METRICS = {
    "pg_up",
    "pg_stat_activity_count",
    "pg_stat_activity_max_tx_duration",
    "pg_locks_count",
    "pg_settings_max_connections",
    *(
        f"pg_stat_database_{column}"
        for column in (
            "numbackends",
            "xact_commit",
            "xact_rollback",
            "blks_read",
            "blks_hit",
            "tup_returned",
            "tup_fetched",
            "tup_inserted",
            "tup_updated",
            "tup_deleted",
            "conflicts",
            "temp_files",
            "temp_bytes",
            "deadlocks",
            "blk_read_time",
            "blk_write_time",
            "stats_reset",
        )
    ),
}


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``;
    a required variable that is unset becomes a placeholder, ``$$`` a literal ``$``."""
    env = env or {}

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return f"placeholder-{name.lower()}"
        return ""

    return _VARIABLE.sub(value, text).replace("$$", "$")


def _interpolated(node: Any) -> Any:
    # As compose does: on the parsed file's strings, so "${PORT:-8000}" stays a string.
    if isinstance(node, str):
        return interpolate(node)
    if isinstance(node, list):
        return [_interpolated(v) for v in node]
    if isinstance(node, dict):
        return {k: _interpolated(v) for k, v in node.items()}
    return node


def compose() -> dict[str, Any]:
    data = _interpolated(yaml.safe_load(COMPOSE.read_text()))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def _container_port(spec: str | dict[str, Any]) -> int:
    if isinstance(spec, dict):
        return int(spec["target"])
    return int(str(spec).rsplit(":", 1)[-1].split("/")[0])


def _published_port(spec: str | dict[str, Any]) -> int:
    if isinstance(spec, dict):
        return int(spec.get("published") or spec["target"])
    parts = str(spec).split(":")
    return int(parts[-2] if len(parts) > 1 else parts[-1])


def readme_section() -> str:
    text = README.read_text()
    assert README_SECTION in text, f"README.md has no {README_SECTION!r} section"
    section = text.split(README_SECTION, 1)[1]
    return section.split("\n## ", 1)[0]


# -- docker-compose.yml ----------------------------------------------------------------------


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    # The schema declares draft 2019-09 (its $schema URL is spelled the old way, "http:...#").
    assert "2019-09" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    errors = sorted(_validator().iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_the_schema_check_catches_a_broken_compose_file() -> None:
    broken = compose()
    broken["services"]["api"]["ports"] = "8000"  # must be a list
    broken["services"]["worker"]["depends_on"] = {"master": {"condition": "whenever"}}
    assert len(list(_validator().iter_errors(broken))) >= 2


def test_every_service_has_an_image_or_a_build_whose_context_and_dockerfile_exist() -> None:
    for name, service in services().items():
        assert "image" in service or "build" in service, name
        build = service.get("build")
        if build is None:
            continue
        context = REPO / (build if isinstance(build, str) else build.get("context", "."))
        assert context.is_dir(), f"{name}: build context {context} is missing"
        dockerfile = "Dockerfile"
        if isinstance(build, dict):
            dockerfile = build.get("dockerfile", dockerfile)
        assert (context / dockerfile).is_file(), f"{name}: {dockerfile} is missing"


def test_the_dockerfile_copies_only_what_exists() -> None:
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which is missing"


def test_the_stack_has_every_part_and_workers_scale() -> None:
    got = services()
    assert {
        "postgres",
        "redis",
        "api",
        "master",
        "worker",
        "prometheus",
        "grafana",
        "postgres-exporter",
    } <= set(got)
    master = " ".join(got["master"]["command"])
    assert "--master" in master and "--prometheus-port 9646" in master
    assert "locustfiles/api.py" in master
    worker = got["worker"]
    assert "--worker" in worker["command"] and "master" in worker["command"]
    # --scale worker=N needs replicas without a fixed name or a published port.
    assert "container_name" not in worker and "ports" not in worker
    grafana = got["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    mounts = " ".join(got["grafana"]["volumes"])
    assert "./grafana/provisioning:/etc/grafana/provisioning" in mounts
    assert "./grafana/dashboards:/etc/grafana/dashboards" in mounts
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml" in " ".join(
        got["prometheus"]["volumes"]
    )


def test_no_password_is_written_in_the_stack_files() -> None:
    raw = COMPOSE.read_text()
    for variable in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        uses = re.findall(rf"\$\{{{variable}(:?[-?][^}}]*)?\}}", raw)
        assert uses, variable
        # Required, with no default: compose refuses to start until .env sets it.
        assert all(u.startswith(":?") for u in uses), (variable, uses)
    example = (REPO / ".env.example").read_text()
    for line in example.splitlines():
        key, _, value = line.partition("=")
        if any(word in key for word in ("PASSWORD", "TOKEN")):
            assert value == "", f".env.example sets {key}; leave secrets empty"
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert ".env" in (REPO / ".dockerignore").read_text().split()


def test_every_port_and_volume_the_readme_names_is_in_the_stack() -> None:
    section = readme_section()
    got = services()
    published = {_published_port(p) for s in got.values() for p in s.get("ports", [])}
    inside = {_container_port(p) for s in got.values() for p in s.get("ports", [])}
    ports = {int(p) for p in re.findall(r"localhost:(\d+)", section)}
    ports |= {int(p) for p in re.findall(r"\| *`?(\d{4,5})`? *\|", section)}
    assert ports, "the README section names no port"
    for port in ports:
        assert port in published or port in inside, f"README names port {port}"
    volumes = set(compose()["volumes"])
    named = set(re.findall(r"volume `([a-z-]+)`", section))
    assert named, "the README section names no volume"
    assert named <= volumes, named - volumes
    for path in re.findall(r"`\./([\w./-]+)`", section):
        assert (REPO / path).exists(), f"README names ./{path}"


# -- prometheus.yml --------------------------------------------------------------------------


def test_promtool_accepts_prometheus_yml() -> None:
    done = subprocess.run(
        [prometheus_tool("promtool"), "check", "config", str(PROMETHEUS_YML)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_scrapes_the_master_the_api_and_the_exporter_where_they_listen() -> None:
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    got = services()
    jobs = {}
    for job in config["scrape_configs"]:
        [static] = job["static_configs"]
        jobs[job["job_name"]] = (static["targets"], job.get("metrics_path", "/metrics"))
    expected = {"locust": "master", "api": "api", "postgres": "postgres-exporter"}
    assert set(jobs) == set(expected)
    for job, service in expected.items():
        [target] = jobs[job][0]
        host, port = target.split(":")
        assert host == service
        assert int(port) in {_container_port(p) for p in got[service].get("ports", [])}
    assert jobs["api"][1] == "/metrics/prometheus"


# -- Grafana -----------------------------------------------------------------------------------


def test_the_provisioning_serves_the_stacks_prometheus_and_the_dashboards_folder() -> None:
    provisioning = REPO / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == DATASOURCE_UID
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "harness.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_each_dashboard_is_valid_json_on_the_provisioned_data_source(path: Path) -> None:
    dashboard = load_dashboard(path)
    assert dashboard["title"] and dashboard["uid"]
    assert panels(dashboard), f"{path.name} has no panels"
    for panel in panels(dashboard):
        if panel.get("type") == "row":
            continue
        assert panel["datasource"]["uid"] == DATASOURCE_UID, (path.name, panel["title"])
        assert panel.get("targets"), (path.name, panel["title"])
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"


def test_the_three_dashboards_are_there_with_unique_uids() -> None:
    dashboards = [load_dashboard(p) for p in dashboard_files()]
    assert {d["title"] for d in dashboards} == {"Load run", "Reference API", "PostgreSQL"}
    uids = [d["uid"] for d in dashboards]
    assert len(uids) == len(set(uids))


def test_a_dashboard_file_that_is_not_json_fails_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"title": "Load run", "panels": [,]}')
    with pytest.raises(AssertionError, match=r"broken\.json is not valid JSON: .* line 1"):
        load_dashboard(broken)


def test_the_sla_lines_are_on_the_latency_and_cache_panels() -> None:
    load = load_dashboard(REPO / "grafana" / "dashboards" / "load-run.json")
    api = load_dashboard(REPO / "grafana" / "dashboards" / "reference-api.json")

    def lines(dashboard: dict[str, Any], title_start: str) -> list[float]:
        [panel] = [p for p in panels(dashboard) if p["title"].startswith(title_start)]
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
        return [s["value"] for s in defaults["thresholds"]["steps"] if s["value"] is not None]

    assert lines(load, "p95 by endpoint") == [0.5]
    assert lines(load, "p99 by endpoint") == [1.0]
    assert lines(api, "p95 by route") == [0.5]
    assert lines(api, "Cache hit ratio") == [0.8]


def test_the_postgresql_dashboard_uses_only_the_exporters_documented_metric_names() -> None:
    dashboard = load_dashboard(REPO / "grafana" / "dashboards" / "postgresql.json")
    used = {name for expr in expressions(dashboard) for name in metric_names(expr)}
    assert used, "no pg_* metric found"
    assert used <= POSTGRES_EXPORTER_METRICS, used - POSTGRES_EXPORTER_METRICS
    assert {"pg_stat_activity_count", "pg_locks_count", "pg_stat_database_blks_hit"} <= used
