"""Exact per-request samples in the run directory: the contract between load and analysis.

Each Locust process's samples go to one file ``samples/<process>.arrows``, an Arrow IPC
*stream*: record batches appended one after another while the run goes on, each flushed to
the OS when written. A stream needs no footer, so a process killed mid-run leaves a file whose
complete batches are all readable; at most the batch being written is lost.
(Parquet, by contrast, is unreadable until its footer is written at close.)

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

Sample = tuple[
    float, float | None, str, str, float, bool, int | None, int, str, int, str, str | None
]


def file_name(process: str) -> str:
    """A safe file name for a process id (worker ids hold host names and hex)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", process) + SUFFIX


def to_batch(rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """Turn row tuples into one columnar record batch."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, SCHEMA, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


class SampleWriter:
    """Appends batches of samples to one stream file, flushing each batch to the OS."""

    def __init__(self, path: Path) -> None:
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
        self._stream = pa.ipc.new_stream(self._file, SCHEMA)
        self._file.flush()

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append ``rows`` as one batch and hand it to the OS."""
        if not rows:
            return
        self._stream.write_batch(to_batch(rows))
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
