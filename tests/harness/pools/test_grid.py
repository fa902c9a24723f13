"""The grid: defaults capped by the server, bad sizes refused with max_connections named."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.pools.grid import ServerLimits, build_grid, parse_drivers, parse_sizes

ROOMY = ServerLimits(max_connections=100, reserved=3, in_use=2)


def test_default_grid_includes_the_rule_of_thumb() -> None:
    grid = build_grid(ROOMY, cores=2)
    assert grid.pool_sizes == (1, 2, 4, 8, 9, 16, 32, 64)
    assert grid.concurrencies == (10, 50, 100, 200)
    assert grid.cells == 2 * 8 * 4 and grid.dropped == ()


def test_default_sizes_are_capped_below_max_connections() -> None:
    small = ServerLimits(max_connections=40, reserved=3, in_use=2)
    grid = build_grid(small, cores=4)
    assert max(grid.pool_sizes) <= small.available == 34
    assert grid.dropped == (64,)
    assert 13 in grid.pool_sizes  # (2 x 4) + 5


@pytest.mark.parametrize("size", [0, -3])
def test_pool_size_below_one_is_refused(size: int) -> None:
    with pytest.raises(ConfigError, match=r"at least 1 connection.*max_connections is 100"):
        build_grid(ROOMY, cores=2, pool_sizes=(size, 4))


def test_pool_size_above_what_the_server_allows_names_max_connections() -> None:
    with pytest.raises(ConfigError, match=r"max_connections is 100 .*at most 94"):
        build_grid(ROOMY, cores=2, pool_sizes=(4, 500))


def test_concurrency_must_be_positive_and_bounded() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        build_grid(ROOMY, cores=2, concurrencies=(0,))
    with pytest.raises(ConfigError, match="at most 2000"):
        build_grid(ROOMY, cores=2, concurrencies=(10, 50_000))


def test_parsing_sizes_and_drivers() -> None:
    assert parse_sizes("8, 1,4,4", "pool-sizes") == (1, 4, 8)
    with pytest.raises(ConfigError, match="'eight' is not a whole number"):
        parse_sizes("1,eight", "pool-sizes")
    assert parse_drivers("both") == ("psycopg", "asyncpg")
    assert parse_drivers("asyncpg") == ("asyncpg",)
    with pytest.raises(ConfigError, match="choose psycopg, asyncpg or both"):
        parse_drivers("psycopg2")
