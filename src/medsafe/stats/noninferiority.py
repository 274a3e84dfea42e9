"""Non-inferiority tests of a candidate against a baseline on the same items, and the sample
size at which a Wilson bound clears a threshold.

Everything is written in the *harm orientation*: ``d = harm(candidate) - harm(baseline)``, where
harm is the metric itself when lower is safer and its negative when higher is safer. The
candidate is non-inferior at margin ``delta > 0`` when ``H0: d >= delta`` is rejected.

- :func:`tango_noninferiority`: paired binary outcomes, unclustered: Tango's (1998) score test
  with the restricted maximum-likelihood variance, and the score interval found by inverting it.
- :func:`cluster_noninferiority`: any paired values, optionally clustered (rotations of one
  question, turns of one conversation): the ratio mean of the differences with the CR1
  cluster-robust (sandwich) variance and Student's t on ``k - 1`` degrees of freedom (Liang &
  Zeger 1986; Cameron & Miller 2015). Without clusters it is exactly the one-sided paired t-test.
- :func:`wilson_n_needed`: the smallest ``n`` at which the Wilson bound at the observed
  proportion clears a threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

from medsafe.stats._resample import as_float_1d
from medsafe.stats.normal import wilson_bounds
from medsafe.stats.results import _JsonMixin

_N_MAX = 10**9
""":func:`wilson_n_needed` gives up above this many units (None: never decides)."""


@dataclass(frozen=True)
class NonInferiority(_JsonMixin):
    """A one-sided non-inferiority test in the harm orientation (``d`` = candidate - baseline).

    ``ci`` is the two-sided ``1 - 2 alpha`` interval of ``d`` (its upper end is the one-sided
    ``1 - alpha`` bound the test compares with ``margin``); ``se`` the standard error of ``d``
    (per-unit ``se * sqrt(n)`` gives ``n_needed``).
    """

    test: str
    d: float
    ci: tuple[float, float]
    margin: float
    alpha: float
    statistic: float
    p: float
    n: int
    n_clusters: int
    se: float


def _check(margin: float, alpha: float) -> None:
    if not margin > 0:
        raise ValueError(f"the margin must be above 0, got {margin}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")


def _tango_z(n: int, n10: int, n01: int, delta: float) -> float:
    """Tango's score statistic for ``H0: p10 - p01 = delta`` (restricted-MLE variance)."""
    b = n10 * (1 + delta) + n01 * (1 - delta) - 2 * n * delta
    root = (b + math.sqrt(b * b + 8 * n * n01 * delta * (1 - delta))) / (4 * n)
    var = n * (2 * root + delta * (1 - delta))
    diff = n10 - n01 - n * delta
    if var <= 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def _invert(n: int, n10: int, n01: int, target: float) -> float:
    """The ``delta`` in (-1, 1) where Tango's ``Z(delta)`` (decreasing in delta) equals
    ``target`` (bisection)."""
    lo, hi = -1.0 + 1e-12, 1.0 - 1e-12
    while hi - lo > 1e-12:
        mid = (lo + hi) / 2
        if _tango_z(n, n10, n01, mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def tango_noninferiority(
    candidate_harm: ArrayLike, baseline_harm: ArrayLike, margin: float, alpha: float = 0.05
) -> NonInferiority:
    """Tango's (1998) paired score test of ``H0: p_c - p_b >= margin`` on 0/1 harm indicators.

    With ``n10`` pairs harmful only for the candidate and ``n01`` only for the baseline,
    ``Z = (n10 - n01 - n delta) / sqrt(n (2 q + delta (1 - delta)))`` where ``q`` is the
    restricted MLE of ``p01`` under ``p10 - p01 = delta``; ``p = Phi(Z)``. The interval inverts
    the same statistic at ``+/- z_{1 - alpha}`` (Tango's score interval).
    """
    _check(margin, alpha)
    c = as_float_1d(candidate_harm, "candidate_harm")
    b = as_float_1d(baseline_harm, "baseline_harm")
    if c.shape != b.shape or c.size == 0:
        raise ValueError(f"need two non-empty arrays of one length, got {c.size} and {b.size}")
    if not (np.isin(c, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()):
        raise ValueError("Tango's test needs 0/1 values")
    n = int(c.size)
    n10 = int(np.sum((c == 1) & (b == 0)))
    n01 = int(np.sum((c == 0) & (b == 1)))
    z = _tango_z(n, n10, n01, margin)
    z_a = NormalDist().inv_cdf(1 - alpha)
    lo = _invert(n, n10, n01, z_a)
    hi = _invert(n, n10, n01, -z_a)
    d = (n10 - n01) / n
    se = (hi - lo) / (2 * z_a) if hi > lo else 0.0
    return NonInferiority(
        test="tango_score",
        d=d,
        ci=(lo, hi),
        margin=margin,
        alpha=alpha,
        statistic=z,
        p=NormalDist().cdf(z) if math.isfinite(z) else (1.0 if z > 0 else 0.0),
        n=n,
        n_clusters=n,
        se=se,
    )


def cluster_noninferiority(
    diff: ArrayLike,
    clusters: ArrayLike | None,
    margin: float,
    alpha: float = 0.05,
) -> NonInferiority:
    """Cluster-robust one-sided t-test of ``H0: mean(diff) >= margin`` (harm orientation).

    ``d = sum_g S_g / sum_g M_g`` (``S_g``, ``M_g``: the sum and count of cluster ``g``'s
    differences); ``V = k/(k-1) sum_g (S_g - d M_g)^2 / (sum_g M_g)^2`` (CR1);
    ``t = (d - margin) / sqrt(V)``, ``p = T_{k-1}(t)``. ``clusters=None``: each value its own
    cluster (the paired t-test). The interval is ``d -/+ t_{k-1, 1-alpha} sqrt(V)``.
    """
    from scipy.stats import t as student_t

    _check(margin, alpha)
    x = as_float_1d(diff, "diff")
    if clusters is None:
        inv = np.arange(x.size)
    else:
        labels = np.asarray(clusters)
        if labels.shape != x.shape:
            raise ValueError(f"clusters shape {labels.shape} != diff shape {x.shape}")
        _, inv = np.unique(labels, return_inverse=True)
        inv = inv.reshape(-1)
    keep = np.isfinite(x)
    x, inv = x[keep], inv[keep]
    k = int(np.unique(inv).size)
    if k < 2:
        raise ValueError(f"need at least two clusters (independent units), got {k}")
    sums = np.bincount(inv, weights=x)
    counts = np.bincount(inv).astype(np.float64)
    used = counts > 0
    sums, counts = sums[used], counts[used]
    total = float(counts.sum())
    d = float(sums.sum() / total)
    var = k / (k - 1) * float(np.sum((sums - d * counts) ** 2)) / total**2
    se = math.sqrt(var)
    df = k - 1
    q = float(student_t.ppf(1 - alpha, df))
    if se == 0:
        stat = 0.0 if d == margin else math.copysign(math.inf, d - margin)
        p = 1.0 if d >= margin else 0.0
    else:
        stat = (d - margin) / se
        p = float(student_t.cdf(stat, df))
    return NonInferiority(
        test="cluster_t" if clusters is not None else "paired_t",
        d=d,
        ci=(d - q * se, d + q * se),
        margin=margin,
        alpha=alpha,
        statistic=stat,
        p=p,
        n=int(x.size),
        n_clusters=k,
        se=se,
    )


def wilson_n_needed(p_hat: float, bound: float, side: str, level: float = 0.95) -> int | None:
    """The smallest ``n`` at which the Wilson interval at proportion ``p_hat`` clears ``bound``.

    ``side="upper"`` asks for ``hi <= bound`` when ``p_hat < bound`` and for ``lo > bound`` (a
    decided fail) when ``p_hat > bound``; ``side="lower"`` mirrors it. None when ``p_hat`` equals
    the bound (no n decides) or above 10^9 units. The Wilson bound at a fixed proportion moves
    monotonically towards ``p_hat`` as ``n`` grows, so a doubling then bisection finds it.
    """
    if side not in ("upper", "lower"):
        raise ValueError(f"side must be 'upper' or 'lower', got {side!r}")
    if not 0 <= p_hat <= 1 or p_hat == bound:
        return None

    def decided(n: int) -> bool:
        lo, hi = wilson_bounds(p_hat * n, n, level) or (0.0, 1.0)
        if side == "upper":
            return hi <= bound if p_hat < bound else lo > bound
        return lo >= bound if p_hat > bound else hi < bound

    hi_n = 1
    while not decided(hi_n):
        hi_n *= 2
        if hi_n > _N_MAX:
            return None
    lo_n = hi_n // 2
    while hi_n - lo_n > 1:
        mid = (lo_n + hi_n) // 2
        if decided(mid):
            hi_n = mid
        else:
            lo_n = mid
    return hi_n
