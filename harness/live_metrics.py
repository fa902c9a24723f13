"""Live Prometheus metrics of a load run, served by the Locust master (or the local runner).

``--prometheus-port PORT`` (or ``HARNESS_PROMETHEUS_PORT``) makes the master serve, at
``http://HOST:PORT/metrics``, while the run goes on:

* ``harness_load_requests_total``, ``harness_load_request_failures_total`` and the histogram
  ``harness_load_request_duration_seconds``, each by ``method``, ``name`` and ``stage``;
  bucket edges are dense around the SLA thresholds
  (:data:`harness.request_tally.SLA_THRESHOLDS_MS`);
* ``harness_load_users`` and ``harness_load_target_users``, ``harness_load_rps`` and
  ``harness_load_failures_per_second`` (Locust's own current figures);
* ``harness_load_stage`` (1 for the running stage, 0 for the ones before);
* ``harness_load_workers`` by state and ``harness_load_lost_workers`` (master only);
* ``harness_load_sla_threshold_seconds`` for every latency SLA of the run, and
  ``harness_load_run_info``.

Workers' requests reach the master through Locust's own worker reports: each worker folds
its requests into bucket counts and attaches what it counted since its last report to the
report (``report_to_master``); the master adds them up (``worker_report``). A local runner
counts its own requests. The stage of a request is the one its process knew when the answer
came (the recorder's samples carry the exact stage each request was sent in).

Importing :mod:`harness.locust_hooks` (``harness.users`` and ``harness.shapes`` do) imports
this module, so every locustfile that uses the harness gets the option.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from gevent.pywsgi import WSGIServer
from locust import __version__ as locust_version
from locust import events
from locust.env import Environment
from locust.runners import (
    STATE_CLEANUP,
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from harness import __version__
from harness.errors import ConfigError
from harness.net import ALL_INTERFACES, port_in_use_error
from harness.request_tally import RequestTallies, cumulative_buckets

PORT_OPTION = "--prometheus-port"
# The key under which a worker's counts travel in Locust's worker report.
REPORT_KEY = "harness_live_metrics"

WORKER_STATES = (
    STATE_INIT,
    STATE_SPAWNING,
    STATE_RUNNING,
    STATE_CLEANUP,
    STATE_STOPPING,
    STATE_STOPPED,
    STATE_MISSING,
)
# SLA metrics that are a latency, and so have a threshold line on the latency panels.
LATENCY_SLA_METRICS = ("p50", "p75", "p90", "p95", "p99", "p99.9", "mean", "min", "max")


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("harness live metrics", "Prometheus metrics of the run")
    group.add_argument(
        PORT_OPTION,
        type=int,
        default=None,
        env_var="HARNESS_PROMETHEUS_PORT",
        help="Serve live Prometheus metrics from the master on this port (/metrics)",
    )
    group.add_argument(
        "--prometheus-host",
        default=ALL_INTERFACES,  # Prometheus scrapes from another host; as Locust's web UI
        env_var="HARNESS_PROMETHEUS_HOST",
        help="Address the metrics server listens on (default: every interface)",
    )


class LoadCollector(Collector):
    """Reads the runner and the tallies when Prometheus scrapes."""

    def __init__(self, env: Environment, tallies: RequestTallies) -> None:
        self.env = env
        self.tallies = tallies

    def collect(self) -> Iterator[Metric]:
        yield from self._requests()
        yield from self._runner()
        yield from self._harness_state()

    def _requests(self) -> Iterator[Metric]:
        labels = ["method", "name", "stage"]
        requests = CounterMetricFamily(
            "harness_load_requests", "Requests answered (failed ones included)", labels=labels
        )
        failures = CounterMetricFamily(
            "harness_load_request_failures", "Requests that failed", labels=labels
        )
        latency = HistogramMetricFamily(
            "harness_load_request_duration_seconds",
            "Response time as Locust measured it, buckets dense around the SLA thresholds",
            labels=labels,
        )
        for key, t in sorted(self.tallies.by_key.items()):
            values = list(key)
            requests.add_metric(values, t.count)
            failures.add_metric(values, t.failures)
            latency.add_metric(values, cumulative_buckets(t), t.sum_ms / 1000.0)
        yield from (requests, failures, latency)

    def _runner(self) -> Iterator[Metric]:
        runner = self.env.runner
        if runner is None:
            return
        yield GaugeMetricFamily("harness_load_users", "Users running now", value=runner.user_count)
        target = getattr(runner, "target_user_count", None) or 0
        yield GaugeMetricFamily(
            "harness_load_target_users", "Users the shape or the command asked for", value=target
        )
        total = runner.stats.total
        yield GaugeMetricFamily(
            "harness_load_rps", "Locust's current requests per second", value=total.current_rps
        )
        yield GaugeMetricFamily(
            "harness_load_failures_per_second",
            "Locust's current failures per second",
            value=total.current_fail_per_sec,
        )
        if isinstance(runner, MasterRunner):
            workers = GaugeMetricFamily(
                "harness_load_workers", "Workers connected to the master", labels=["state"]
            )
            for s in WORKER_STATES:
                workers.add_metric([s], sum(1 for c in runner.clients.all if c.state == s))
            yield workers
            from harness.worker_watch import lost_workers

            yield GaugeMetricFamily(
                "harness_load_lost_workers",
                "Workers that stopped answering the master during the run",
                value=len(lost_workers(self.env)),
            )

    def _harness_state(self) -> Iterator[Metric]:
        from harness.locust_hooks import state

        st = state(self.env)
        info = GaugeMetricFamily(
            "harness_load_run_info",
            "The run: scenario, runner and versions",
            labels=["scenario", "runner", "harness_version", "locust_version"],
        )
        scenario = st.plan.name if st is not None and st.plan is not None else ""
        runner = st.role if st is not None else ""
        info.add_metric([scenario, runner, __version__, locust_version], 1)
        yield info
        if st is None:
            return
        # Every stage entered so far (from the master's stage spans), then the current one.
        names = list(dict.fromkeys([*(span[0] for span in st.spans), st.stage]))
        stage = GaugeMetricFamily(
            "harness_load_stage",
            "1 for the stage running now, 0 for the earlier ones",
            labels=["stage"],
        )
        for name in names:
            stage.add_metric([name], 1 if name == st.stage else 0)
        yield stage
        slas = GaugeMetricFamily(
            "harness_load_sla_threshold_seconds",
            "Latency SLAs of this run, for threshold lines",
            labels=["sla", "metric", "scope", "stage"],
        )
        for sla in st.slas:
            if sla.metric in LATENCY_SLA_METRICS:
                slas.add_metric(
                    [sla.text, sla.metric, sla.scope or "", sla.stage or ""],
                    sla.threshold / 1000.0,
                )
        yield slas


def _stage_of(env: Environment) -> str:
    from harness.locust_hooks import DEFAULT_STAGE, state

    st = state(env)
    return st.stage if st is not None else DEFAULT_STAGE


def _count_request(env: Environment, tallies: RequestTallies, **kw: Any) -> None:
    key = (str(kw.get("request_type")), str(kw.get("name")), _stage_of(env))
    tallies.add(key, float(kw.get("response_time") or 0.0), kw.get("exception") is None)


def serve(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve ``registry`` on ``host:port`` in a greenlet; ConfigError when the port is taken."""
    server = WSGIServer((host, port), make_wsgi_app(registry), log=None, error_log=None)
    try:
        server.start()
    except OSError as exc:
        raise port_in_use_error(PORT_OPTION, host, port, exc) from None
    return server


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    tallies = RequestTallies()
    if isinstance(runner, WorkerRunner):
        # Workers always count: the master alone knows whether it serves metrics.
        environment.events.request.add_listener(
            lambda **kw: _count_request(environment, tallies, **kw)
        )
        environment.events.report_to_master.add_listener(
            lambda data, **_: data.__setitem__(REPORT_KEY, tallies.drain())
        )
        return
    port = getattr(environment.parsed_options, "prometheus_port", None)
    if port is None:
        return
    if isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(
            lambda data, **_: tallies.merge(data.get(REPORT_KEY) or [])
        )
    else:
        environment.events.request.add_listener(
            lambda **kw: _count_request(environment, tallies, **kw)
        )
    registry = CollectorRegistry()
    registry.register(LoadCollector(environment, tallies))
    host = getattr(environment.parsed_options, "prometheus_host", ALL_INTERFACES)
    try:
        server = serve(registry, host, port)
    except ConfigError as exc:
        # One line and exit 2, as the harness CLI does, instead of a traceback.
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    environment.harness_metrics_server = server  # type: ignore[attr-defined]
    environment.events.quitting.add_listener(lambda **_: server.stop(timeout=1))
