"""Tests for medsafe.stats.paired."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from medsafe.stats import (
    friedman,
    mcnemar,
    paired_bootstrap_diff,
    rank_biserial,
    wilcoxon_signed_rank,
)


def _pairs(both: int, a_only: int, b_only: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1] * both + [1] * a_only + [0] * b_only + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * a_only + [1] * b_only + [0] * neither, dtype=bool)
    return a, b


def test_mcnemar_chi2_matches_statsmodels_and_agresti_example() -> None:
    # Agresti's presidential approval table: 794, 150 / 86, 570.
    a, b = _pairs(794, 150, 86, 570)
    res = mcnemar(a, b)
    ref = sm_mcnemar([[794, 150], [86, 570]], exact=False, correction=True)
    assert res.test == "mcnemar_chi2_cc"
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    assert res.statistic == pytest.approx((abs(150 - 86) - 1) ** 2 / (150 + 86))
    assert res.effect_size == pytest.approx((86 - 150) / 1600)
    assert res.extra["odds_ratio_discordant"] == pytest.approx(86 / 150)
    assert res.n == 1600


def test_mcnemar_exact_below_25_discordant_pairs() -> None:
    a, b = _pairs(30, 2, 10, 8)
    res = mcnemar(a, b)
    assert res.test == "mcnemar_exact"
    # two-sided binomial: 2 * P(X <= 2 | 12, 0.5) = 2 * (1 + 12 + 66) / 4096
    assert res.p == pytest.approx(2 * 79 / 4096)
    assert res.p == pytest.approx(sm_mcnemar([[30, 2], [10, 8]], exact=True).pvalue)
    assert res.effect_size == pytest.approx(8 / 50)


def test_mcnemar_edge_cases() -> None:
    same = mcnemar([1, 0, 1], [1, 0, 1])
    assert same.p == pytest.approx(1.0) and same.effect_size == 0.0
    assert math.isnan(same.extra["odds_ratio_discordant"])
    assert math.isinf(mcnemar([0, 0], [1, 1]).extra["odds_ratio_discordant"])
    with pytest.raises(ValueError):
        mcnemar([1, 2], [1, 0])
    with pytest.raises(ValueError):
        mcnemar([1, 0], [1])


def test_rank_biserial_hand_values() -> None:
    # |d| ranks 1,2,3,4; R+ = 1+2+3 = 6, R- = 4 -> r = 2/10
    assert rank_biserial([1, 2, 3, -4]) == pytest.approx(0.2)
    # pratt ranks zeros (rank 1) then drops them: R+ = 2+3 = 5, R- = 4 -> 1/9
    assert rank_biserial([0, 1, 2, -3], "pratt") == pytest.approx(1 / 9)
    assert rank_biserial([0, 1, 2, -3], "wilcox") == pytest.approx((3 - 3) / 6)
    assert math.isnan(rank_biserial([0, 0]))


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
def test_wilcoxon_matches_scipy(zero_method: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 60).astype(float)
    b = np.clip(a + rng.integers(-1, 3, 60), 0, 5)
    res = wilcoxon_signed_rank(a, b, zero_method)  # type: ignore[arg-type]
    ref = sps.wilcoxon(b - a, zero_method=zero_method)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    assert res.effect_size == pytest.approx(rank_biserial(b - a, zero_method))  # type: ignore[arg-type]
    assert res.effect_size > 0
    # with no ties in |d|: r = 1 - 2 * min(R+, R-) / S when B is higher
    d = np.array([0.5, 1.1, -0.2, 2.3, 0.7, -0.9, 1.6, 3.1])
    res2 = wilcoxon_signed_rank(np.zeros(8), d)
    assert res2.effect_size == pytest.approx(1 - 2 * res2.statistic / 36)


def test_wilcoxon_detects_effect_and_not_null() -> None:
    rng = np.random.default_rng(42)
    a = rng.normal(size=80)
    assert wilcoxon_signed_rank(a, a + 0.5 + rng.normal(0, 0.5, 80)).p < 0.01
    assert wilcoxon_signed_rank(a, a + rng.normal(0, 0.5, 80)).p > 0.05


def test_wilcoxon_all_ties_and_nan_pairs() -> None:
    res = wilcoxon_signed_rank([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert res.p == 1.0 and res.effect_size == 0.0
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0])
    y = np.array([2.0, 2.5, 1.0, 5.5, 5.2, 7.0, 9.0])
    keep = ~np.isnan(x)
    assert wilcoxon_signed_rank(x, y).p == pytest.approx(sps.wilcoxon(y[keep] - x[keep]).pvalue)
    assert wilcoxon_signed_rank(x, y).n == 6


def test_paired_bootstrap_diff_ci_is_scipy_and_p_tracks_t_test() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=200)
    b = a + rng.normal(0.17, 1, 200)
    res = paired_bootstrap_diff(a, b, n_resamples=5000, seed=1)
    ref = sps.bootstrap(
        (b - a,), np.mean, n_resamples=5000, method="percentile", rng=np.random.default_rng(1)
    ).confidence_interval
    assert res.delta == pytest.approx(float(np.mean(b - a)))
    assert (res.ci.lo, res.ci.hi) == pytest.approx((ref.low, ref.high))
    assert res.p == pytest.approx(sps.ttest_rel(b, a).pvalue, abs=0.005)
    delta, ci, p = res
    assert (delta, ci, p) == (res.delta, res.ci, res.p)


def test_paired_bootstrap_detects_effect_and_not_null() -> None:
    rng = np.random.default_rng(7)
    a = rng.binomial(1, 0.6, 300).astype(float)
    better = np.where(rng.random(300) < 0.2, 1.0, a)
    assert paired_bootstrap_diff(a, better, seed=0).p < 0.01
    same_rate = rng.binomial(1, 0.6, 300).astype(float)
    null = paired_bootstrap_diff(a, same_rate, seed=0)
    assert null.p > 0.05 and null.ci.contains(0.0)


def test_paired_bootstrap_degenerate() -> None:
    same = paired_bootstrap_diff([1.0, 2.0], [1.0, 2.0], n_resamples=99)
    assert same.delta == 0 and same.p == 1.0
    shift = paired_bootstrap_diff([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], n_resamples=99)
    assert shift.ci.lo == shift.ci.hi == 1.0 and shift.p == pytest.approx(1 / 100)
    assert math.isnan(paired_bootstrap_diff([1.0], [2.0]).p)


def test_friedman_matches_scipy_and_kendall_w_hand_formula() -> None:
    m = np.array(
        [[1.0, 2.0, 3.0], [2.0, 3.0, 1.0], [1.5, 2.5, 3.5], [1.0, 3.0, 2.0], [0.5, 1.5, 2.5]]
    )
    res = friedman(m)
    ref = sps.friedmanchisquare(*m.T)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    ranks = np.apply_along_axis(sps.rankdata, 1, m)
    n, k = m.shape
    s = float(np.sum((ranks.sum(axis=0) - n * (k + 1) / 2) ** 2))
    assert res.effect_size == pytest.approx(12 * s / (n**2 * (k**3 - k)))


def test_friedman_detects_trend_drops_nan_rows_and_validates() -> None:
    rng = np.random.default_rng(5)
    m = rng.normal(size=(30, 4)) + np.array([0.0, -0.5, -1.0, -1.5])
    assert friedman(m).p < 0.01 and friedman(m).effect_size > 0.3
    assert friedman(rng.normal(size=(30, 4))).p > 0.05
    with_nan = np.vstack([m, [np.nan, 1.0, 2.0, 3.0]])
    assert friedman(with_nan).n == 30
    with pytest.raises(ValueError):
        friedman(m[:, :2])
