"""Exact per-request samples in the run directory: the contract between load and analysis.

Each Locust process's samples go to one file ``samples/<process>.arrows``, an Arrow IPC
*stream*: record batches appended one after another while the run goes on, each flushed to
the OS when written. A stream needs no footer, so a process killed mid-run leaves a file whose
complete batches are all readable; at most the batch being written is lost.
(Parquet, by contrast, is unreadable until its footer is written at close.)

Open-model runs also log every *scheduled iteration* (``iterations/<process>.arrows``, same
stream format, :data:`ITERATION_SCHEMA`): its intended start and stage, and whether it ran
(with how late it started), was dropped because every in-flight slot was busy, or was still
running when the run stopped. A dropped iteration is counted there, never silently skipped.

This module does not import Locust: analysis and ``harness run`` read samples with it too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

SAMPLES_DIR = "samples"
SUFFIX = ".arrows"
SCHEMA_VERSION = 1

# Column order of a sample row; ``Sample`` tuples follow it.
SCHEMA = pa.schema(
    [
        pa.field("start_time", pa.float64(), nullable=False),  # epoch seconds, request sent
        pa.field("intended_start", pa.float64()),  # epoch seconds, open-model schedule
        pa.field("name", pa.string(), nullable=False),
        pa.field("request_type", pa.string(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),  # never rounded
        pa.field("ok", pa.bool_(), nullable=False),
        pa.field("status", pa.int32()),  # HTTP status; null for database requests
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("users", pa.int32(), nullable=False),  # active users when it was sent
        pa.field("worker", pa.string(), nullable=False),
        pa.field("error", pa.string()),
    ],
    metadata={"harness_samples_version": str(SCHEMA_VERSION)},
)
COLUMNS = tuple(SCHEMA.names)

ITERATIONS_DIR = "iterations"
# What became of a scheduled iteration.
ITERATION_DONE = "done"  # started when a slot was free, and finished
ITERATION_DROPPED = "dropped"  # every in-flight slot was busy at its intended start
ITERATION_UNFINISHED = "unfinished"  # started, still running when the run stopped
ITERATION_SCHEMA = pa.schema(
    [
        pa.field("intended_start", pa.float64(), nullable=False),  # epoch s, from the schedule
        pa.field("stage", pa.string(), nullable=False),  # the schedule's stage at that time
        pa.field("outcome", pa.string(), nullable=False),  # done | dropped | unfinished
        pa.field("lag_ms", pa.float64()),  # actual start - intended start; null when dropped
        pa.field("duration_ms", pa.float64()),  # start to end of the iteration, when done
        pa.field("user_class", pa.string(), nullable=False),
        pa.field("worker", pa.string(), nullable=False),
    ],
    metadata={"harness_iterations_version": "1"},
)
Iteration = tuple[float, str, str, float | None, float | None, str, str]

Sample = tuple[
    float, float | None, str, str, float, bool, int | None, int, str, int, str, str | None
]


def file_name(process: str) -> str:
    """A safe file name for a process id (worker ids hold host names and hex)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", process) + SUFFIX


def to_batch(rows: Sequence[Sequence[Any]], schema: pa.Schema = SCHEMA) -> pa.RecordBatch:
    """Turn row tuples into one columnar record batch."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class SampleWriter:
    """Appends batches of samples (or iterations, with ``schema=ITERATION_SCHEMA``) to one
    stream file, flushing each batch to the OS."""

    def __init__(self, path: Path, schema: pa.Schema = SCHEMA) -> None:
        self.schema = schema
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rows = 0
        self._file: BinaryIO = path.open("ab" if path.exists() else "wb")
        if self._file.tell() > 0:
            # A process that restarts under the same id starts a fresh stream beside the old.
            self._file.close()
            n = 1
            while (alt := path.with_name(f"{path.stem}.{n}{SUFFIX}")).exists():
                n += 1
            self.path = alt
            self._file = alt.open("wb")
        self._stream = pa.ipc.new_stream(self._file, schema)
        self._file.flush()

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append ``rows`` as one batch and hand it to the OS."""
        if not rows:
            return
        self._stream.write_batch(to_batch(rows, self.schema))
        self._file.flush()
        self.rows += len(rows)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._stream.close()
        self._file.close()


@dataclass
class ReadResult:
    """Samples read from a run, and what could not be read."""

    table: pa.Table
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _batches(path: Path, warnings: list[str]) -> Iterator[pa.RecordBatch]:
    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path), "r"))
    except (pa.ArrowInvalid, OSError) as exc:
        warnings.append(f"{path.name}: unreadable ({exc}); no samples taken from it")
        return
    version = (reader.schema.metadata or {}).get(b"harness_samples_version", b"0")
    if int(version) > SCHEMA_VERSION:
        raise ValueError(
            f"{path}: samples version {int(version)} is newer than this harness reads "
            f"({SCHEMA_VERSION}); upgrade harness"
        )
    n = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            warnings.append(
                f"{path.name}: truncated after {n} complete batches ({exc}); "
                "samples after that point were lost"
            )
            return
        n += 1
        yield batch


def read_samples(run_dir: Path) -> ReadResult:
    """Every readable sample of a run directory, with a warning per damaged file."""
    folder = run_dir / SAMPLES_DIR
    files = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    warnings: list[str] = []
    batches: list[pa.RecordBatch] = []
    for path in files:
        batches.extend(_batches(path, warnings))
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    return ReadResult(table=table, files=files, warnings=warnings)


def read_iterations(run_dir: Path) -> ReadResult | None:
    """Every readable scheduled iteration of an open-model run; None for a closed-model run."""
    folder = run_dir / ITERATIONS_DIR
    if not folder.is_dir():
        return None
    files = sorted(folder.glob(f"*{SUFFIX}"))
    warnings: list[str] = []
    batches: list[pa.RecordBatch] = []
    for path in files:
        batches.extend(_batches(path, warnings))
    table = pa.Table.from_batches(batches, schema=ITERATION_SCHEMA)
    return ReadResult(table=table, files=files, warnings=warnings)
