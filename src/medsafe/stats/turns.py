"""Per-turn summaries for multi-turn conversations (e.g. safety decline across turns)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medsafe.stats._resample import Method, Seed, as_float_1d, rng_from
from medsafe.stats.intervals import cluster_bootstrap_ci
from medsafe.stats.normal import z_for
from medsafe.stats.results import Interval, TurnSummary


def _normal_ci(x: NDArray[np.float64], clusters: NDArray[Any], level: float) -> Interval:
    """Normal CI of the pooled mean from cluster totals (a ratio estimator's linearisation)."""
    _, inv = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inv, weights=x)
    counts = np.bincount(inv).astype(np.float64)
    mean = float(sums.sum() / counts.sum())
    k = sums.size
    resid = (sums - mean * counts) / counts.mean()
    se = float(np.sqrt(resid.var(ddof=1) / k))
    z = z_for(level)
    return Interval(mean - z * se, mean + z * se, "normal", level)


def by_turn_summary(
    values: ArrayLike,
    turns: ArrayLike,
    clusters: ArrayLike,
    *,
    method: Method = "percentile",
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: Seed = 0,
    max_bootstrap: int | None = None,
) -> list[TurnSummary]:
    """For each turn (ascending): n, clusters, mean, median and a cluster-bootstrap CI.

    ``clusters`` names the conversation (or seed request) each value belongs to, so the CI
    respects within-conversation correlation. NaN values are dropped. A turn with more than
    ``max_bootstrap`` clusters gets the normal-approximation interval of the mean of its
    cluster means instead (the bootstrap distribution of a mean is normal there).
    """
    x = as_float_1d(values)
    t = np.asarray(turns)
    c = np.asarray(clusters)
    if t.shape != x.shape or c.shape != x.shape:
        raise ValueError("values, turns and clusters must have the same length")
    if t.size and not np.issubdtype(t.dtype, np.integer):
        raise ValueError("turns must be integers")
    keep = np.isfinite(x)
    x, t, c = x[keep], t[keep], c[keep]
    rng = rng_from(seed)
    out = []
    for turn in np.unique(t):
        sel = t == turn
        xv, cv = x[sel], c[sel]
        n_clusters = int(np.unique(cv).size)
        if max_bootstrap is not None and n_clusters > max_bootstrap:
            ci = _normal_ci(xv, cv, level)
        else:
            ci = cluster_bootstrap_ci(
                xv, cv, method=method, n_resamples=n_resamples, level=level, seed=rng
            )
        out.append(
            TurnSummary(
                turn=int(turn),
                n=int(xv.size),
                n_clusters=n_clusters,
                mean=float(xv.mean()),
                median=float(np.median(xv)),
                ci=ci,
            )
        )
    return out
