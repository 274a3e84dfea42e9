"""Shared bootstrap plumbing: seeds, argument checks, percentile and BCa end points."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Seed = int | np.random.Generator | None
Method = Literal["percentile", "bca"]
FloatArray = NDArray[np.float64]

#: At most this many resamples per vectorised block ...
BLOCK = 256
#: ... and at most this many resampled indices held at once (about 16 MB of int64).
MAX_CELLS = 2_000_000


def block_size(n: int) -> int:
    """Resamples per block for samples of size ``n``; the random stream does not depend on it."""
    return max(1, min(BLOCK, MAX_CELLS // max(n, 1)))


def rng_from(seed: Seed) -> np.random.Generator:
    """A numpy Generator from an int seed, an existing Generator (used as is) or None."""
    return np.random.default_rng(seed)


def as_float_1d(values: ArrayLike, name: str = "values") -> FloatArray:
    """Validate and convert to a 1-D float64 array."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def check_level(level: float) -> float:
    """Confidence level must lie strictly between 0 and 1."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(level)


def check_resamples(n_resamples: int) -> int:
    """At least one resample."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    return int(n_resamples)


def interval_bounds(
    theta_hat: float,
    theta_b: FloatArray,
    level: float,
    method: Method,
    jackknife: FloatArray | None = None,
) -> tuple[float, float]:
    """End points from a bootstrap distribution, following ``scipy.stats.bootstrap``.

    Percentile: the ``alpha/2`` and ``1 - alpha/2`` quantiles of ``theta_b``.
    BCa (Efron 1987): quantiles at ``Phi(z0 + (z0 + z)/(1 - a (z0 + z)))`` with bias
    ``z0 = Phi^-1(share of theta_b below theta_hat, ties counted half)`` and acceleration
    ``a = sum(U^3) / (6 sum(U^2)^1.5)`` from jackknife values ``U_i = mean(theta_(i)) -
    theta_(i)``. Resamples where the statistic is NaN are ignored.
    """
    theta_b = theta_b[np.isfinite(theta_b)]
    if theta_b.size == 0 or not np.isfinite(theta_hat):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    if method == "percentile":
        q = np.array([alpha, 1.0 - alpha])
    elif method == "bca":
        if jackknife is None:
            raise ValueError("method='bca' needs jackknife values")
        below = np.count_nonzero(theta_b < theta_hat) + np.count_nonzero(theta_b <= theta_hat)
        from scipy.special import ndtr, ndtri  # BCa only: scipy.special costs ~0.1 s

        z0 = ndtri(below / (2.0 * theta_b.size))
        u = np.mean(jackknife) - jackknife
        den = np.sum(u**2)
        a_hat = np.sum(u**3) / (6.0 * den**1.5) if den > 0 else 0.0
        z = ndtri(np.array([alpha, 1.0 - alpha]))
        q = ndtr(z0 + (z0 + z) / (1.0 - a_hat * (z0 + z)))
        if not np.all(np.isfinite(q)):
            return float("nan"), float("nan")
    else:
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")
    lo, hi = np.quantile(theta_b, q)
    return float(lo), float(hi)
