"""Tests for medsafe.stats.multiple."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from medsafe.stats import adjust_pvalues

P = np.array([0.01, 0.04, 0.03, 0.005])


def test_hand_values() -> None:
    # Holm: sorted p * (4, 3, 2, 1) = .02, .03, .06, .04 -> running max .02, .03, .06, .06
    assert adjust_pvalues(P, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted p * 4 / (1, 2, 3, 4) = .02, .02, .04, .04 (already monotone)
    assert adjust_pvalues(P, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_matches_statsmodels(ours: str, theirs: str) -> None:
    p = np.random.default_rng(0).uniform(0, 0.2, 25)
    assert adjust_pvalues(p, ours) == pytest.approx(multipletests(p, method=theirs)[1])  # type: ignore[arg-type]


def test_nan_passed_through_and_not_counted() -> None:
    out = adjust_pvalues([0.01, np.nan, 0.04, 0.03, 0.005], "holm")
    assert np.isnan(out[1])
    assert out[[0, 2, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjust_pvalues([np.nan, np.nan])).all()


def test_validation() -> None:
    with pytest.raises(ValueError):
        adjust_pvalues([0.1, 1.2])
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "bonferroni")  # type: ignore[arg-type]
