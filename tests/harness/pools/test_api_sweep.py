"""``harness pools --api``: the reference API's own pool under a short Locust load."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis.load import load_run
from harness.pools import PoolsOptions, run_pools


@pytest.mark.slow
def test_api_sweep_measures_each_pool_size_with_a_real_run(
    pg_url: str, redis_url: str, reference_db: Path, tmp_path: Path
) -> None:
    result = run_pools(
        PoolsOptions(
            api=True,
            pg=pg_url,
            redis=redis_url,
            dataset=reference_db,
            pool_sizes=(1, 4),
            concurrencies=(10,),
            duration_s=8.0,
            out_dir=tmp_path / "run",
            progress=False,
        )
    )
    cells = result.data["cells"]
    assert [c["pool_size"] for c in cells] == [1, 4]
    for cell in cells:
        run = load_run(result.run_dir / cell["run_dir"])
        assert cell["iterations"] > 0 and cell["throughput"] > 0
        # The cell's figures come from that run's exact samples, ramp left out.
        assert cell["iterations"] < len(run.samples)
        assert run.meta["target"].startswith("http://127.0.0.1:")
    assert result.analysis.little == []  # Locust users think: Little's law is not applied
    assert [k.driver for k in result.analysis.knees] == ["api"]
    assert "reference API's SQLAlchemy pool" in (result.run_dir / "pools.md").read_text()
