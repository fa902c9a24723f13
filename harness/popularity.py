"""Skewed (Zipf-like) popularity over a range of ids.

Production traffic and production data are both skewed: a few artifacts, topics and entities
take most of the reads and links. Caches and indexes only behave as in production under that
skew, so both the dataset and the load users draw ids through this one sampler.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Exponent 1.0 is the classic Zipf law; measured web and citation popularity sits near 0.8-1.2.
DEFAULT_EXPONENT = 1.0


class ZipfSampler:
    """Draw ids from ``first .. first + n - 1`` with P(rank k) proportional to 1 / (k + 1) ** s.

    Ranks are mapped to ids through a seeded permutation, so the hot ids are spread over the
    range instead of being the smallest ones (which would all sit in one B-tree page).
    """

    def __init__(
        self,
        n: int,
        *,
        first: int = 1,
        exponent: float = DEFAULT_EXPONENT,
        seed: int | list[int] = 0,
    ) -> None:
        if n < 1:
            raise ValueError("ZipfSampler needs at least one id")
        if exponent < 0:
            raise ValueError("Zipf exponent must be >= 0 (0 means uniform)")
        self.n = n
        self.first = first
        self.exponent = exponent
        weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
        cdf = np.cumsum(weights)
        self._cdf = cdf / cdf[-1]
        rng = np.random.default_rng(seed)
        self._ids = rng.permutation(n).astype(np.int64) + first

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.int64]:
        """Return ``size`` ids drawn with the skewed popularity."""
        ranks = np.searchsorted(self._cdf, rng.random(size), side="right")
        np.minimum(ranks, self.n - 1, out=ranks)
        return self._ids[ranks]

    def hottest(self, k: int) -> npt.NDArray[np.int64]:
        """The ``k`` most popular ids, most popular first."""
        return self._ids[: min(k, self.n)].copy()

    def share_of_top(self, k: int) -> float:
        """Fraction of draws that land on the ``k`` most popular ids."""
        return float(self._cdf[min(k, self.n) - 1])
