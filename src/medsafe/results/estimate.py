"""The one place an interval is chosen for a figure (docs/statistics.md, "Intervals").

- a proportion (accuracy, a binary scorer's mean, harmful share, ASR): Wilson score interval;
- a mean of non-binary item values: percentile bootstrap over items (2,000 resamples, seed 0)
  when n <= :data:`BOOTSTRAP_MAX_N`, else the normal approximation from the sums (the
  bootstrap distribution of a mean is normal there, and a 200k-item report must not wait);
- fewer than two values: no interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from medsafe.results.models import Estimate
from medsafe.stats.normal import normal_mean_bounds, wilson_bounds

BOOTSTRAP_MAX_N = 1000
"""Non-binary means of at most this many values get a bootstrap interval, larger ones normal."""
N_RESAMPLES = 2000
ALPHA_MAX_UNITS = 20_000
"""Krippendorff's alpha is computed on a seeded random sample of at most this many units (the
``krippendorff`` package needs about 1 KB per unit); kappa and Spearman use every unit."""


def proportion(successes: int, n: int) -> Estimate:
    """``successes / n`` with its Wilson 95% interval."""
    if n <= 0:
        return Estimate(value=None, ci95=None, n=0, method=None)
    return Estimate(value=successes / n, ci95=wilson_bounds(successes, n), n=n, method="wilson")


def _finite(bounds: tuple[float, float]) -> tuple[float, float] | None:
    lo, hi = bounds
    return None if math.isnan(lo) or math.isnan(hi) else (lo, hi)


def bootstrap_mean(values: Sequence[float], clusters: Sequence[str] | None = None) -> Estimate:
    """Mean with a percentile bootstrap CI over clusters (items; a dialogue's turns together)."""
    n = len(values)
    if n == 0:
        return Estimate(value=None, ci95=None, n=0, method=None)
    mean = math.fsum(values) / n
    if n < 2:
        return Estimate(value=mean, ci95=None, n=n, method=None)
    if len(set(values)) == 1:
        return Estimate(value=mean, ci95=(mean, mean), n=n, method="bootstrap_percentile")
    from medsafe.stats.intervals import cluster_bootstrap_ci

    ids: list[str] | list[int] = list(clusters) if clusters is not None else list(range(n))
    ci = cluster_bootstrap_ci(list(values), ids, n_resamples=N_RESAMPLES, seed=0)
    return Estimate(value=mean, ci95=_finite((ci.lo, ci.hi)), n=n, method="bootstrap_percentile")


def mean_from_sums(
    n: int,
    total: float,
    total_sq: float,
    *,
    binary: bool,
    values: Callable[[], Sequence[float]],
) -> Estimate:
    """A mean of ``n`` item values from its sums, with the interval this module's rule picks;
    ``values`` is called only when the bootstrap needs the values themselves."""
    if n <= 0:
        return Estimate(value=None, ci95=None, n=0, method=None)
    if binary:
        return proportion(round(total), n)
    if n <= BOOTSTRAP_MAX_N:
        return bootstrap_mean(values())
    return Estimate(
        value=total / n, ci95=normal_mean_bounds(n, total, total_sq), n=n, method="normal"
    )
