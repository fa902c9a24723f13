"""``harness run`` as a user runs it: its own API, a run directory, a verdict, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.run import default_sigint
from harness.sla import EXIT_PARTIAL, EXIT_SLA_FAILED
from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR
from tests.harness.test_load_runs import TINY

HARNESS = [sys.executable, "-m", "harness"]
TIMEOUT_S = 120
STRESS = '''"""A tiny stress for tests."""
from harness.shapes import ScenarioShape

STRESS = {"start_users": 2, "step_users": 2, "step_duration": 2, "max_users": 6}
SLAS = [%r]


class TinyStress(ScenarioShape):
    """Two more users every 2 s, up to 6."""
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HARNESS_HOME": str(tmp_path / "home"),
        "HARNESS_THINK_TIME": "0.02",
        "HARNESS_REDIS_URL": "",
        "HARNESS_SLA": "",
        # The reference API's SLAs are the subject of one test only (which turns them back on).
        "HARNESS_NO_DEFAULT_SLAS": "1",
    }


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return path


@pytest.fixture
def api(reference_db: Path, tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "api.db"
    shutil.copyfile(reference_db, db)
    with running_api(ApiSettings(db=str(db), now=ANCHOR)) as base:
        yield base


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, "run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _only_run(runs: Path) -> Path:
    [run_dir] = list(runs.iterdir())
    return run_dir


def test_without_a_target_it_starts_the_reference_api_and_stops_it(
    tiny: Path, env: dict[str, str], tmp_path: Path, reference_db: Path, redis_url: str
) -> None:
    dataset = tmp_path / "d.db"
    shutil.copyfile(reference_db, dataset)
    env.pop("HARNESS_NO_DEFAULT_SLAS")
    env["HARNESS_REDIS_URL"] = redis_url
    before = hashlib.sha256(dataset.read_bytes()).hexdigest()
    done = _run(
        [
            str(tiny),
            "--dataset",
            str(dataset),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--locustfile",
            str(Path.cwd() / "locustfiles" / "api.py"),
        ],
        env,
        Path.cwd(),
    )
    # Which SLAs apply is the point here; a busy CI machine may miss the health mean.
    assert done.returncode in (0, EXIT_SLA_FAILED), done.stdout[-3000:] + done.stderr[-2000:]
    # ApiUser writes; the run served a private copy, so the dataset is as it was.
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == before
    run_dir = _only_run(tmp_path / "runs")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["backend"].startswith("reference API on sqlite")
    assert run["target"].startswith("http://127.0.0.1:")
    assert [s["name"] for s in run["stages"]] == ["warm", "busy"]
    assert (run_dir / "locust" / "stats_stats.csv").exists()
    assert (run_dir / "locust" / "report.html").exists()
    assert (run_dir / "report.html").exists() and (run_dir / "summary.json").exists()
    assert f"report: {run_dir / 'report.html'}" in done.stdout
    assert (run_dir / "api.log").exists()
    # The API logs statements over 100 ms there (none, usually, on this small dataset).
    assert (run_dir / "slow_queries.jsonl").is_file()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    # The reference API's SLAs apply when none are given: every endpoint p95, health mean.
    slas = {o["sla"] for o in verdict["outcomes"]}
    assert slas == {"*:p95<500ms", "GET /health:mean<10ms"}
    assert "verdict:" in done.stdout
    assert "***" not in run["target"] or ":***@" in run["target"]


def test_ctrl_c_ends_cleanly_with_a_partial_verdict(
    api: str, tiny: Path, env: dict[str, str], tmp_path: Path
) -> None:
    slow = tmp_path / "slow.py"
    slow.write_text(TINY.replace("2.5", "30"))
    proc = subprocess.Popen(
        [*HARNESS, "run", str(slow), "--target", api, "--runs-dir", str(tmp_path / "runs")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == EXIT_PARTIAL, out[-3000:]
    run_dir = _only_run(tmp_path / "runs")
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["partial"] is True
    assert verdict["samples"] > 20
    assert "partial run" in out


def test_an_unreachable_target_fails_before_any_load(
    tiny: Path, env: dict[str, str], tmp_path: Path
) -> None:
    done = _run(
        [str(tiny), "--target", "http://127.0.0.1:1", "--runs-dir", str(tmp_path / "runs")],
        env,
        Path.cwd(),
    )
    assert done.returncode == ConfigError.exit_code
    assert "target http://127.0.0.1:1 is unreachable" in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--sla", "p95<fast"], "cannot read the value 'fast'"),
        (["--sla", "latency<5ms"], "unknown metric 'latency'"),
    ],
)
def test_a_bad_sla_says_which_part(
    tiny: Path, env: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    done = _run([str(tiny), "--target", "http://127.0.0.1:1", *args], env, tmp_path)
    assert done.returncode == ConfigError.exit_code
    assert says in done.stderr


def test_a_scenario_typo_names_the_file_and_stage(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(TINY.replace('"users": 6', '"usres": 6'))
    done = _run([str(bad), "--target", "http://127.0.0.1:1"], env, tmp_path)
    assert done.returncode == ConfigError.exit_code
    assert str(bad) in done.stderr
    assert "stage 2 ('busy'): unknown key 'usres'; valid keys:" in done.stderr


def test_an_unknown_scenario_lists_the_known_ones(env: dict[str, str], tmp_path: Path) -> None:
    done = _run(["stedy"], env, Path.cwd())
    assert done.returncode == ConfigError.exit_code
    known = "known: constant_rate, endurance, ramping_rate, spike, spike_rate, steady, stress"
    assert known in done.stderr


def test_abort_on_sla_stops_a_hopeless_run_early(
    api: str, tiny: Path, env: dict[str, str], tmp_path: Path
) -> None:
    long = tmp_path / "long.py"
    long.write_text(TINY.replace("2.5", "20"))
    started = time.monotonic()
    done = _run(
        [
            str(long),
            "--target",
            api,
            "--runs-dir",
            str(tmp_path / "runs"),
            "--sla",
            "p50<0.001ms",
            "--abort-on-sla",
        ],
        env,
        Path.cwd(),
    )
    assert done.returncode == EXIT_SLA_FAILED, done.stdout[-3000:]
    assert time.monotonic() - started < 35  # the plan was 40 s of load
    verdict = json.loads((_only_run(tmp_path / "runs") / "verdict.json").read_text())
    assert verdict["stop_reason"].startswith("aborted: p50<0.001ms is broken beyond recovery")


def test_stress_stops_at_the_step_that_breaks_and_names_it(
    api: str, env: dict[str, str], tmp_path: Path
) -> None:
    breaking = tmp_path / "stress_break.py"
    breaking.write_text(STRESS % "p50<0.001ms")
    done = _run(
        [str(breaking), "--target", api, "--runs-dir", str(tmp_path / "a")], env, Path.cwd()
    )
    assert done.returncode == EXIT_SLA_FAILED, done.stdout[-3000:]
    verdict = json.loads((_only_run(tmp_path / "a") / "verdict.json").read_text())
    assert verdict["broken_step"] == "step-1" and verdict["broken_step_users"] == 2
    run = json.loads((_only_run(tmp_path / "a") / "run.json").read_text())
    assert [s["name"] for s in run["stages"]] == ["step-1"]

    holding = tmp_path / "stress_hold.py"
    holding.write_text(STRESS % "p95<10s")
    done = _run([str(holding), "--target", api, "--runs-dir", str(tmp_path / "b")], env, Path.cwd())
    assert done.returncode == 0, done.stdout[-3000:]
    run = json.loads((_only_run(tmp_path / "b") / "run.json").read_text())
    assert [s["name"] for s in run["stages"]] == ["step-1", "step-2", "step-3"]


def test_the_postgres_backend_serves_the_same_dataset_from_postgresql(
    tiny: Path, env: dict[str, str], tmp_path: Path, reference_db: Path, pg_url: str
) -> None:
    dataset = tmp_path / "d.db"
    shutil.copyfile(reference_db, dataset)
    env["HARNESS_PG_URL"] = pg_url
    done = _run(
        [
            str(tiny),
            "--backend",
            "postgres",
            "--dataset",
            str(dataset),
            "--sla",
            "errors<50%",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        env,
        Path.cwd(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = json.loads((_only_run(tmp_path / "runs") / "run.json").read_text())
    assert run["backend"] == f"reference API on postgres ({dataset})"
    password = pg_url.split(":")[2].split("@")[0]
    for name in ("run.json", "verdict.json", "api.log"):
        assert password not in (_only_run(tmp_path / "runs") / name).read_text()


def test_locusts_web_ui_still_works_with_the_harness_loaded(
    api: str, env: dict[str, str], tmp_path: Path
) -> None:
    import httpx

    from harness.target.server import free_port

    port = free_port()
    locustfile = Path.cwd() / "locustfiles" / "api.py"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile),
            "--host",
            api,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
            "--run-dir",
            str(tmp_path / "run"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "web UI did not come up"
            time.sleep(0.2)
        started = httpx.post(f"{base}/swarm", data={"user_count": 2, "spawn_rate": 2, "host": api})
        assert started.json()["success"]
        time.sleep(2.5)
        stats = httpx.get(f"{base}/stats/requests").json()
        assert stats["total_rps"] > 0 or any(s["num_requests"] for s in stats["stats"])
        assert httpx.post(f"{base}/stop").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
    verdict = json.loads((tmp_path / "run" / "verdict.json").read_text())
    assert verdict["partial"] is False  # pressing Stop in the UI ends a run normally


def test_a_database_target_never_shows_its_password(
    tiny: Path, env: dict[str, str], tmp_path: Path, reference_pg: str
) -> None:
    done = _run(
        [
            str(tiny),
            "--locustfile",
            str(Path.cwd() / "locustfiles" / "database.py"),
            "--target",
            reference_pg,
            "--runs-dir",
            str(tmp_path / "runs"),
            "--sla",
            "errors<50%",
            "PostgresUser",
        ],
        env,
        Path.cwd(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    password = reference_pg.split(":")[2].split("@")[0]
    run_dir = _only_run(tmp_path / "runs")
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix != ".arrows":
            assert password not in path.read_text(errors="replace"), path
    assert password not in done.stdout + done.stderr
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["samples"] > 20
