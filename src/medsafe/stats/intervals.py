"""Confidence intervals: Wilson score, bootstrap (percentile/BCa) and cluster bootstrap.

scipy.stats is imported inside the bootstrap (a report of large groups never needs it);
``wilson`` is the closed form, checked against statsmodels' ``proportion_confint`` in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medsafe.stats._resample import (
    FloatArray,
    Method,
    Seed,
    as_float_1d,
    block_size,
    check_level,
    check_resamples,
    interval_bounds,
    rng_from,
)
from medsafe.stats.normal import wilson_bounds
from medsafe.stats.results import Interval

_NAN = float("nan")


def wilson(successes: int, n: int, level: float = 0.95) -> Interval:
    """Wilson (1927) score interval for a binomial proportion; ``n == 0`` gives NaNs."""
    check_level(level)
    if n < 0:
        raise ValueError(f"need n >= 0, got n={n}")
    bounds = wilson_bounds(successes, n, level)
    if bounds is None:
        return Interval(_NAN, _NAN, "wilson", level)
    return Interval(bounds[0], bounds[1], "wilson", level)


def bootstrap_ci(
    values: ArrayLike,
    stat: Callable[..., Any] = np.mean,
    *,
    method: Method = "percentile",
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: Seed = 0,
) -> Interval:
    """Non-parametric bootstrap CI of ``stat(values)`` via ``scipy.stats.bootstrap``.

    NaNs are dropped. Fewer than two values give a NaN interval; constant values give the
    degenerate interval ``[stat, stat]`` (every resample is identical).
    """
    check_level(level)
    check_resamples(n_resamples)
    x = as_float_1d(values)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return Interval(_NAN, _NAN, method, level)
    if np.ptp(x) == 0:
        s = float(stat(x))
        return Interval(s, s, method, level)
    from scipy import stats as sps

    res = sps.bootstrap(
        (x,),
        stat,
        n_resamples=n_resamples,
        confidence_level=level,
        method=method,
        rng=rng_from(seed),
    )
    ci = res.confidence_interval
    return Interval(float(ci.low), float(ci.high), method, level)


def _cluster_index(values: ArrayLike, clusters: ArrayLike) -> tuple[FloatArray, NDArray[np.intp]]:
    x = as_float_1d(values)
    c = np.asarray(clusters)
    if c.shape != x.shape:
        raise ValueError(f"clusters shape {c.shape} != values shape {x.shape}")
    keep = np.isfinite(x)
    _, inv = np.unique(c[keep], return_inverse=True)
    return x[keep], inv.reshape(-1).astype(np.intp)


def _mean_bootstrap(
    sums: FloatArray, counts: FloatArray, n_resamples: int, rng: np.random.Generator
) -> FloatArray:
    """Ratio-of-sums mean for each resample of clusters, in vectorised blocks."""
    k = sums.size
    out = np.empty(n_resamples)
    step = block_size(k)
    for start in range(0, n_resamples, step):
        m = min(step, n_resamples - start)
        idx = rng.integers(0, k, (m, k))
        out[start : start + m] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return out


def _generic_bootstrap(
    x: FloatArray,
    inv: NDArray[np.intp],
    stat: Callable[[FloatArray], Any],
    n_resamples: int,
    rng: np.random.Generator,
    jackknife: bool,
) -> tuple[FloatArray, FloatArray | None]:
    """Any statistic: one call per resample (slow path), plus the cluster jackknife if asked."""
    k = int(inv.max()) + 1
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv, minlength=k)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    theta_b = np.empty(n_resamples)
    step = block_size(k)
    for start in range(0, n_resamples, step):
        m = min(step, n_resamples - start)
        idx = rng.integers(0, k, (m, k))
        for j in range(m):
            lens = counts[idx[j]]
            offsets = np.repeat(starts[idx[j]] - np.cumsum(lens) + lens, lens)
            theta_b[start + j] = float(stat(x[order[offsets + np.arange(lens.sum())]]))
    if not jackknife:
        return theta_b, None
    return theta_b, np.array([float(stat(x[inv != g])) for g in range(k)])


def cluster_bootstrap_ci(
    values: ArrayLike,
    clusters: ArrayLike,
    stat: Callable[[FloatArray], Any] | None = None,
    *,
    method: Method = "percentile",
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: Seed = 0,
) -> Interval:
    """Cluster (block) bootstrap CI: resample whole clusters with replacement.

    Use when observations share a conversation, seed request or source document (Field &
    Welsh 2007). ``stat=None`` (the default) is the pooled mean ``sum(values)/n`` and runs
    fully vectorised on per-cluster sums; any other ``stat(values) -> float`` is called once
    per resample. NaN values are dropped with their labels. BCa uses the delete-one-cluster
    jackknife. Fewer than two clusters give a NaN interval.
    """
    check_level(level)
    check_resamples(n_resamples)
    x, inv = _cluster_index(values, clusters)
    if x.size == 0 or int(inv.max()) < 1:
        return Interval(_NAN, _NAN, f"cluster_{method}", level)
    rng = rng_from(seed)
    if stat is None:
        sums = np.bincount(inv, weights=x).astype(np.float64)
        counts = np.bincount(inv).astype(np.float64)
        theta_hat = float(sums.sum() / counts.sum())
        theta_b = _mean_bootstrap(sums, counts, n_resamples, rng)
        jack: FloatArray | None = (sums.sum() - sums) / (counts.sum() - counts)
    else:
        theta_hat = float(stat(x))
        theta_b, jack = _generic_bootstrap(x, inv, stat, n_resamples, rng, method == "bca")
    lo, hi = interval_bounds(theta_hat, theta_b, level, method, jack)
    return Interval(lo, hi, f"cluster_{method}", level)
