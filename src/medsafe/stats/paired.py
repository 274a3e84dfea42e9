"""Paired comparisons of two runs (or several conditions) on the same items."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from medsafe.stats._resample import (
    FloatArray,
    Method,
    Seed,
    as_float_1d,
    check_level,
    check_resamples,
    rng_from,
)
from medsafe.stats.results import Interval, PairedDiff, TestResult

#: Below this many discordant pairs McNemar uses the exact binomial test.
EXACT_BELOW = 25


def _as_binary(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold only booleans / 0 / 1")
    return arr.astype(bool)


def _paired_floats(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """``b - a`` over pairs where both are finite."""
    x, y = as_float_1d(a, "a"), as_float_1d(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b differ in length: {x.size} != {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return y[keep] - x[keep]


def _odds(num: int, den: int) -> float:
    """``num / den``; ``inf`` when only the denominator is zero, NaN when both are."""
    if den > 0:
        return num / den
    return float("inf") if num > 0 else float("nan")


def mcnemar(a_correct: ArrayLike, b_correct: ArrayLike) -> TestResult:
    """McNemar (1947) test that runs A and B have the same accuracy on the same items.

    Exact binomial test when there are fewer than 25 discordant pairs, otherwise the
    chi-square statistic with continuity correction (statsmodels). ``effect_size`` is the
    accuracy difference ``acc(B) - acc(A)``; ``extra`` holds the discordant counts and
    their odds ratio ``b_only / a_only``.
    """
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar  # ~0.3 s import

    a = _as_binary(a_correct, "a_correct")
    b = _as_binary(b_correct, "b_correct")
    if a.shape != b.shape:
        raise ValueError(f"a_correct and b_correct differ in length: {a.size} != {b.size}")
    if a.size == 0:
        raise ValueError("mcnemar needs at least one pair")
    both = int(np.sum(a & b))
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    neither = int(np.sum(~a & ~b))
    exact = a_only + b_only < EXACT_BELOW
    res = sm_mcnemar([[both, a_only], [b_only, neither]], exact=exact, correction=True)
    odds = _odds(b_only, a_only)
    return TestResult(
        test="mcnemar_exact" if exact else "mcnemar_chi2_cc",
        statistic=float(res.statistic),
        p=float(res.pvalue),
        effect_size=(b_only - a_only) / a.size,
        effect_name="accuracy_difference_b_minus_a",
        n=int(a.size),
        extra={"a_only": a_only, "b_only": b_only, "odds_ratio_discordant": odds},
    )


def rank_biserial(diff: ArrayLike, zero_method: Literal["wilcox", "pratt"] = "wilcox") -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014): ``(R+ - R-) / (R+ + R-)``.

    Ranks are of ``|diff|``; with ``"wilcox"`` zero differences are dropped before ranking,
    with ``"pratt"`` they are ranked and then dropped. Returns NaN if every diff is zero.
    """
    d = as_float_1d(diff, "diff")
    if zero_method == "wilcox":
        d = d[d != 0]
    ranks = sps.rankdata(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    r_minus = float(ranks[d < 0].sum())
    total = r_plus + r_minus
    return (r_plus - r_minus) / total if total > 0 else float("nan")


def wilcoxon_signed_rank(
    a: ArrayLike, b: ArrayLike, zero_method: Literal["wilcox", "pratt"] = "wilcox"
) -> TestResult:
    """Wilcoxon (1945) signed-rank test of ``b - a`` (``scipy.stats.wilcoxon``).

    ``zero_method="wilcox"`` drops tied pairs; ``"pratt"`` keeps them in the ranking (more
    conservative when many items tie, e.g. coarse rubric scores). The statistic is scipy's
    ``min(R+, R-)``; ``effect_size`` is the matched-pairs rank-biserial r (positive: B higher).
    Pairs with a NaN are dropped; if every difference is zero, p = 1 and r = 0.
    """
    d = _paired_floats(a, b)
    nonzero = int(np.count_nonzero(d))
    extra = {"n_nonzero": float(nonzero)}
    if nonzero == 0:
        return TestResult(
            f"wilcoxon_{zero_method}", 0.0, 1.0, 0.0, "rank_biserial_r", int(d.size), extra
        )
    res = sps.wilcoxon(d, zero_method=zero_method)
    return TestResult(
        test=f"wilcoxon_{zero_method}",
        statistic=float(res.statistic),
        p=float(res.pvalue),
        effect_size=rank_biserial(d, zero_method),
        effect_name="rank_biserial_r",
        n=int(d.size),
        extra=extra,
    )


def paired_bootstrap_diff(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    method: Method = "percentile",
    seed: Seed = 0,
) -> PairedDiff:
    """Mean paired difference ``mean(b - a)`` with a bootstrap CI and two-sided p-value.

    Pairs are resampled together (``scipy.stats.bootstrap`` on the differences). The p-value
    uses the null-centred bootstrap distribution (Hall & Wilson 1991):
    ``p = (1 + #{|d* - d| >= |d|}) / (B + 1)``. Pairs with a NaN are dropped.
    """
    check_level(level)
    check_resamples(n_resamples)
    d = _paired_floats(a, b)
    if d.size < 2:
        nan = float("nan")
        return PairedDiff(nan, Interval(nan, nan, method, level), nan, int(d.size))
    delta = float(d.mean())
    if np.ptp(d) == 0:
        theta_b = np.full(n_resamples, delta)
        ci = Interval(delta, delta, method, level)
    else:
        res = sps.bootstrap(
            (d,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=level,
            method=method,
            rng=rng_from(seed),
        )
        theta_b = np.asarray(res.bootstrap_distribution, dtype=np.float64)
        low, high = res.confidence_interval
        ci = Interval(float(low), float(high), method, level)
    extreme = int(np.count_nonzero(np.abs(theta_b - delta) >= abs(delta)))
    p = (1 + extreme) / (theta_b.size + 1)
    return PairedDiff(delta, ci, p, int(d.size))


def friedman(matrix: ArrayLike) -> TestResult:
    """Friedman (1937) test across k >= 3 related conditions (rows = subjects).

    Uses ``scipy.stats.friedmanchisquare`` (tie-corrected). ``effect_size`` is Kendall's
    ``W = chi2 / (n (k - 1))`` in [0, 1]. Rows with any NaN are dropped.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 3:
        raise ValueError(f"matrix must be 2-D with >= 3 columns, got shape {m.shape}")
    m = m[np.isfinite(m).all(axis=1)]
    n, k = m.shape
    if n < 2:
        raise ValueError("friedman needs at least two complete rows")
    res = sps.friedmanchisquare(*m.T)
    chi2 = float(res.statistic)
    return TestResult(
        test="friedman",
        statistic=chi2,
        p=float(res.pvalue),
        effect_size=chi2 / (n * (k - 1)),
        effect_name="kendall_w",
        n=n,
        extra={"k": float(k)},
    )
