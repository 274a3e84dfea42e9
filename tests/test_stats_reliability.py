"""Fleiss' kappa, Gwet's AC1 and Krippendorff's alpha of many raters, with bootstrap CIs.

References: statsmodels' ``fleiss_kappa`` (equal raters per unit), the ``krippendorff``
package, figures printed by irrCAC 0.4.4 (Gwet's own package, run once in a separate venv:
it pins scipy 1.12) and a 2 x 2 table worked by hand.
"""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from medsafe.stats.reliability import (
    counts_table,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha_counts,
    percent_agreement,
    reliability,
)

# Four raters, twelve units, five categories, some ratings missing (units 10-12).
GWET_UNITS = [
    ["a"] * 4,
    ["a", "b", "b", "b"],
    ["b"] * 4,
    ["b"] * 4,
    ["b", "c", "b", "b"],
    ["c"] * 4,
    ["c", "c", "c", "d"],
    ["c", "c", "c", "d"],
    ["e"] * 4,
    ["e"] * 3,
    ["a", "a", "b"],
    ["d", "d"],
]


def test_many_raters_with_missing_ratings_match_irrcac() -> None:
    table = counts_table(GWET_UNITS, "abcde")
    # irrCAC 0.4.4: CAC(df, categories=[a..e]).gwet() / .fleiss() / .krippendorff()
    assert gwet_ac1(table) == pytest.approx(0.72425, abs=5e-6)
    assert fleiss_kappa(table) == pytest.approx(0.71382, abs=5e-6)
    assert krippendorff_alpha_counts(table) == pytest.approx(0.70867, abs=5e-6)


def test_dominant_label_kappa_paradox_matches_irrcac() -> None:
    units = [["safe", "safe"]] * 17 + [["safe", "unsafe"], ["unsafe", "unsafe"], ["safe"] * 2]
    table = counts_table(units, ["safe", "unsafe"])
    assert gwet_ac1(table) == pytest.approx(0.94194, abs=5e-6)
    assert fleiss_kappa(table) == pytest.approx(0.63964, abs=5e-6)


def test_two_by_two_by_hand() -> None:
    # 10 units, two raters: 6 yes/yes, 1 yes/no, 1 no/yes, 2 no/no.
    units = [["y", "y"]] * 6 + [["y", "n"], ["n", "y"]] + [["n", "n"]] * 2
    table = counts_table(units, ["y", "n"])
    po = 0.8
    pi_y = (6 + 0.5 + 0.5) / 10  # mean share of "y" per unit = 0.7
    pe_ac1 = 2 * pi_y * (1 - pi_y) / (2 - 1)  # 0.42
    pe_fleiss = pi_y**2 + (1 - pi_y) ** 2  # 0.58
    assert percent_agreement(table) == pytest.approx(po)
    assert gwet_ac1(table) == pytest.approx((po - pe_ac1) / (1 - pe_ac1))
    assert fleiss_kappa(table) == pytest.approx((po - pe_fleiss) / (1 - pe_fleiss))


def test_equal_raters_match_statsmodels_and_krippendorff() -> None:
    rng = np.random.default_rng(3)
    raters = rng.choice(4, size=(3, 40), p=[0.5, 0.3, 0.15, 0.05])  # raters x units
    table = counts_table([list(raters[:, u]) for u in range(40)], [0, 1, 2, 3])
    assert fleiss_kappa(table) == pytest.approx(sm_fleiss(table, method="fleiss"))
    for level in ("nominal", "ordinal", "interval"):
        ref = krippendorff.alpha(reliability_data=raters.astype(float), level_of_measurement=level)
        assert krippendorff_alpha_counts(table, level) == pytest.approx(ref)


def test_undefined_cases_are_nan() -> None:
    assert math.isnan(fleiss_kappa(np.zeros((0, 2))))
    assert math.isnan(gwet_ac1([[1, 0], [0, 1]]))  # no unit rated twice
    assert math.isnan(krippendorff_alpha_counts([[2, 0], [3, 0]]))  # one value throughout
    assert gwet_ac1([[2, 0], [3, 0]]) == pytest.approx(1.0)  # AC1 stays defined
    with pytest.raises(ValueError, match="'z' is not one of"):
        counts_table([["z"]], ["a"])


def test_bootstrap_intervals_cover_the_estimate_and_are_seeded() -> None:
    table = counts_table(GWET_UNITS, "abcde")
    first = reliability(table, n_resamples=400, seed=1)
    again = reliability(table, n_resamples=400, seed=1)
    assert first == again
    assert first.n_units == 12 and first.n_ratings == 44
    for est in (first.fleiss_kappa, first.gwet_ac1, first.krippendorff_alpha):
        assert est.ci.lo <= est.value <= est.ci.hi
        assert 0.2 < est.ci.width < 1.0
    assert first.to_dict()["gwet_ac1"] == {
        "value": first.gwet_ac1.value,
        "ci95": [first.gwet_ac1.ci.lo, first.gwet_ac1.ci.hi],
    }


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_vectorised_alpha_equals_the_krippendorff_package(level: str) -> None:
    from medsafe.stats.reliability import alpha_many

    rng = np.random.default_rng(7)
    for _ in range(40):
        q, n = int(rng.integers(2, 6)), int(rng.integers(2, 25))
        table = np.stack(
            [rng.multinomial(int(rng.integers(1, 5)), rng.dirichlet(np.ones(q))) for _ in range(n)]
        ).astype(float)
        values = sorted(rng.choice(20, q, replace=False).tolist())
        ref = krippendorff_alpha_counts(table, level, values)  # type: ignore[arg-type]
        got = float(alpha_many(table[None], level, values)[0])  # type: ignore[arg-type]
        assert (math.isnan(ref) and math.isnan(got)) or got == pytest.approx(ref, abs=1e-12)
