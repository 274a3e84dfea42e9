"""Closed-form intervals that need no scipy: Wilson's score interval and the normal mean CI.

The one implementation of each (``medsafe.stats.intervals.wilson`` wraps :func:`wilson_bounds`);
light enough for the CLI's hot path. Tests check them against statsmodels.
"""

from __future__ import annotations

import math
from statistics import NormalDist

Z95 = 1.959963984540054
"""The standard normal quantile at 0.975."""


def z_for(level: float) -> float:
    """Two-sided standard normal quantile for a confidence ``level`` (0.95 gives :data:`Z95`)."""
    return Z95 if level == 0.95 else NormalDist().inv_cdf(0.5 + level / 2.0)


def wilson_bounds(successes: float, n: float, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson (1927) score interval ``(lo, hi)`` of ``successes`` out of ``n`` (None for n = 0)."""
    if n <= 0:
        return None
    if successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    z = z_for(level)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_mean_bounds(n: int, total: float, total_sq: float) -> tuple[float, float] | None:
    """Normal-approximation 95% CI of a mean from its sums (None below two values)."""
    if n < 2:
        return None
    mean = total / n
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = Z95 * math.sqrt(var / n)
    return mean - half, mean + half
