"""The Locust users, run as real ``locust`` subprocesses against real servers.

Locust monkey-patches its process with gevent, so nothing here imports it: each test runs
``python -m locust`` on the real locustfiles (plus ``probes.py`` where a test needs to see
single requests or a ticking greenlet), bounded by ``-t``, against loopback targets, and reads
Locust's CSV, the probe's JSON and the API's ``/cache/stats``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR

REPO = Path(__file__).resolve().parents[3]
API_LOCUSTFILE = REPO / "locustfiles" / "api.py"
DB_LOCUSTFILE = REPO / "locustfiles" / "database.py"
PROBES = Path(__file__).with_name("probes.py")

API_NAMES = {
    ("GET", "/discoveries"),
    ("GET", "/discoveries?since_days=7"),
    ("GET", "/discoveries?min_score=[score]"),
    ("GET", "/topics/trending"),
    ("GET", "/topics/[id]/timeline"),
    ("GET", "/entities/[id]"),
    ("GET", "/artifacts/[id]"),
    ("GET", "/artifacts/[id]/citations?direction=out"),
    ("GET", "/artifacts/[id]/citations?direction=in"),
    ("POST", "/artifacts"),
    ("POST", "/artifacts/batch"),
    ("GET", "/health"),
}
API_TASKS = (
    "artifact, citations_in, citations_out, create_artifact, create_batch, discoveries, "
    "entity_profile, health, topic_timeline, trending_topics"
)
QUERY_NAMES = {
    "top_discoveries",
    "topic_timeline",
    "citations_out",
    "citations_in",
    "recent_discoveries",
    "entity_profile",
}
# Settings a developer's shell may carry; each test states its own.
_USER_ENV = (
    "HARNESS_API_WEIGHTS",
    "HARNESS_DB_WEIGHTS",
    "HARNESS_THINK_TIME",
    "HARNESS_ZIPF_EXPONENT",
    "HARNESS_SEED",
    "HARNESS_PG_URL",
    "HARNESS_PG_POOL_SIZE",
    "HARNESS_SQLITE_PATH",
    "HARNESS_SQLITE_THREADS",
    "HARNESS_RUN_DIR",
)


@dataclass
class LocustRun:
    """What one ``locust`` subprocess left behind."""

    returncode: int
    seconds: float
    output: str
    stats: list[dict[str, str]]
    probe: dict[str, Any]

    def counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(type, name) -> (requests, failures), the Aggregated row left out."""
        return {
            (row["Type"], row["Name"]): (int(row["Request Count"]), int(row["Failure Count"]))
            for row in self.stats
            if row["Name"] != "Aggregated"
        }

    def requests(self, name: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.probe.get("requests", [])
        return [r for r in rows if name is None or r["name"] == name]


def run_locust(
    tmp_path: Path,
    *,
    files: Sequence[Path],
    host: str,
    classes: Sequence[str] = (),
    users: int = 5,
    run_time: str = "4s",
    env: dict[str, str] | None = None,
    tag: str = "run",
) -> LocustRun:
    """Run ``locust --headless`` to completion in ``tmp_path`` (its run directory lands there)."""
    out = tmp_path / tag
    out.mkdir()
    full_env = {k: v for k, v in os.environ.items() if k not in _USER_ENV}
    # These runs test the users under load; the reference API's SLAs are not their subject.
    full_env.update(
        {
            "HARNESS_PROBE_OUT": str(out / "probe.json"),
            "HARNESS_NO_DEFAULT_SLAS": "1",
            **(env or {}),
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ",".join(str(f) for f in files),
        *classes,
        "--host",
        host,
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        run_time,
        "--csv",
        str(out / "locust"),
        "--only-summary",
    ]
    started = time.monotonic()
    done = subprocess.run(
        cmd, cwd=out, env=full_env, capture_output=True, text=True, timeout=120, check=False
    )
    stats_file = out / "locust_stats.csv"
    stats: list[dict[str, str]] = []
    if stats_file.exists():
        with stats_file.open(newline="") as f:
            stats = list(csv.DictReader(f))
    probe_file = out / "probe.json"
    probe = json.loads(probe_file.read_text()) if probe_file.exists() else {}
    return LocustRun(
        done.returncode, time.monotonic() - started, done.stdout + done.stderr, stats, probe
    )


@pytest.fixture
def api_on_sqlite(writable_db: Path) -> Iterator[str]:
    with running_api(ApiSettings(db=str(writable_db), now=ANCHOR)) as base:
        yield base


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback test API)
        return json.load(response)


def _check_api_mix(run: LocustRun, base: str) -> None:
    counts = run.counts()
    assert set(counts) == API_NAMES, run.output[-3000:]
    assert all(n > 0 for n, _ in counts.values())
    assert {k: f for k, (_, f) in counts.items() if f} == {}, run.output[-3000:]
    cache = _get_json(f"{base}/cache/stats")["endpoints"]
    assert cache["discoveries"]["hits"] > 0
    # Skewed entity ids: most profile reads hit the cache even in a few seconds.
    assert cache["entity"]["hits"] > 0 and cache["entity"]["hit_ratio"] > 0.5, cache


def test_api_user_runs_the_whole_mix_on_sqlite(tmp_path: Path, api_on_sqlite: str) -> None:
    base = api_on_sqlite
    run = run_locust(
        tmp_path,
        files=[API_LOCUSTFILE, PROBES],
        classes=["ApiUser"],
        host=base,
        users=8,
        env={"HARNESS_THINK_TIME": "0", "HARNESS_SEED": "3"},
    )
    assert run.returncode == 0, run.output[-3000:]
    _check_api_mix(run, base)
    requests = run.requests()
    assert requests and {r["ms_type"] for r in requests} == {"float"}

    # Ids come from /meta's real ranges, with Zipf skew: the 5 hottest of the 150 entities
    # take ~40% of the reads under exponent 1 (3% if uniform).
    meta = _get_json(f"{base}/meta")["ids"]["entities"]
    ids = [int(urlsplit(r["url"]).path.rsplit("/", 1)[1]) for r in run.requests("/entities/[id]")]
    assert ids and all(meta["min_id"] <= i <= meta["max_id"] for i in ids)
    top5 = sum(n for _, n in Counter(ids).most_common(5)) / len(ids)
    assert top5 > 0.2, top5


def test_api_user_runs_the_whole_mix_on_postgres(tmp_path: Path, writable_pg: str) -> None:
    with running_api(ApiSettings(db=writable_pg, now=ANCHOR)) as base:
        run = run_locust(
            tmp_path,
            files=[API_LOCUSTFILE],
            host=base,
            users=8,
            env={"HARNESS_THINK_TIME": "0", "HARNESS_SEED": "4"},
        )
        assert run.returncode == 0, run.output[-3000:]
        _check_api_mix(run, base)


def test_weights_from_the_environment_replace_the_mix(tmp_path: Path, reference_db: Path) -> None:
    with running_api(ApiSettings(db=str(reference_db), now=ANCHOR)) as base:
        run = run_locust(
            tmp_path,
            files=[API_LOCUSTFILE],
            host=base,
            users=3,
            run_time="2s",
            env={"HARNESS_API_WEIGHTS": "health=1", "HARNESS_THINK_TIME": "0.01-0.02"},
        )
    assert run.returncode == 0, run.output[-3000:]
    counts = run.counts()
    assert set(counts) == {("GET", "/health")}
    assert counts[("GET", "/health")][0] > 10


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HARNESS_API_WEIGHTS": "health=1,bogus=2"},
            f"HARNESS_API_WEIGHTS: unknown task 'bogus'; valid task names: {API_TASKS}",
        ),
        ({"HARNESS_THINK_TIME": "fast"}, "HARNESS_THINK_TIME: 'fast' is not a number"),
    ],
)
def test_bad_settings_stop_locust_with_a_clear_error(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    run = run_locust(
        tmp_path, files=[API_LOCUSTFILE], host="http://127.0.0.1:9", run_time="2s", env=env
    )
    assert run.returncode != 0
    assert message in run.output


@pytest.mark.slow
def test_a_seeded_user_repeats_its_requests(tmp_path: Path, reference_db: Path) -> None:
    env = {"HARNESS_SEED": "5", "HARNESS_THINK_TIME": "0"}
    urls = []
    with running_api(ApiSettings(db=str(reference_db), now=ANCHOR)) as base:
        for tag in ("first", "second"):
            run = run_locust(
                tmp_path,
                files=[PROBES],
                classes=["ApiReader"],
                host=base,
                users=1,
                run_time="2s",
                env=env,
                tag=tag,
            )
            assert run.returncode == 0, run.output[-3000:]
            urls.append([urlsplit(r["url"]).path for r in run.requests()])
    n = min(len(u) for u in urls)
    assert n > 30
    assert urls[0][:n] == urls[1][:n]
    assert len(set(urls[0][:n])) > 10


def _overlap(requests: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    """Requests that both started and ended inside ``(start, end)``."""
    return [r for r in requests if r["start"] > start and r["start"] + r["ms"] / 1000 < end]


def _cooperation(run: LocustRun, blocker: str) -> list[dict[str, float]]:
    """Per completed ``blocker`` request: its length, the other requests that completed during
    it, and the ticker's longest gap during it (a blocked hub shows as one long gap)."""
    ticks: list[float] = run.probe["ticks"]
    others = [r for r in run.requests() if r["name"] != blocker]
    figures = []
    for slow in run.requests(blocker):
        start, end = slow["start"], slow["start"] + slow["ms"] / 1000
        inside = [start, *(t for t in ticks if start < t < end), end]
        figures.append(
            {
                "blocker_s": round(slow["ms"] / 1000, 3),
                "completed": len(_overlap(others, start, end)),
                "ticks": len(inside) - 2,
                "max_gap_s": round(max(b - a for a, b in pairwise(inside)), 3),
            }
        )
    return figures


def _assert_cooperative(figures: list[dict[str, float]]) -> None:
    """A call that blocked the process would be one long C call: nothing else would complete
    and the ticker would not tick while it ran (the inline control below: 0 and 0)."""
    for f in figures:
        assert f["completed"] > 20 and f["ticks"] > 20, figures
    # The ticker's longest gap is only reported: other stalls of the process fall inside some
    # windows (the recorder's first flush, ~0.5 s; more when the machine is busy).


def _check_queries(run: LocustRun, request_type: str) -> None:
    counts = run.counts()
    assert {name for (kind, name) in counts if kind == request_type} >= QUERY_NAMES
    failures = {k: f for k, (_, f) in counts.items() if f}
    assert failures == {}, run.output[-3000:]
    assert {r["ms_type"] for r in run.requests()} == {"float"}


def test_postgres_user_runs_every_query_and_never_blocks_the_others(
    tmp_path: Path, reference_pg: str
) -> None:
    run = run_locust(
        tmp_path,
        files=[DB_LOCUSTFILE, PROBES],
        classes=["PostgresUser", "PgSleeper"],
        host=reference_pg,
        users=4,
        env={"HARNESS_SEED": "1"},
    )
    assert run.returncode == 0, run.output[-3000:]
    _check_queries(run, "PG")
    figures = _cooperation(run, "pg_sleep")
    print("PostgresUser during SELECT pg_sleep(1):", figures)
    assert len(figures) >= 2
    _assert_cooperative(figures)


def test_sqlite_user_runs_every_query_and_never_blocks_the_others(
    tmp_path: Path, reference_db: Path
) -> None:
    run = run_locust(
        tmp_path,
        files=[DB_LOCUSTFILE, PROBES],
        classes=["SqliteUser", "SqliteSlow"],
        host=f"sqlite:///{reference_db}",
        users=4,
        env={"HARNESS_SEED": "1"},
    )
    assert run.returncode == 0, run.output[-3000:]
    _check_queries(run, "SQLITE")
    figures = _cooperation(run, "slow_cte")
    print("SqliteUser during a slow recursive CTE:", figures)
    assert figures and all(f["blocker_s"] > 0.3 for f in figures)
    _assert_cooperative(figures)


def test_a_sqlite_call_in_the_greenlet_would_block_everyone(
    tmp_path: Path, reference_db: Path
) -> None:
    """Control for the test above: the same query called inline stalls the ticker for its
    whole length, so the ticker does see blocking when there is some."""
    run = run_locust(
        tmp_path,
        files=[PROBES],
        classes=["InlineSqliteSlow"],
        host="http://127.0.0.1:9",
        users=1,
        run_time="3s",
        env={"HARNESS_SQLITE_PATH": str(reference_db)},
    )
    assert run.returncode == 0, run.output[-3000:]
    figures = _cooperation(run, "inline_slow_cte")
    print("inline sqlite3 call:", figures)
    assert figures
    for f in figures:
        assert f["ticks"] == 0 and f["max_gap_s"] > 0.8 * f["blocker_s"], figures


@pytest.mark.parametrize(
    ("user", "target", "message"),
    [
        ("SqliteUser", "missing", "does not exist; give SqliteUser a dataset file"),
        ("PostgresUser", "unknown-db", "cannot query PostgreSQL at postgresql://"),
        ("PostgresUser", "sqlite", "PostgresUser needs a postgresql:// URL as --host"),
        ("ApiUser", "no-api", "cannot read id ranges from http://127.0.0.1:9/meta"),
    ],
)
def test_a_user_that_cannot_start_stops_the_run(
    tmp_path: Path, pg_url: str, user: str, target: str, message: str
) -> None:
    host = {
        "missing": str(tmp_path / "missing.db"),
        "unknown-db": urlunsplit(urlsplit(pg_url)._replace(path="/harness_no_such_database")),
        "sqlite": "sqlite:///x.db",
        "no-api": "http://127.0.0.1:9",
    }[target]
    run = run_locust(
        tmp_path,
        files=[API_LOCUSTFILE if user == "ApiUser" else DB_LOCUSTFILE],
        classes=[user],
        host=host,
        users=3,
        run_time="60s",
    )
    tail = f"after {run.seconds:.1f} s, exit {run.returncode}:\n{run.output[-3000:]}"
    assert run.returncode != 0, tail
    assert message in run.output, tail
    assert run.output.count(message) == 1, f"one line, not a traceback per user; {tail}"
    password = urlsplit(pg_url).password
    if password:
        assert password not in run.output
    # Stopped at once instead of running out its minute.
    assert run.seconds < 30, tail
