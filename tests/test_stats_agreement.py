"""Tests for medsafe.stats.agreement."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score

from medsafe.stats import cohen_kappa, disagreements, krippendorff_alpha, spearman

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", 4 observers x 12 units.
KRIPP = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)


def test_cohen_kappa_hand_value_and_sklearn() -> None:
    # po = .75, pe = .5 * .25 + .5 * .75 = .5 -> kappa = .5
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 100)
    b = np.clip(a + rng.integers(-1, 2, 100), 0, 4)
    for w in (None, "linear", "quadratic"):
        assert cohen_kappa(a, b, w) == pytest.approx(cohen_kappa_score(a, b, weights=w))
    assert cohen_kappa(a, b, "quadratic") > cohen_kappa(a, b)


def test_krippendorff_published_values() -> None:
    assert krippendorff_alpha(KRIPP, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(KRIPP, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(KRIPP, "interval") == pytest.approx(0.849, abs=5e-4)
    # Same paper, binary data, two observers x ten units: alpha = 0.095.
    binary = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
    assert krippendorff_alpha(binary) == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_two_judges_close_to_kappa_and_undefined_cases() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 500)
    b = np.where(rng.random(500) < 0.7, a, rng.integers(0, 3, 500))
    assert krippendorff_alpha([a, b]) == pytest.approx(cohen_kappa(a, b), abs=0.01)
    assert math.isnan(krippendorff_alpha(np.ones((2, 5))))
    assert math.isnan(krippendorff_alpha([[1, 2, NAN], [NAN, NAN, 1]]))
    with pytest.raises(ValueError):
        krippendorff_alpha([1, 2, 3])


def test_spearman_matches_scipy_dropping_nan_pairs() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, NAN, 6.0, 7.0])
    y = np.array([2.0, 1.0, 4.0, 3.0, 5.0, NAN, 8.0])
    res = spearman(x, y)
    ref = sps.spearmanr([1, 2, 3, 4, 7], [2, 1, 4, 3, 8])
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    assert res.n == 5 and res.effect_size == res.statistic
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]).statistic)


def test_disagreements() -> None:
    res = disagreements([1, 2, 3, NAN, 5], [1, 4, 2, 1, 9], threshold=1)
    assert res.indices == (1, 4)
    assert res.n == 4 and res.share == pytest.approx(0.5)
    assert res.to_dict()["indices"] == [1, 4]
    assert math.isnan(disagreements([NAN], [1.0], 0).share)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_matches_sklearn_on_random_ordinal_labels(
    weights: Literal["linear", "quadratic"] | None, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, 60)
    b = np.clip(a + rng.integers(-2, 3, 60), 1, 5)
    labels = [1, 2, 3, 4, 5]
    ours = cohen_kappa(a, b, weights, labels)
    assert ours == pytest.approx(cohen_kappa_score(a, b, labels=labels, weights=weights))
    strings = cohen_kappa([str(v) for v in a], [str(v) for v in b])
    assert strings == pytest.approx(cohen_kappa_score(a.astype(str), b.astype(str)))
