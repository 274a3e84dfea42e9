"""Minimum detectable effect for paired (McNemar) and unpaired proportion comparisons."""

from __future__ import annotations

import math

from scipy.optimize import brentq
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower

from medsafe.stats.results import DetectableEffect


def connor_n(
    delta: float, discordant_rate: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Pairs needed for McNemar's test (Connor 1987).

    ``n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2`` where
    ``psi`` is the discordant-pair rate and ``delta = p01 - p10`` the accuracy difference.
    """
    psi = discordant_rate
    if not 0 < abs(delta) <= psi <= 1:
        raise ValueError(f"need 0 < |delta| <= discordant_rate <= 1, got {delta}, {psi}")
    z_a, z_b = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    return float((z_a * math.sqrt(psi) + z_b * math.sqrt(psi - delta**2)) ** 2 / delta**2)


def _paired_mde(n: int, p0: float, alpha: float, power: float, psi: float | None) -> float:
    """Solve Connor's formula for delta; psi from independence when not given."""

    def rate(delta: float) -> float:
        if psi is not None:
            return psi
        p1 = p0 + delta
        return p0 * (1 - p1) + p1 * (1 - p0)

    z_a, z_b = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))

    def gap(delta: float) -> float:
        r = rate(delta)
        return math.sqrt(n) * delta - z_a * math.sqrt(r) - z_b * math.sqrt(max(r - delta**2, 0.0))

    upper = psi if psi is not None else 1.0 - p0
    if upper <= 0 or gap(upper) < 0:
        return float("nan")
    return float(brentq(gap, 1e-12, upper, xtol=1e-12))


def _unpaired_mde(n: int, p0: float, alpha: float, power: float) -> float:
    """Cohen's h from statsmodels NormalIndPower, mapped back to a difference in proportions."""
    h = NormalIndPower().solve_power(
        effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    angle = math.asin(math.sqrt(p0)) + float(h) / 2
    if angle > math.pi / 2:
        return float("nan")
    return math.sin(angle) ** 2 - p0


def minimum_detectable_effect(
    n: int,
    p0: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    paired: bool = True,
    discordant_rate: float | None = None,
) -> DetectableEffect:
    """Smallest increase in a proportion over ``p0`` detectable with ``power`` at ``alpha``.

    Paired (``n`` items scored by both runs, McNemar): Connor (1987) solved for ``delta``;
    the discordant rate defaults to ``p0(1-p1) + p1(1-p0)`` (runs err independently).
    Unpaired (``n`` per group): two-sided z-test on Cohen's h via statsmodels
    ``NormalIndPower``. ``p0`` defaults to 0.5 (the largest variance). NaN if no difference
    in range is detectable.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must lie in (0, 1)")
    base = 0.5 if p0 is None else p0
    if not 0 <= base <= 1:
        raise ValueError(f"p0 must lie in [0, 1], got {p0}")
    if discordant_rate is not None and not 0 < discordant_rate <= 1:
        raise ValueError(f"discordant_rate must lie in (0, 1], got {discordant_rate}")
    if paired:
        effect = _paired_mde(n, base, alpha, power, discordant_rate)
        design = "paired_mcnemar_connor"
    else:
        effect = _unpaired_mde(n, base, alpha, power)
        design = "unpaired_two_proportions"
    return DetectableEffect(effect, n, alpha, power, design, base, discordant_rate)
