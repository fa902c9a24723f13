"""The sample files: exact floats, readable after a crash, refused from a newer harness."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from harness.recorder import SCHEMA, SampleWriter, file_name, read_samples


def _rows(n: int, start: float = 1_700_000_000.0) -> list[tuple[object, ...]]:
    return [
        (
            start + i,
            None,
            "/entities/[id]",
            "GET",
            1.0 + i / 7.0,
            i % 10 != 0,
            200 if i % 10 else 500,
            512,
            "spike",
            20,
            "local",
            None if i % 10 else "HTTPError: 500",
        )
        for i in range(n)
    ]


def test_round_trip_keeps_every_value_exactly(tmp_path: Path) -> None:
    writer = SampleWriter(tmp_path / "samples" / file_name("local"))
    rows = _rows(1000)
    writer.write(rows[:600])
    writer.write(rows[600:])
    writer.close()
    table = read_samples(tmp_path).table
    assert table.num_rows == 1000
    assert table.column("latency_ms").to_pylist() == [r[4] for r in rows]
    assert table.schema.field("latency_ms").type == pa.float64()
    assert table.column("ok").to_pylist()[:2] == [False, True]


def test_a_crash_mid_batch_keeps_what_was_flushed(tmp_path: Path) -> None:
    writer = SampleWriter(tmp_path / "samples" / "worker-1.arrows")
    writer.write(_rows(300))
    writer.write(_rows(300))
    # A process killed mid-write leaves a partial batch and no end-of-stream marker.
    data = writer.path.read_bytes()
    writer.close()
    writer.path.write_bytes(data[:-100])
    result = read_samples(tmp_path)
    assert result.table.num_rows == 300
    assert "worker-1.arrows: truncated after 1 complete batches" in result.warnings[0]


def test_files_from_every_process_are_read(tmp_path: Path) -> None:
    for worker in ("host-a_1", "host-b_2"):
        w = SampleWriter(tmp_path / "samples" / file_name(worker))
        w.write(_rows(10))
        w.close()
    assert read_samples(tmp_path).table.num_rows == 20


def test_unsafe_worker_ids_become_safe_file_names() -> None:
    assert file_name("../../etc/passwd") == ".._.._etc_passwd.arrows"
    assert "/" not in file_name("a/b")


def test_a_newer_samples_version_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    newer = SCHEMA.with_metadata({"harness_samples_version": "99"})
    with (folder / "x.arrows").open("wb") as fh, pa.ipc.new_stream(fh, newer) as stream:
        stream.write_table(pa.Table.from_pylist([], schema=newer))
    with pytest.raises(ValueError, match="newer than this harness reads"):
        read_samples(tmp_path)


def test_an_empty_run_reads_as_no_samples(tmp_path: Path) -> None:
    result = read_samples(tmp_path)
    assert result.table.num_rows == 0 and result.files == []
