"""The gate's statistics (medsafe.stats.noninferiority) against reference computations: Tango's
score test against a numerically maximised restricted likelihood, the cluster-robust t-test
against scipy's t-tests, and the Wilson n against the Wilson interval itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.optimize import minimize_scalar

from medsafe.stats.noninferiority import (
    cluster_noninferiority,
    tango_noninferiority,
    wilson_n_needed,
)
from medsafe.stats.normal import wilson_bounds


def _tango_reference(n: int, n10: int, n01: int, delta: float) -> float:
    """Tango's Z with the restricted MLE of p01 found numerically."""
    m = n - n10 - n01

    def nll(p01: float) -> float:
        p10 = p01 + delta
        rest = 1 - p10 - p01
        return -(n10 * math.log(p10) + n01 * math.log(p01) + m * math.log(rest))

    lo = max(0.0, -delta) + 1e-12
    hi = (1 - delta) / 2 - 1e-12
    p01 = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}).x
    return (n10 - n01 - n * delta) / math.sqrt(n * (2 * p01 + delta * (1 - delta)))


def _pairs(n10: int, n01: int, n11: int, n00: int) -> tuple[list[int], list[int]]:
    cand = [1] * n10 + [0] * n01 + [1] * n11 + [0] * n00
    base = [0] * n10 + [1] * n01 + [1] * n11 + [0] * n00
    return cand, base


@pytest.mark.parametrize(
    ("n10", "n01", "n11", "n00", "delta"),
    [(30, 12, 20, 438, 0.02), (9, 11, 5, 175, 0.05), (60, 20, 100, 1820, 0.02), (3, 0, 1, 96, 0.1)],
)
def test_tango_matches_the_numerically_restricted_likelihood(
    n10: int, n01: int, n11: int, n00: int, delta: float
) -> None:
    cand, base = _pairs(n10, n01, n11, n00)
    result = tango_noninferiority(cand, base, delta, 0.05)
    n = n10 + n01 + n11 + n00
    z = _tango_reference(n, n10, n01, delta)
    assert result.statistic == pytest.approx(z, abs=1e-6)
    assert result.p == pytest.approx(sps.norm.cdf(z), abs=1e-6)
    assert result.d == pytest.approx((n10 - n01) / n)
    # the interval inverts the same statistic at -/+ z_0.95
    z95 = sps.norm.ppf(0.95)
    assert _tango_reference(n, n10, n01, result.ci[1]) == pytest.approx(-z95, abs=1e-4)
    assert result.ci[0] < result.d < result.ci[1]
    # passing (p < alpha) is the same as the interval's upper end below the margin
    assert (result.p < 0.05) == (result.ci[1] < delta)


def test_tango_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="margin"):
        tango_noninferiority([0, 1], [1, 0], 0.0)
    with pytest.raises(ValueError, match="0/1"):
        tango_noninferiority([0, 2], [1, 0], 0.1)
    with pytest.raises(ValueError, match="one length"):
        tango_noninferiority([0, 1, 1], [1, 0], 0.1)


def test_unclustered_is_the_one_sided_paired_t_test() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.05, 0.4, 120)
    result = cluster_noninferiority(d, None, 0.1, 0.05)
    ref = sps.ttest_1samp(d, 0.1, alternative="less")
    assert result.test == "paired_t"
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert result.p == pytest.approx(ref.pvalue, rel=1e-10)
    half = sps.t.ppf(0.95, 119) * d.std(ddof=1) / math.sqrt(120)
    assert result.ci == pytest.approx((d.mean() - half, d.mean() + half))


def test_equal_clusters_give_the_t_test_on_cluster_means() -> None:
    rng = np.random.default_rng(4)
    k, m = 30, 6
    d = (rng.normal(0, 0.5, k)[:, None] + rng.normal(0.1, 0.3, (k, m))).ravel()
    clusters = np.repeat(np.arange(k), m)
    result = cluster_noninferiority(d, clusters, 0.3, 0.05)
    means = d.reshape(k, m).mean(axis=1)
    ref = sps.ttest_1samp(means, 0.3, alternative="less")
    assert result.test == "cluster_t" and result.n_clusters == k and result.n == k * m
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert result.p == pytest.approx(ref.pvalue, rel=1e-10)
    # ignoring the clusters would claim a much smaller standard error
    naive = cluster_noninferiority(d, None, 0.3, 0.05)
    assert naive.se < result.se / 1.5


def test_cluster_test_needs_two_clusters() -> None:
    with pytest.raises(ValueError, match="two clusters"):
        cluster_noninferiority([0.1, 0.2, 0.3], ["a", "a", "a"], 0.1)


@pytest.mark.parametrize(
    ("p", "bound", "side"),
    [(0.03, 0.05, "upper"), (0.08, 0.05, "upper"), (0.7, 0.6, "lower"), (0.55, 0.6, "lower")],
)
def test_wilson_n_needed_is_the_smallest_deciding_n(p: float, bound: float, side: str) -> None:
    n = wilson_n_needed(p, bound, side)
    assert n is not None

    def decided(k: int) -> bool:
        lo, hi = wilson_bounds(p * k, k) or (0.0, 1.0)
        if side == "upper":
            return hi <= bound if p < bound else lo > bound
        return lo >= bound if p > bound else hi < bound

    assert decided(n) and not decided(n - 1)


def test_wilson_n_needed_on_the_bound_is_none() -> None:
    assert wilson_n_needed(0.05, 0.05, "upper") is None
    with pytest.raises(ValueError, match="side"):
        wilson_n_needed(0.1, 0.05, "middle")
