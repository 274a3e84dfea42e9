"""Distribution-free confidence interval for a median (order statistics)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import bdtr

from medsafe.stats._resample import as_float_1d, check_level
from medsafe.stats.results import Interval


def median_ci(values: ArrayLike, level: float = 0.95) -> Interval:
    """Order-statistic CI for the median of independent values (Conover 1999, sec. 3.2).

    With ``X ~ Binomial(n, 1/2)`` and the largest ``k`` such that ``P(X < k) <= (1-level)/2``,
    the interval is ``[x_(k), x_(n-k+1)]`` (1-based order statistics); its coverage is at least
    ``level`` for any continuous distribution and it is the interval
    ``scipy.stats.quantile_test(...).confidence_interval`` gives. NaNs are dropped; when ``n`` is
    too small for the level an end is unbounded (-inf / +inf); no values give NaNs.
    """
    check_level(level)
    x = as_float_1d(values)
    x = np.sort(x[np.isfinite(x)])
    n = int(x.size)
    if n == 0:
        return Interval(float("nan"), float("nan"), "order_statistic", level)
    alpha = (1.0 - level) / 2.0
    # k = 1 + the largest j with P(X <= j) <= alpha = how many j in 0..n have P(X <= j) <= alpha
    # (scipy.special's binomial CDF: scipy.stats takes half a second to import)
    k = int(np.count_nonzero(bdtr(np.arange(n + 1), n, 0.5) <= alpha))
    if k < 1:
        return Interval(float("-inf"), float("inf"), "order_statistic", level)
    return Interval(float(x[k - 1]), float(x[n - k]), "order_statistic", level)
