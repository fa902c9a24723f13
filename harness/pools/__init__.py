"""Connection-pool sizing experiments: ``harness pools`` (see :mod:`harness.pools.experiment`)."""

from harness.pools.experiment import PoolsOptions, PoolsResult, run_pools

__all__ = ["PoolsOptions", "PoolsResult", "run_pools"]
