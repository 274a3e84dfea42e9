"""Per-turn summaries for multi-turn conversations (e.g. safety decline across turns)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from medsafe.stats._resample import Method, Seed, as_float_1d, rng_from
from medsafe.stats.intervals import cluster_bootstrap_ci
from medsafe.stats.results import TurnSummary


def by_turn_summary(
    values: ArrayLike,
    turns: ArrayLike,
    clusters: ArrayLike,
    *,
    method: Method = "percentile",
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: Seed = 0,
) -> list[TurnSummary]:
    """For each turn (ascending): n, clusters, mean, median and a cluster-bootstrap CI.

    ``clusters`` names the conversation (or seed request) each value belongs to, so the CI
    respects within-conversation correlation. NaN values are dropped.
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
        ci = cluster_bootstrap_ci(
            xv, cv, method=method, n_resamples=n_resamples, level=level, seed=rng
        )
        out.append(
            TurnSummary(
                turn=int(turn),
                n=int(xv.size),
                n_clusters=int(np.unique(cv).size),
                mean=float(xv.mean()),
                median=float(np.median(xv)),
                ci=ci,
            )
        )
    return out
