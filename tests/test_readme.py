"""The README's first lines are what a new user types: they must work as written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.rehearse.run import EXIT_NO_GO
from harness.rehearse.steps import STEPS
from harness.services import EmbeddedPostgres, EmbeddedRedis
from harness.target.server import free_port

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def _quick_start() -> list[str]:
    text = README.read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_opens_with_install_main_job_and_tests() -> None:
    install, main_job, tests = _quick_start()
    assert install == 'pip install -e ".[dev]"'
    assert main_job.startswith("harness ")
    assert tests == "pytest"
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci
    assert "\npytest\n" in ci


def test_readme_main_job_rehearses_the_move_with_a_verdict(tmp_path: Path) -> None:
    main_job = _quick_start()[1].split()
    assert main_job[:3] == ["harness", "rehearse", "--quick"]
    home = tmp_path / "home"
    env = {**os.environ, "HARNESS_HOME": str(home), "HARNESS_PG_URL": "", "HARNESS_SLA": ""}
    harness = Path(sys.executable).parent / "harness"
    folder = tmp_path / "rehearsal"
    # The README's command, shrunk in time and size and with the pool given, to stay short.
    command = [
        str(harness), *main_job[1:], "--time-scale", "0.02", "--artifacts", "3000",
        "--pool-size", "4", "--dir", str(folder), "--no-progress",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=600, check=False
        )
    finally:
        EmbeddedPostgres(home).stop()
    # It ran and judged: GO, or NO-GO (40) when a busy CI machine misses a default SLA.
    assert done.returncode in (0, EXIT_NO_GO), done.stdout[-3000:] + done.stderr[-3000:]
    assert "GO" in done.stdout
    data = json.loads((folder / "rehearsal.json").read_text())
    assert all(data["steps"][s]["status"] == "done" for s in STEPS)
    assert (folder / "rehearsal.html").is_file()
    # The embedded PostgreSQL it started for the rehearsal is stopped with it.
    assert EmbeddedPostgres(home).status() is None


def test_harness_serve_with_no_options_serves_the_reference_api(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HARNESS_HOME": str(tmp_path), "HARNESS_REDIS_URL": ""}
    harness = Path(sys.executable).parent / "harness"
    proc = subprocess.Popen(
        [str(harness), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("harness serve did not come up within 120 s")
            time.sleep(0.25)
        assert len(httpx.get(f"{base}/discoveries").json()) == 50
        assert httpx.get(f"{base}/cache/stats").json()["backend"] == "redis"
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        EmbeddedRedis(tmp_path).stop()
    assert proc.returncode == 0, output
    assert ":***@" in output  # the Redis URL is announced with its password masked
    assert list((tmp_path / "datasets").glob("reference-20000-*.db"))
