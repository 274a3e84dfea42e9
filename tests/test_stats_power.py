"""Tests for medsafe.stats.power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from medsafe.stats import connor_n, minimum_detectable_effect


def test_unpaired_hand_value_half_vs_sixty_percent() -> None:
    # Classic: 0.5 vs 0.6 at alpha .05, power .8 needs ~388 per group.
    mde = minimum_detectable_effect(388, p0=0.5, paired=False)
    assert mde.effect == pytest.approx(0.1, abs=0.002)
    h = proportion_effectsize(0.5 + mde.effect, 0.5)
    power = NormalIndPower().power(effect_size=h, nobs1=388, alpha=0.05, ratio=1.0)
    assert power == pytest.approx(0.8, abs=1e-6)


def test_connor_round_trip_and_monotone() -> None:
    fixed = minimum_detectable_effect(500, discordant_rate=0.2)
    assert connor_n(fixed.effect, 0.2) == pytest.approx(500)
    free = minimum_detectable_effect(500, p0=0.7)
    p1 = 0.7 + free.effect
    assert connor_n(free.effect, 0.7 * (1 - p1) + p1 * (1 - 0.7)) == pytest.approx(500)
    assert minimum_detectable_effect(2000, discordant_rate=0.2).effect < fixed.effect
    assert minimum_detectable_effect(500, discordant_rate=0.1).effect < fixed.effect


def test_connor_formula_hand_value() -> None:
    # psi = .2, delta = .1: (1.95996 * sqrt(.2) + 0.84162 * sqrt(.19))^2 / .01
    expected = (1.959964 * math.sqrt(0.2) + 0.841621 * math.sqrt(0.19)) ** 2 / 0.01
    assert connor_n(0.1, 0.2) == pytest.approx(expected, rel=1e-5)


def test_paired_mde_has_the_promised_power_by_simulation() -> None:
    n, psi = 400, 0.25
    delta = minimum_detectable_effect(n, discordant_rate=psi).effect
    rng = np.random.default_rng(0)
    probs = [(psi - delta) / 2, (psi + delta) / 2, 1 - psi]
    counts = rng.multinomial(n, probs, size=20_000)
    a_only, b_only = counts[:, 0], counts[:, 1]
    chi2 = (b_only - a_only) ** 2 / np.maximum(a_only + b_only, 1)
    assert np.mean(chi2 > 3.841459) == pytest.approx(0.8, abs=0.02)


def test_undetectable_and_validation() -> None:
    assert math.isnan(minimum_detectable_effect(10, discordant_rate=0.05).effect)
    assert math.isnan(minimum_detectable_effect(5, p0=0.99, paired=False).effect)
    d = minimum_detectable_effect(100).to_dict()
    assert d["p0"] == 0.5 and d["design"] == "paired_mcnemar_connor"
    with pytest.raises(ValueError):
        minimum_detectable_effect(0)
    with pytest.raises(ValueError):
        minimum_detectable_effect(100, discordant_rate=1.5)
    with pytest.raises(ValueError):
        connor_n(0.3, 0.2)
