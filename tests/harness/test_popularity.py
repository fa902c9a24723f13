"""Zipf-like popularity: skewed, spread over the id range, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from harness.popularity import ZipfSampler


def test_draws_stay_in_range_and_are_skewed() -> None:
    sampler = ZipfSampler(10_000, first=101, exponent=1.0, seed=3)
    draws = sampler.sample(np.random.default_rng(0), 200_000)
    assert draws.min() >= 101 and draws.max() <= 10_100
    _, counts = np.unique(draws, return_counts=True)
    top_share = np.sort(counts)[::-1][:100].sum() / len(draws)
    assert top_share == pytest.approx(sampler.share_of_top(100), abs=0.01)
    assert top_share > 0.4  # 1% of ids take over 40% of draws


def test_hot_ids_are_spread_not_the_smallest() -> None:
    hot = ZipfSampler(100_000, seed=1).hottest(10)
    assert hot.max() > 1_000


def test_same_seed_same_ids() -> None:
    a = ZipfSampler(500, seed=9).sample(np.random.default_rng(1), 50)
    b = ZipfSampler(500, seed=9).sample(np.random.default_rng(1), 50)
    assert (a == b).all()


def test_exponent_zero_is_uniform() -> None:
    draws = ZipfSampler(10, exponent=0.0).sample(np.random.default_rng(2), 100_000)
    _, counts = np.unique(draws, return_counts=True)
    assert counts.min() > 9_000


def test_rejects_empty_range() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ZipfSampler(0)
