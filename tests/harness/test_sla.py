"""SLA expressions: what parses, what is refused (naming the part), and exact evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from harness.sla import SampleView, SlaError, evaluate, parse_sla


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "scope", "stage"),
    [
        ("p95<500ms", "p95", "<", 500.0, None, None),
        ("GET /discoveries:p99<1s", "p99", "<", 1000.0, "GET /discoveries", None),
        ("errors<1%", "errors", "<", 0.01, None, None),
        ("errors<=0.02", "errors", "<=", 0.02, None, None),
        ("rps>200", "rps", ">", 200.0, None, None),
        ("*:p95<500ms@spike", "p95", "<", 500.0, "*", "spike"),
        ("/entities/[id]:p99.9 < 2.5s", "p99.9", "<", 2500.0, "/entities/[id]", None),
        ("GET /health:mean<10ms", "mean", "<", 10.0, "GET /health", None),
    ],
)
def test_parses(
    text: str, metric: str, op: str, threshold: float, scope: str | None, stage: str | None
) -> None:
    sla = parse_sla(text)
    assert (sla.metric, sla.op, sla.scope, sla.stage) == (metric, op, scope, stage)
    assert sla.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("p95 500ms", "no comparison"),
        ("p96<500ms", "unknown metric 'p96'"),
        ("latency<5ms", "unknown metric 'latency'"),
        ("p95<500", "latency needs a unit"),
        ("p95<fast", "cannot read the value 'fast'"),
        ("errors<5ms", "errors is a share"),
        ("errors<150%", "between 0% and 100%"),
        ("rps>200ms", "rps takes a plain number"),
        ("", "empty"),
    ],
)
def test_refuses_with_the_part_at_fault(text: str, says: str) -> None:
    with pytest.raises(SlaError, match=None) as caught:
        parse_sla(text)
    assert says in str(caught.value)


def _view(
    latency: list[float], ok: list[bool], endpoint: list[str], stage: list[str]
) -> SampleView:
    return SampleView(
        endpoint=np.array(endpoint, dtype=object),
        name=np.array([e.split(" ", 1)[1] for e in endpoint], dtype=object),
        stage=np.array(stage, dtype=object),
        latency_ms=np.array(latency, dtype=np.float64),
        ok=np.array(ok, dtype=bool),
        start=np.zeros(len(latency)),
    )


def test_percentiles_are_numpys_linear_ones_on_known_data() -> None:
    rng = np.random.default_rng(4)
    latency = rng.lognormal(3.0, 0.8, 10_001).tolist()
    n = len(latency)
    view = _view(latency, [True] * n, ["GET /a"] * n, ["run"] * n)
    for metric, q in (("p50", 50), ("p95", 95), ("p99", 99), ("p99.9", 99.9)):
        [outcome] = evaluate([parse_sla(f"{metric}<1s")], view, {}, (0.0, 10.0))
        assert outcome.measured == np.percentile(latency, q)
    [p50] = evaluate(
        [parse_sla("p50<1s")],
        _view([1.0, 2.0, 3.0, 4.0], [True] * 4, ["GET /a"] * 4, ["run"] * 4),
        {},
        (0, 1),
    )
    assert p50.measured == 2.5  # linear interpolation between the two middle ranks


def test_scopes_stages_errors_and_rps() -> None:
    view = _view(
        latency=[10, 20, 600, 700, 5, 5],
        ok=[True, True, False, True, True, True],
        endpoint=["GET /a", "GET /a", "GET /b", "GET /b", "GET /a", "POST /a"],
        stage=["base", "base", "spike", "spike", "spike", "base"],
    )
    spans = {"base": (0.0, 10.0), "spike": (10.0, 12.0)}
    results = {
        (o.sla, o.scope): o
        for o in evaluate(
            [
                parse_sla(t)
                for t in (
                    "errors<10%",
                    "*:max<650ms",
                    "rps>0.5@spike",
                    "/a:p50<8ms@spike",
                    "p95<1s@nowhere",
                )
            ],
            view,
            spans,
            (0.0, 12.0),
        )
    }
    assert results[("errors<10%", "all")].measured == pytest.approx(1 / 6)
    assert not results[("errors<10%", "all")].passed
    assert results[("*:max<650ms", "GET /a")].passed
    assert not results[("*:max<650ms", "GET /b")].passed
    assert results[("*:max<650ms", "POST /a")].count == 1
    assert results[("rps>0.5@spike", "all")].measured == pytest.approx(3 / 2.0)
    assert results[("/a:p50<8ms@spike", "/a")].measured == 5.0  # name matches any method
    missing = results[("p95<1s@nowhere", "all")]
    assert not missing.passed and "never ran" in missing.note


def test_an_endpoint_scope_covers_its_query_string_variants() -> None:
    view = _view(
        latency=[10, 900, 20, 30],
        ok=[True] * 4,
        endpoint=[
            "GET /discoveries",
            "GET /discoveries?since_days=7",
            "GET /health",
            "GET /discoveries?min_score=[score]",
        ],
        stage=["run"] * 4,
    )
    [o] = evaluate([parse_sla("GET /discoveries:max<500ms")], view, {}, (0.0, 1.0))
    assert o.count == 3 and not o.passed
    [exact] = evaluate([parse_sla("GET /discoveries?since_days=7:max<500ms")], view, {}, (0, 1))
    assert exact.count == 1


def test_default_slas_do_not_fail_an_endpoint_nobody_called() -> None:
    from harness.sla import REFERENCE_API_SLAS, with_defaults

    view = _view([10.0], [True], ["GET /discoveries"], ["run"])
    slas = with_defaults([parse_sla("GET /health:mean<10ms")], REFERENCE_API_SLAS)
    assert [s.text for s in slas] == ["GET /health:mean<10ms", "*:p95<500ms"]
    asked, default = evaluate(slas, view, {}, (0.0, 1.0))
    assert not asked.passed  # asked for by the user: an endpoint never called fails
    assert default.passed
