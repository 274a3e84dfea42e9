"""Tests for medsafe.stats.intervals."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from medsafe.stats import Interval, bootstrap_ci, cluster_bootstrap_ci, wilson


def test_wilson_matches_statsmodels_and_textbook_value() -> None:
    ci = wilson(81, 263)
    lo, hi = proportion_confint(81, 263, alpha=0.05, method="wilson")
    assert (ci.lo, ci.hi) == pytest.approx((lo, hi), abs=1e-12)
    assert (round(ci.lo, 4), round(ci.hi, 4)) == (0.2553, 0.3662)
    assert ci.method == "wilson" and ci.level == 0.95


def test_wilson_matches_hand_formula_at_90_percent() -> None:
    k, n, z = 7, 40, sps.norm.ppf(0.95)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    ci = wilson(k, n, level=0.90)
    assert (ci.lo, ci.hi) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_wilson_empty_and_invalid() -> None:
    ci = wilson(0, 0)
    assert math.isnan(ci.lo) and math.isnan(ci.hi)
    assert ci.to_dict()["lo"] is None
    with pytest.raises(ValueError):
        wilson(5, 3)
    with pytest.raises(ValueError):
        wilson(1, 3, level=1.5)


def test_bootstrap_ci_matches_scipy_with_same_seed() -> None:
    x = np.random.default_rng(1).exponential(size=60)
    for method in ("percentile", "bca"):
        ours = bootstrap_ci(x, method=method, n_resamples=999, seed=7)
        ref = sps.bootstrap(
            (x,), np.mean, n_resamples=999, method=method, rng=np.random.default_rng(7)
        ).confidence_interval
        assert (ours.lo, ours.hi) == pytest.approx((ref.low, ref.high), rel=1e-12)
        assert ours.method == method


def test_bootstrap_ci_is_deterministic_and_covers_mean() -> None:
    x = np.random.default_rng(2).normal(3.0, 1.0, size=200)
    a = bootstrap_ci(x, seed=11)
    b = bootstrap_ci(x, seed=np.random.default_rng(11))
    assert a == b
    assert a.contains(float(x.mean()))
    assert a.contains(3.0)
    assert bootstrap_ci(x, seed=12) != a


def test_bootstrap_ci_other_statistic_and_edge_cases() -> None:
    x = np.random.default_rng(3).normal(size=101)
    med = bootstrap_ci(x, np.median, seed=0)
    assert med.contains(float(np.median(x)))
    assert bootstrap_ci([2.0, 2.0, 2.0]) == Interval(2.0, 2.0, "percentile", 0.95)
    single = bootstrap_ci([1.0, float("nan")])
    assert math.isnan(single.lo) and math.isnan(single.hi)
    with_nan = bootstrap_ci(np.append(x, np.nan), seed=0)
    assert with_nan == bootstrap_ci(x, seed=0)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_cluster_bootstrap_with_singleton_clusters_equals_scipy(method: str) -> None:
    x = np.random.default_rng(4).exponential(size=80)
    ours = cluster_bootstrap_ci(x, np.arange(80), method=method, n_resamples=999, seed=5)  # type: ignore[arg-type]
    ref = sps.bootstrap(
        (x,), np.mean, n_resamples=999, method=method, rng=np.random.default_rng(5)
    ).confidence_interval
    assert (ours.lo, ours.hi) == pytest.approx((ref.low, ref.high), rel=1e-10)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_cluster_generic_statistic_path_equals_fast_mean_path(method: str) -> None:
    rng = np.random.default_rng(6)
    clusters = rng.integers(0, 30, size=300)
    x = rng.normal(size=30)[clusters] + rng.normal(size=300)
    fast = cluster_bootstrap_ci(x, clusters, method=method, n_resamples=300, seed=9)  # type: ignore[arg-type]
    slow = cluster_bootstrap_ci(x, clusters, np.mean, method=method, n_resamples=300, seed=9)  # type: ignore[arg-type]
    assert (slow.lo, slow.hi) == pytest.approx((fast.lo, fast.hi), rel=1e-10)


def test_cluster_bootstrap_wider_than_naive_on_clustered_data() -> None:
    rng = np.random.default_rng(8)
    clusters = np.repeat(np.arange(40), 25)
    x = rng.normal(0, 1, 40)[clusters] + rng.normal(0, 0.1, clusters.size)
    naive = bootstrap_ci(x, seed=0)
    clustered = cluster_bootstrap_ci(x, clusters, seed=0)
    assert clustered.width > 3 * naive.width
    assert clustered.contains(float(x.mean()))


def test_cluster_bootstrap_string_labels_nan_and_degenerate() -> None:
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    labels = np.array(["a", "a", "b", "b", "c", "c"])
    ci = cluster_bootstrap_ci(x, labels, seed=0)
    assert ci.lo >= 1.5 and ci.hi <= 5.5
    one = cluster_bootstrap_ci([1.0, 2.0], ["x", "x"])
    assert math.isnan(one.lo)
    with pytest.raises(ValueError):
        cluster_bootstrap_ci([1.0, 2.0], ["x"])


def test_cluster_bootstrap_is_fast_on_large_inputs() -> None:
    rng = np.random.default_rng(10)
    clusters = rng.integers(0, 10_000, size=200_000)
    x = rng.normal(size=200_000)
    start = time.perf_counter()
    ci = cluster_bootstrap_ci(x, clusters, n_resamples=2000, seed=0)
    assert time.perf_counter() - start < 10.0
    assert ci.contains(float(x.mean()))
