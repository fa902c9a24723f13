"""``write_report`` on synthetic run directories: exact figures, stages, bad input, Locust."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.analysis.html import escape
from harness.analysis.load import RunLoadError, load_run
from harness.analysis.report import SUMMARY_SCHEMA, analyse, write_report
from harness.analysis.stats import PERCENTILE_DEFINITION, QUANTILES
from harness.sla import SampleView, evaluate, parse_slas
from tests.harness.analysis.rundirs import START, make_run, write_locust_csv, write_locust_json

APPROX = "approximate (Locust buckets)"


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """One synthetic run, reported once for the tests that only read the outputs."""
    run_dir = tmp_path_factory.mktemp("runs") / "20250615T150640Z-synthetic"
    truth = make_run(run_dir)
    write_report(load_run(run_dir), window_s=10.0)
    return run_dir, truth


def _summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


def _pcts(values: np.ndarray[Any, Any]) -> dict[str, float]:
    return {name: float(np.percentile(values, q)) for name, q in QUANTILES.items()}


def test_writes_three_files_with_versioned_summary(reported: tuple[Path, pd.DataFrame]) -> None:
    run_dir, truth = reported
    for name in ("report.html", "report.md", "summary.json"):
        assert (run_dir / name).stat().st_size > 0
    summary = _summary(run_dir)
    assert summary["schema"] == SUMMARY_SCHEMA
    assert summary["method"]["exact"] is True
    assert summary["method"]["percentile_definition"] == PERCENTILE_DEFINITION
    assert summary["run"]["samples"] == len(truth)
    assert summary["run"]["scenario"] == "synthetic"
    assert summary["overall"]["count"] == len(truth)
    assert len(summary["windows"]) == 6  # 60 s in 10 s windows
    assert sum(w["count"] for w in summary["windows"]) == len(truth)
    assert summary["warnings"] == []


def test_percentiles_equal_numpy_on_the_same_samples(
    reported: tuple[Path, pd.DataFrame],
) -> None:
    run_dir, truth = reported
    summary = _summary(run_dir)
    lat = truth["latency_ms"].to_numpy()
    assert summary["overall"]["latency_ms"] | {} == {
        **summary["overall"]["latency_ms"],
        **_pcts(lat),
    }
    for row in summary["endpoints"]:
        mask = (truth["endpoint"] == row["endpoint"]).to_numpy()
        assert row["count"] == mask.sum()
        for name, value in _pcts(lat[mask]).items():
            assert row["latency_ms"][name] == value  # identical, not approximately
    for row in summary["stage_endpoints"]:
        mask = (
            (truth["endpoint"] == row["endpoint"]) & (truth["stage"] == row["stage"])
        ).to_numpy()
        for name, value in _pcts(lat[mask]).items():
            assert row["latency_ms"][name] == value


def test_per_stage_rows_use_stage_spans(reported: tuple[Path, pd.DataFrame]) -> None:
    run_dir, truth = reported
    stages = _summary(run_dir)["stages"]
    assert [s["stage"] for s in stages] == ["warmup", "spike", "recovery"]  # time order
    for row in stages:
        assert row["seconds"] == 20.0
        assert row["end"] - row["start"] == 20.0
        n = int((truth["stage"] == row["stage"]).sum())
        assert row["count"] == n
        assert row["rps"] == pytest.approx(n / 20.0)
    # the spike had five times the users of the warm-up, and so about five times the rps
    assert stages[1]["rps"] / stages[0]["rps"] == pytest.approx(5.0, rel=0.15)


def test_samples_on_a_stage_boundary_land_in_the_stage_they_were_sent_in(
    tmp_path: Path,
) -> None:
    boundary = START + 20.0  # warmup ends and spike starts
    extra = [
        (boundary, None, "/edge", "GET", 111.0, True, 200, 1, "spike", 25, "worker-0", None),
        (boundary - 1e-6, None, "/edge", "GET", 222.0, True, 200, 1, "warmup", 5, "worker-0", None),
    ]
    make_run(tmp_path / "run", extra_rows=extra)
    run = load_run(tmp_path / "run")
    a = analyse(run, draw=False)
    cells = a.cells.set_index(["stage", "endpoint"])
    assert cells.loc[("spike", "GET /edge"), "max"] == 111.0
    assert cells.loc[("warmup", "GET /edge"), "max"] == 222.0
    # a window boundary falls there too (20 s = two 10 s windows): the later window
    win = a.windows.set_index("window")
    assert win.loc[2, "stage"] == "spike"
    edge = run.samples[run.samples["name"] == "/edge"]
    assert set(edge["stage"]) == {"warmup", "spike"}


def test_reevaluated_slas_match_harness_sla_evaluate(reported: tuple[Path, pd.DataFrame]) -> None:
    run_dir, truth = reported
    summary = _summary(run_dir)
    assert summary["verdict"]["source"] == "re-evaluated"
    meta = json.loads((run_dir / "run.json").read_text())
    view = SampleView(
        endpoint=truth["endpoint"].to_numpy(dtype=object),
        name=truth["name"].to_numpy(dtype=object),
        stage=truth["stage"].to_numpy(dtype=object),
        latency_ms=truth["latency_ms"].to_numpy(dtype=np.float64),
        ok=truth["ok"].to_numpy(dtype=bool),
        start=truth["start_time"].to_numpy(dtype=np.float64),
    )
    spans = {s["name"]: (s["start"], s["end"]) for s in meta["stages"]}
    expected = evaluate(
        parse_slas(meta["slas"]), view, spans, (meta["start_epoch"], meta["end_epoch"])
    )
    got = summary["verdict"]["outcomes"]
    assert [(o["sla"], o["scope"], o["passed"]) for o in got] == [
        (o.sla, o.scope, o.passed) for o in expected
    ]
    for o, e in zip(got, expected, strict=True):
        assert o["measured"] == pytest.approx(e.measured, rel=1e-12)
    assert summary["verdict"]["passed"] is False  # POST /artifacts breaks p95 < 200 ms


def test_verdict_json_is_shown_as_the_runs_verdict(tmp_path: Path) -> None:
    verdict = {
        "schema": "harness.verdict/1",
        "passed": True,
        "partial": False,
        "outcomes": [
            {
                "sla": "p95<900ms",
                "scope": "all",
                "stage": "whole run",
                "metric": "p95",
                "measured": 123.4,
                "threshold": 900.0,
                "op": "<",
                "passed": True,
                "count": 10,
                "note": "",
            }
        ],
    }
    make_run(tmp_path / "run", verdict=verdict)
    write_report(load_run(tmp_path / "run"))
    summary = _summary(tmp_path / "run")
    assert summary["verdict"]["source"] == "verdict.json"
    assert summary["verdict"]["passed"] is True
    html = (tmp_path / "run" / "report.html").read_text()
    assert "p95&lt;900ms" in html and "PASS" in html


def test_html_is_self_contained_and_complete(reported: tuple[Path, pd.DataFrame]) -> None:
    run_dir, _ = reported
    html = (run_dir / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(http" not in html
    assert html.count("<svg") == 5
    for text in (
        "Latency percentiles per 10 s window",
        "Throughput and errors",
        "Latency distribution",
        "Per endpoint and stage",
        "Errors by kind",
        "HTTP 500",
        "ConnectionRefusedError",
        "0123456789abcdef0123456789abcdef01234567",  # git commit
        "testhost",
        escape(PERCENTILE_DEFINITION),
        "GET /entities/[id]",
    ):
        assert text in html, text
    md = (run_dir / "report.md").read_text()
    assert "| GET /entities/[id] |" in md
    assert "## Per endpoint and stage" in md


def test_report_into_another_folder(tmp_path: Path) -> None:
    make_run(tmp_path / "run", rate=1.0)
    paths = write_report(load_run(tmp_path / "run"), out_dir=tmp_path / "out", window_s=5.0)
    assert {p.parent for p in paths.values()} == {tmp_path / "out"}
    assert not (tmp_path / "run" / "report.html").exists()
    assert _summary(tmp_path / "out")["method"]["window_s"] == 5.0
    assert len(_summary(tmp_path / "out")["windows"]) == 12


def test_truncated_sample_file_reports_what_is_readable(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    truth = make_run(run_dir, batch=200)
    victim = sorted((run_dir / "samples").glob("*.arrows"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) * 2 // 3])  # a crash mid-write
    run = load_run(run_dir)
    assert 0 < len(run.samples) < len(truth)
    write_report(run)
    summary = _summary(run_dir)
    assert summary["run"]["samples"] == len(run.samples)
    assert any(victim.name in w and "truncated" in w for w in summary["warnings"])
    html = (run_dir / "report.html").read_text()
    assert "Warnings" in html and victim.name in html


def test_empty_missing_and_newer_runs_fail_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "empty" / "samples").mkdir(parents=True)
    (tmp_path / "empty" / "run.json").write_text('{"schema": "harness.run/1"}')
    newer = tmp_path / "newer"
    make_run(newer, rate=0.5)
    meta = json.loads((newer / "run.json").read_text())
    (newer / "run.json").write_text(json.dumps({**meta, "schema": "harness.run/2"}))
    cases = {
        tmp_path / "empty": "no samples",
        tmp_path / "missing": "no such run directory",
        newer: "newer",
    }
    for path, words in cases.items():
        with pytest.raises(RunLoadError) as info:
            load_run(path)
        message = str(info.value)
        assert words in message and "\n" not in message
        assert info.value.exit_code == 6


def test_locust_csv_import_is_labelled_approximate(tmp_path: Path) -> None:
    prefix = tmp_path / "locust" / "stats"
    write_locust_csv(prefix)
    run = load_run(prefix)
    assert run.approximate
    paths = write_report(run)
    assert paths["html"].parent == tmp_path / "locust"
    summary = _summary(tmp_path / "locust")
    assert summary["method"] == summary["method"] | {"exact": False, "approximate": True}
    assert summary["method"]["source"] == "locust-csv"
    by_ep = {r["endpoint"]: r for r in summary["endpoints"]}
    assert set(by_ep) == {"GET /discoveries", "GET /entities/[id]", "POST /artifacts"}
    assert by_ep["GET /discoveries"]["latency_ms"]["p95"] == 99.0
    assert by_ep["POST /artifacts"]["error_rate"] == pytest.approx(3 / 150)
    assert summary["overall"]["count"] == 2250  # Locust's "Aggregated" row
    assert summary["stages"] == [] and summary["windows"] == []
    html = paths["html"].read_text()
    figures = re.findall(r"<figure>.*?</figure>", html, flags=re.S)
    assert figures
    for fig in figures:
        assert APPROX in fig  # every figure says so
    assert APPROX in paths["markdown"].read_text()


def test_locust_csv_in_a_run_directory_reports_into_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_locust_csv(run_dir / "locust" / "stats")
    (run_dir / "run.json").write_text('{"schema": "harness.run/1"}')
    paths = write_report(load_run(run_dir))
    assert paths["summary"] == run_dir / "summary.json"
    assert _summary(run_dir)["method"]["approximate"] is True


def test_locust_json_import_uses_bucket_percentiles(tmp_path: Path) -> None:
    path = write_locust_json(tmp_path / "stats.json")
    run = load_run(path)
    assert run.approximate
    write_report(run)
    summary = _summary(tmp_path)
    by_ep = {r["endpoint"]: r for r in summary["endpoints"]}
    # Locust's own bucket walk (locust.stats.calculate_response_time_percentile): 100
    # requests in buckets 10 (20), 40 (50), 90 (25), 400 (5)
    got = by_ep["GET /discoveries"]["latency_ms"]
    assert (got["p50"], got["p90"], got["p95"], got["p99"]) == (40.0, 90.0, 400.0, 400.0)
    assert by_ep["GET /health"]["latency_ms"]["p50"] == 1.0
    html = (tmp_path / "report.html").read_text()
    figures = re.findall(r"<figure>.*?</figure>", html, flags=re.S)
    assert len(figures) == 2
    assert all(APPROX in f for f in figures)


def test_a_short_run_gets_windows_short_enough_to_draw_a_shape(tmp_path: Path) -> None:
    from harness.analysis.report import MIN_WINDOWS, auto_window

    run_dir = tmp_path / "20250615T150640Z-synthetic"
    make_run(run_dir)
    run = load_run(run_dir)
    window = auto_window(run)
    assert window < 10.0
    assert (run.end - run.start) / window >= MIN_WINDOWS - 1
    assert auto_window(run, preferred=0.5) == 0.5  # already fine: left alone
