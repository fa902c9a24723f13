"""Fixtures shared by the tests of harness's load runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.distributed_run import DistributedRun, run_distributed


@pytest.fixture(scope="session")
def distributed_run(
    reference_db: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> DistributedRun:
    """A master, two workers (one killed mid-run) and Prometheus on loopback, run once."""
    return run_distributed(reference_db, redis_url, tmp_path_factory.mktemp("distributed"))
