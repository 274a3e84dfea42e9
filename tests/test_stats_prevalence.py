"""Tests for medsafe.stats.prevalence (Rogan-Gladen)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsafe.stats import corrected_rate, corrected_rate_ci


def test_rogan_gladen_hand_values() -> None:
    # (0.2 + 0.95 - 1) / (0.9 + 0.95 - 1) = 0.15 / 0.85
    assert corrected_rate(0.2, 0.9, 0.95) == pytest.approx(0.15 / 0.85)
    assert corrected_rate(0.3, 1.0, 1.0) == pytest.approx(0.3)
    assert corrected_rate(0.01, 0.9, 0.95) == 0.0  # raw -0.047 clipped
    assert corrected_rate(0.99, 0.9, 0.95) == 1.0  # raw 1.106 clipped
    assert math.isnan(corrected_rate(0.3, 0.5, 0.5))
    with pytest.raises(ValueError):
        corrected_rate(1.2, 0.9, 0.9)


def test_ci_contains_estimate_and_shrinks_with_more_calibration() -> None:
    flags = np.array([1] * 60 + [0] * 240)
    small = corrected_rate_ci(flags, (18, 20), (38, 40), seed=0)
    large = corrected_rate_ci(flags, (900, 1000), (1900, 2000), seed=0)
    assert small.value == pytest.approx(corrected_rate(0.2, 0.9, 0.95))
    assert small.ci.lo <= small.value <= small.ci.hi
    assert large.ci.width < small.ci.width
    assert small == corrected_rate_ci(flags, (18, 20), (38, 40), seed=0)


def test_ci_coverage_by_simulation() -> None:
    rng = np.random.default_rng(0)
    true_rate, sens, spec = 0.15, 0.85, 0.9
    hits = 0
    trials = 300
    for _ in range(trials):
        truth = rng.random(400) < true_rate
        flags = np.where(truth, rng.random(400) < sens, rng.random(400) > spec)
        tp = rng.binomial(150, sens)
        tn = rng.binomial(300, spec)
        est = corrected_rate_ci(flags.astype(float), (tp, 150), (tn, 300), seed=rng)
        hits += est.ci.contains(true_rate)
    assert 0.90 <= hits / trials <= 0.99


def test_validation() -> None:
    with pytest.raises(ValueError):
        corrected_rate_ci([0, 2], (1, 2), (1, 2))
    with pytest.raises(ValueError):
        corrected_rate_ci([0, 1], (3, 2), (1, 2))
    with pytest.raises(ValueError):
        corrected_rate_ci([np.nan], (1, 2), (1, 2))
