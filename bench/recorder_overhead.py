"""The recorder's cost: Locust's requests per second with ``harness.locust_hooks`` recording
every sample, against the same locustfile with ``--no-record``.

What it measures, against what, and the target:

* **Requests per second** of one Locust process running a trivial ``FastHttpUser``
  (``wait_time = constant(0)``, ``GET /``, importing ``harness.locust_hooks``) against a fast
  loopback target, with the recorder ON (the default: every request a sample in
  ``<run-dir>/samples``) and OFF (``--no-record``). Same users, same duration, same target;
  rounds alternate which mode goes first (``--rounds``, default 3) and the mean of each mode
  is compared. **Target: overhead = 1 - on/off at most 5%.** Shown for the whole run
  (Locust's own count / time, from ``--json-file``) and for its steady part (``--warmup`` s
  after the start to 1 s before the end, from a meter in the locustfile that notes the
  request count and the process's CPU time together twice a second).
* The generator's **CPU microseconds per request** in the steady part, in both modes: the
  recorder's cost however much CPU the machine left to Locust, so the steadier figure on a
  shared machine (its overhead is ``1 - off/on``, the rate lost at equal CPU).
* **Exactness**: for every ON run, the recorded sample count must equal Locust's own request
  count.

The target is not the bottleneck, and the output shows it: a raw ``asyncio.Protocol`` HTTP
responder in its own process (no framework, a prebuilt 200 answer), whose CPU use is printed
beside Locust's. Locust runs as a subprocess (``python -m locust --headless -t``), so this
process never imports it; everything listens on 127.0.0.1 only.

This module also holds what the three Locust benchmarks share (the loopback responder and the
Locust subprocess runner); ``generator_throughput.py`` and ``percentile_accuracy.py`` import it.

    python bench/recorder_overhead.py [--users 20] [--duration 20] [--rounds 3] [--warmup 3]
                                      [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import multiprocessing
import os
import queue
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from rich.console import Console
from rich.table import Table

from bench._common import fmt_int, positive_int, verdict, write_json
from harness.recorder import read_samples

HOST = "127.0.0.1"
OVERHEAD_TARGET = 0.05

# -- a fast loopback HTTP responder -------------------------------------------------------------

#: What a handler returns: seconds to wait before answering, and the answer (raw HTTP bytes, or
#: a function building them when the answer is sent).
Reply = tuple[float, bytes | Callable[[], bytes]]

REASONS = {200: "OK", 201: "Created", 404: "Not Found"}


def http_response(status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A complete HTTP/1.1 keep-alive response."""
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}", f"Content-Length: {len(body)}"]
    head += ["Content-Type: application/json", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class App:
    """A loopback target: answers each parsed request. Subclasses override ``handle``."""

    answer = http_response(200, b'{"ok":true}')

    def handle(self, method: bytes, target: bytes, headers: Mapping[bytes, bytes]) -> Reply:
        return 0.0, self.answer

    def close(self) -> None:
        """Called once when the server process is told to stop (SIGTERM)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse requests (with bodies), answer them in order."""

    def __init__(self, app: App, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiting = False  # a delayed answer is pending: later requests wait their turn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.waiting:
            self._answer_ready()

    def _answer_ready(self) -> None:
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            method, target, _ = lines[0].split(b" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            total = end + 4 + int(headers.get(b"content-length", b"0"))
            if len(self.buffer) < total:
                return  # the body is still coming
            del self.buffer[:total]
            delay, answer = self.app.handle(method, target, headers)
            if delay > 0:
                self.waiting = True
                self.loop.call_later(delay, self._send_later, answer)
                return
            self.transport.write(answer if isinstance(answer, bytes) else answer())

    def _send_later(self, answer: bytes | Callable[[], bytes]) -> None:
        self.waiting = False
        if self.transport is not None:
            self.transport.write(answer if isinstance(answer, bytes) else answer())
            self._answer_ready()


def _serve(factory: Callable[[], App], port: int, ready: Any) -> None:
    """Server process: listen (SO_REUSEPORT, so several processes share the port) until
    SIGTERM, then close the app."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops us

    async def main() -> None:
        loop = asyncio.get_running_loop()
        app = factory()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await loop.create_server(
            lambda: _Connection(app, loop), HOST, port, reuse_port=True, backlog=1024
        )
        ready.put(os.getpid())
        try:
            await stop.wait()
        finally:
            server.close()
            app.close()

    asyncio.run(main())


@dataclass
class Target:
    """A running loopback target: its URL and the server processes."""

    url: str
    processes: list[psutil.Process]

    def cpu_seconds(self) -> float:
        return sum(_cpu(p) for p in self.processes)


def _cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return float(times.user + times.system)
    return 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def loopback_target(factory: Callable[[], App], processes: int = 1) -> Iterator[Target]:
    """Serve ``factory()`` apps on 127.0.0.1 in ``processes`` separate processes (sharing one
    port); stop them (SIGTERM, so apps can write their logs) on exit."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(target=_serve, args=(factory, port, ready), daemon=True)
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        pids: list[int] = []
        deadline = time.monotonic() + 60
        while len(pids) < processes:
            if any(p.exitcode is not None for p in procs) or time.monotonic() > deadline:
                sys.exit("the loopback target did not start")
            with contextlib.suppress(queue.Empty):
                pids.append(ready.get(timeout=0.2))
        yield Target(f"http://{HOST}:{port}", [psutil.Process(pid) for pid in pids])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=15)
            if p.is_alive():
                p.kill()
                p.join()


# -- Locust as a subprocess ---------------------------------------------------------------------


@dataclass
class LocustRun:
    """One headless Locust run: its final statistics and what it cost.

    Counts and rates come from ``--json-file`` (written at shutdown, final); the ``--csv``
    ``_stats.csv`` is rewritten once a second and its last write can miss the requests of
    the run's last fraction of a second, so only its percentile columns are used.
    """

    label: str
    exit_code: int
    wall_s: float
    generator_cpu_s: float  # the Locust process and its workers, whole life (getrusage)
    target_cpu_s: float  # the target's processes over the same wall time
    machine_cpu_s: float  # every process on the machine over the same wall time
    requests: int
    failures: int
    rps: float  # requests / (last request - stats start), as Locust's "Requests/s"
    csv_row: dict[str, str]  # the Aggregated row of _stats.csv (percentiles)
    run_dir: Path
    log: Path
    window: dict[str, float] = field(default_factory=dict)
    recorded: int | None = None  # samples the recorder wrote (when counted)

    @property
    def others_cpu_s(self) -> float:
        """CPU the rest of the machine used meanwhile (a shared machine's noise)."""
        return max(0.0, self.machine_cpu_s - self.generator_cpu_s - self.target_cpu_s)

    def samples(self) -> int:
        return int(read_samples(self.run_dir).table.num_rows)

    def figures(self) -> dict[str, Any]:
        """The run as plain JSON values."""
        return {k: v for k, v in asdict(self).items() if k not in ("run_dir", "log")}


def write_locustfile(folder: Path, body: str, name: str = "bench_locustfile.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every process, ours and others')."""
    t = psutil.cpu_times()
    fields = ("user", "nice", "system", "irq", "softirq", "steal")
    return float(sum(getattr(t, f, 0.0) for f in fields))


def _tree_cpu(root: psutil.Process) -> tuple[float, float]:
    """CPU seconds of a live process tree: (root alone, its descendants)."""
    with contextlib.suppress(psutil.Error):
        children = root.children(recursive=True)
        return _cpu(root), sum(_cpu(c) for c in children)
    return 0.0, 0.0


def _start_epoch(run_dir: Path, deadline: float) -> float | None:
    """When the run started (``run.json``'s start_epoch, written by the recorder's hooks)."""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            value = json.loads((run_dir / "run.json").read_text()).get("start_epoch")
            if value is not None:
                return float(value)
        time.sleep(0.05)
    return None


def run_locust(
    label: str,
    locustfile: Path,
    target: Target,
    workdir: Path,
    *,
    users: int,
    duration: int,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    window: tuple[float, float] | None = None,
) -> LocustRun:
    """Run Locust headless for ``duration`` seconds against ``target`` and wait for it.

    With ``window=(warmup, tail)``, also snapshot the CPU of the Locust process tree and of
    the target at ``start + warmup`` and ``start + duration - tail`` (steady state, without
    start-up, ramp and shutdown): ``LocustRun.window`` then holds t0/t1 (epoch seconds),
    master/workers/target CPU seconds in between.
    """
    folder = workdir / label
    folder.mkdir(parents=True)
    run_dir, log = folder / "run", folder / "locust.log"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--host",
        target.url,
        "-u",
        str(users),
        "-r",
        str(max(users, 100)),
        "-t",
        f"{duration}s",
        "--csv",
        str(folder / "locust"),
        "--json-file",
        str(folder / "locust"),
        "--run-dir",
        str(run_dir),
        "--only-summary",
        "--loglevel",
        "WARNING",
        *extra,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    target_before, machine_before = target.cpu_seconds(), machine_busy()
    started = time.perf_counter()
    snapshots: dict[str, float] = {}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            if window is not None:
                snapshots = _window(proc, run_dir, target, duration, window)
            exit_code = proc.wait(timeout=duration + 120)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    entries = _final_entries(folder / "locust.json")
    csv_row = _aggregated(folder / "locust_stats.csv")
    if entries is None or csv_row is None:
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"Locust run {label!r} wrote no statistics (exit {exit_code}):\n{tail}")
    requests = sum(int(e["num_requests"]) for e in entries)
    began = min((float(e["start_time"]) for e in entries), default=0.0)
    ended = max((float(e["last_request_timestamp"] or 0) for e in entries), default=0.0)
    return LocustRun(
        label=label,
        exit_code=exit_code,
        wall_s=wall,
        generator_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        target_cpu_s=target.cpu_seconds() - target_before,
        machine_cpu_s=machine_busy() - machine_before,
        requests=requests,
        failures=sum(int(e["num_failures"]) for e in entries),
        rps=requests / (ended - began) if ended > began else 0.0,
        csv_row=csv_row,
        run_dir=run_dir,
        log=log,
        window=snapshots,
    )


def _final_entries(path: Path) -> list[dict[str, Any]] | None:
    """Locust's per-endpoint entries from ``--json-file`` (written at shutdown)."""
    with contextlib.suppress(OSError, ValueError):
        entries = json.loads(path.read_text())
        if isinstance(entries, list):
            return entries
    return None


def _window(
    proc: subprocess.Popen[bytes],
    run_dir: Path,
    target: Target,
    duration: int,
    window: tuple[float, float],
) -> dict[str, float]:
    start = _start_epoch(run_dir, time.monotonic() + 60)
    if start is None:
        return {}
    root = psutil.Process(proc.pid)
    marks: list[tuple[float, float, float, float, float]] = []
    for at in (start + window[0], start + duration - window[1]):
        time.sleep(max(0.0, at - time.time()))
        master, workers = _tree_cpu(root)
        marks.append((time.time(), master, workers, target.cpu_seconds(), machine_busy()))
    (t0, m0, w0, s0, b0), (t1, m1, w1, s1, b1) = marks
    return {
        "t0": t0,
        "t1": t1,
        "master_cpu_s": m1 - m0,
        "workers_cpu_s": w1 - w0,
        "target_cpu_s": s1 - s0,
        "machine_cpu_s": b1 - b0,
    }


def _aggregated(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                return dict(row)
    return None


# -- the benchmark ------------------------------------------------------------------------------

LOCUSTFILE = """
    import os
    import time

    import gevent
    import harness.locust_hooks  # noqa: F401  (the recorder under test)
    from locust import FastHttpUser, constant, events, task

    _count = 0


    @events.request.add_listener
    def _counted(**_kw):
        global _count
        _count += 1


    def _meter(path):
        # Requests so far and this process's CPU time, at the same instant, twice a second.
        with open(path, "w", buffering=1) as out:
            while True:
                out.write(f"{time.time()!r},{_count},{time.process_time()!r}\\n")
                gevent.sleep(0.5)


    @events.test_start.add_listener
    def _start(**_kw):
        gevent.spawn(_meter, os.environ["BENCH_METER"])


    class Hammer(FastHttpUser):
        wait_time = constant(0)

        @task
        def root(self) -> None:
            self.client.get("/")
"""

MODES = {"on": (), "off": ("--no-record",)}


@dataclass
class Steady:
    """The steady part of a run, from the locustfile's own meter: rate and CPU per request."""

    seconds: float
    requests: int
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_s / max(self.requests, 1)


def steady(meter: Path, warmup: float, tail: float) -> Steady:
    """From ``warmup`` s after the first reading to ``tail`` s before the last."""
    marks = [tuple(float(x) for x in line.split(",")) for line in meter.read_text().splitlines()]
    inside = [m for m in marks if marks[0][0] + warmup <= m[0] <= marks[-1][0] - tail]
    if len(inside) < 2:
        sys.exit(f"{meter}: run too short for a steady window")
    (t0, n0, c0), (t1, n1, c1) = inside[0], inside[-1]
    return Steady(seconds=t1 - t0, requests=int(n1 - n0), cpu_s=c1 - c0)


def measure(
    users: int, duration: int, rounds: int, warmup: float, console: Console
) -> list[tuple[str, LocustRun, Steady]]:
    runs: list[tuple[str, LocustRun, Steady]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-recorder-") as tmp,
        loopback_target(App) as target,
    ):
        workdir = Path(tmp)
        locustfile = write_locustfile(workdir, LOCUSTFILE)
        for r in range(rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for mode in order:
                console.log(f"round {r + 1}/{rounds}: recorder {mode}, {users} users, {duration} s")
                meter = workdir / f"meter-{mode}-{r + 1}.csv"
                run = run_locust(
                    f"{mode}-{r + 1}",
                    locustfile,
                    target,
                    workdir,
                    users=users,
                    duration=duration,
                    extra=MODES[mode],
                    env={"BENCH_METER": str(meter)},
                )
                if mode == "on":
                    run.recorded = run.samples()
                runs.append((mode, run, steady(meter, warmup, 1.0)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=positive_int, default=20)
    parser.add_argument("--duration", type=positive_int, default=20, help="seconds per run")
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds out of the steady part")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.duration < args.warmup + 3:
        parser.error("--duration must leave at least 3 s after --warmup")
    console = Console(width=140)

    runs = measure(args.users, args.duration, args.rounds, args.warmup, console)

    table = Table(
        "run",
        "requests",
        "failures",
        "samples",
        "rps (run)",
        "rps (steady)",
        "CPU us/req (steady)",
        "Locust cores",
        "target cores",
        "others' cores",
        title=(
            f"recorder overhead: {args.users} users, constant(0), {args.duration} s per run "
            f"(steady: {args.warmup:g} s .. end-1 s), raw asyncio target"
        ),
    )
    for _, run, st in runs:
        if run.recorded is None:
            samples = "-"
        elif run.recorded == run.requests:
            samples = f"{run.recorded:,}"
        else:
            samples = f"[bold red]{run.recorded:,}[/bold red]"
        table.add_row(
            run.label,
            fmt_int(run.requests),
            fmt_int(run.failures),
            samples,
            f"{run.rps:,.0f}",
            f"{st.rps:,.0f}",
            f"{st.cpu_us_per_request:.1f}",
            f"{run.generator_cpu_s / run.wall_s:.2f}",
            f"{run.target_cpu_s / run.wall_s:.2f}",
            f"{run.others_cpu_s / run.wall_s:.2f}",
        )
    console.print(table)

    exact = all(r.recorded == r.requests for _, r, _ in runs if r.recorded is not None)

    def mean(mode: str, figure: Callable[[LocustRun, Steady], float]) -> float:
        return statistics.fmean(figure(r, st) for m, r, st in runs if m == mode)

    def paired(figure: Callable[[LocustRun, Steady], float]) -> list[float]:
        on = [figure(r, st) for m, r, st in runs if m == "on"]
        off = [figure(r, st) for m, r, st in runs if m == "off"]
        return [a / b for a, b in zip(on, off, strict=True)]

    rps = {m: mean(m, lambda r, _st: r.rps) for m in MODES}
    steady_rps = {m: mean(m, lambda _r, st: st.rps) for m in MODES}
    cpu = {m: mean(m, lambda _r, st: st.cpu_us_per_request) for m in MODES}
    overhead = 1 - rps["on"] / rps["off"]
    steady_overhead = 1 - steady_rps["on"] / steady_rps["off"]
    cpu_overhead = 1 - cpu["off"] / cpu["on"]  # the share of on's CPU the recorder takes

    straddles: list[bool] = []

    def rounds_text(ratios: list[float], invert: bool = False) -> str:
        values = [1 - 1 / x if invert else 1 - x for x in ratios]
        straddles.append(min(values) <= OVERHEAD_TARGET < max(values))
        return ", ".join(f"{v:+.1%}" for v in values)

    summary = Table(
        "figure", "recorder on", "recorder off", "overhead (rounds)", "target", "verdict"
    )
    summary.add_row(
        "requests/s, whole run (Locust's figure)",
        f"{rps['on']:,.0f}",
        f"{rps['off']:,.0f}",
        f"{overhead:+.1%} ({rounds_text(paired(lambda r, _st: r.rps))})",
        f"<= {OVERHEAD_TARGET:.0%}",
        verdict(overhead <= OVERHEAD_TARGET),
    )
    summary.add_row(
        "requests/s, steady part",
        f"{steady_rps['on']:,.0f}",
        f"{steady_rps['off']:,.0f}",
        f"{steady_overhead:+.1%} ({rounds_text(paired(lambda _r, st: st.rps))})",
        f"<= {OVERHEAD_TARGET:.0%}",
        verdict(steady_overhead <= OVERHEAD_TARGET),
    )
    summary.add_row(
        "Locust CPU us per request, steady part",
        f"{cpu['on']:.1f}",
        f"{cpu['off']:.1f}",
        f"{cpu_overhead:+.1%} ({rounds_text(paired(lambda _r, st: st.cpu_us_per_request), True)})",
        f"<= {OVERHEAD_TARGET:.0%}",
        verdict(cpu_overhead <= OVERHEAD_TARGET),
    )
    summary.add_row(
        "samples recorded = Locust requests",
        "every ON run" if exact else "[red]mismatch",
        "-",
        "exact" if exact else "samples lost or duplicated",
        "equal",
        verdict(exact),
    )
    console.print(summary)
    if any(straddles):
        console.print(
            f"[yellow]Some figures' rounds fall on both sides of the {OVERHEAD_TARGET:.0%} "
            "target: the noise between runs on this machine is as large as the effect; more "
            "--rounds narrow it.[/yellow]"
        )
    target_cores = max(r.target_cpu_s / r.wall_s for _, r, _ in runs)
    locust_cores = statistics.fmean(r.generator_cpu_s / r.wall_s for _, r, _ in runs)
    others = statistics.fmean(r.others_cpu_s / r.wall_s for _, r, _ in runs)
    console.print(
        f"The target used at most {target_cores:.2f} of a core while Locust used "
        f"{locust_cores:.2f}: the generator is the bottleneck, not the target. "
        f"Other processes used {others:.2f} cores meanwhile; CPU per request (the "
        "recorder's cost whatever CPU was left to Locust) is the steadier figure on a "
        "shared machine, requests/s the one the target names."
    )
    write_json(
        args.json,
        {
            "users": args.users,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "target": OVERHEAD_TARGET,
            "rps": rps,
            "overhead": overhead,
            "steady_rps": steady_rps,
            "steady_overhead": steady_overhead,
            "cpu_us_per_request": cpu,
            "cpu_overhead": cpu_overhead,
            "samples_exact": exact,
            "runs": [{"mode": m, **r.figures(), "steady": asdict(st)} for m, r, st in runs],
        },
    )


if __name__ == "__main__":
    main()
