"""Difference of two independent proportions with Newcombe's hybrid score interval."""

from __future__ import annotations

from statsmodels.stats.proportion import confint_proportions_2indep

from medsafe.stats._resample import check_level
from medsafe.stats.results import Estimate, Interval


def proportion_difference(
    successes_a: int, n_a: int, successes_b: int, n_b: int, level: float = 0.95
) -> Estimate:
    """``p_a - p_b`` with Newcombe's (1998, method 10) hybrid score CI (statsmodels).

    The interval combines the two Wilson intervals ``[l_i, u_i]``:
    ``d - sqrt((p_a - l_a)^2 + (u_b - p_b)^2)`` to ``d + sqrt((u_a - p_a)^2 + (p_b - l_b)^2)``.
    Either sample empty gives NaNs.
    """
    check_level(level)
    for s, n in ((successes_a, n_a), (successes_b, n_b)):
        if n < 0 or s < 0 or s > n:
            raise ValueError(f"need 0 <= successes <= n, got {s} of {n}")
    if n_a == 0 or n_b == 0:
        nan = float("nan")
        return Estimate(nan, Interval(nan, nan, "newcombe", level))
    lo, hi = confint_proportions_2indep(
        successes_a, n_a, successes_b, n_b, method="newcomb", alpha=1.0 - level
    )
    diff = successes_a / n_a - successes_b / n_b
    return Estimate(diff, Interval(float(lo), float(hi), "newcombe", level))
