"""``harness pools`` from the command line: bad input and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["pools", *args, "--no-progress"])
    return result.exit_code, result.output


def test_pool_size_zero_is_refused_before_connecting() -> None:
    code, output = run_cli("--pool-sizes", "0,4", "--pg", "postgresql://x:y@127.0.0.1:1/x")
    assert code == 2 and "at least 1 connection" in output and "max_connections" in output


def test_pool_size_beyond_the_server_names_max_connections(
    pg_url: str, reference_db: Path, tmp_path: Path
) -> None:
    code, output = run_cli(
        "--pg", pg_url, "--dataset", str(reference_db), "--pool-sizes", "4,100000",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 2 and "max_connections is" in output and "at most" in output


def test_typo_in_driver() -> None:
    code, output = run_cli("--driver", "psycopg2")
    assert code == 2 and "choose psycopg, asyncpg or both" in output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_down_is_one_line_without_the_password(reference_db: Path) -> None:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{_closed_port()}/app"
    code, output = run_cli("--pg", url, "--dataset", str(reference_db))
    assert code == 4 and "connection refused" in output.lower()
    assert "s3cret-pw" not in output and len(output.strip().splitlines()) == 1


def test_wrong_password_is_never_echoed(pg_url: str, reference_db: Path) -> None:
    parts = urlsplit(pg_url)
    wrong = "not-the-Password-42"
    url = urlunsplit(
        parts._replace(netloc=f"{parts.username}:{wrong}@{parts.hostname}:{parts.port}")
    )
    code, output = run_cli("--pg", url, "--dataset", str(reference_db))
    assert code == 4 and "password authentication failed" in output
    assert wrong not in output and (parts.password or "") not in output


def test_ctrl_c_keeps_the_cells_measured_and_writes_a_partial_report(
    pg_url: str, reference_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "harness.cli", "pools", "--pg", pg_url,
        "--dataset", str(reference_db), "--driver", "psycopg", "--pool-sizes", "1,2,4,8",
        "--concurrency", "10", "--warmup", "0.2", "--duration", "1", "--no-progress",
        "--out", str(out),
    ]  # fmt: skip
    log = tmp_path / "output.txt"
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=sink, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no cell was measured"
            report = out / "pools.json"
            if report.exists() and json.loads(report.read_text())["cells"]:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 11, log.read_text()
    data = json.loads((out / "pools.json").read_text())
    assert data["interrupted"] and not data["complete"]
    assert 1 <= len(data["cells"]) < 4
    for c in data["cells"]:
        assert (out / c["samples_file"]).is_file()
    assert "Interrupted" in (out / "pools.md").read_text()
    assert "Interrupted" in log.read_text()


def test_api_sweep_refuses_a_stress_scenario() -> None:
    code, output = run_cli("--api", "--scenario", "stress")
    assert code == 2 and "stress scenario" in output and "use steady" in output


def test_api_sweep_names_an_unknown_scenario() -> None:
    code, output = run_cli("--api", "--scenario", "stedy")
    assert code == 2 and "stedy" in output
