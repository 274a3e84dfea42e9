"""The decision rule: pass / fail / inconclusive on a confidence bound, and the n that decides.

A bound rule ``upper <= b`` passes when the interval's upper end is at most ``b``, fails when
its lower end is above ``b`` (the whole interval breaks the bound) and is *inconclusive* when
the interval straddles ``b``; ``lower >= b`` mirrors it. A non-inferiority rule passes when
its Holm-adjusted one-sided p-value is below its alpha, fails when the ``1 - 2 alpha`` interval
of the difference lies wholly beyond the margin, and is inconclusive otherwise.
docs/governance.md, "Decision rule", gives the formulas and citations. The simulation study
(bench/gate_simulation.py) calls these same functions.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

from medsafe.gate.policy import Side
from medsafe.stats.noninferiority import NonInferiority, wilson_n_needed
from medsafe.stats.normal import Z95, wilson_bounds, z_for

Outcome = Literal["pass", "fail", "inconclusive"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "inconclusive")


def decide_bound(ci: tuple[float, float], side: Side, bound: float) -> Outcome:
    """The outcome of a bound on one end of the interval ``ci``."""
    lo, hi = ci
    if side == "upper":
        if hi <= bound:
            return "pass"
        return "fail" if lo > bound else "inconclusive"
    if lo >= bound:
        return "pass"
    return "fail" if hi < bound else "inconclusive"


def wilson_at(value: float, n: int, level: float) -> tuple[float, float]:
    """The Wilson interval of the proportion ``value`` of ``n`` at ``level``."""
    bounds = wilson_bounds(round(value * n), n, level)
    if bounds is None:
        raise ValueError("no units: no interval")
    return bounds


def rescaled(value: float, ci95: tuple[float, float], level: float) -> tuple[float, float]:
    """A 95% interval moved to ``level``: each half-width times ``z_level / z_0.975``."""
    if level == 0.95:
        return ci95
    f = z_for(level) / Z95
    return value - (value - ci95[0]) * f, value + (ci95[1] - value) * f


def scaled_n_needed(
    value: float, ci: tuple[float, float], n: int, side: Side, bound: float
) -> int | None:
    """The n at which an interval of the same spread, shrinking as ``1/sqrt(n)``, would clear
    ``bound`` at the observed ``value`` (the rule for means, medians and corrected rates)."""
    if value == bound or n <= 0:
        return None
    towards_pass = value < bound if side == "upper" else value > bound
    use_hi = towards_pass == (side == "upper")
    width = (ci[1] - value) if use_hi else (value - ci[0])
    gap = abs(bound - value)
    if width <= 0:
        return None
    return max(n + 1, math.ceil(n * (width / gap) ** 2))


def bound_n_needed(
    kind: str, value: float, ci: tuple[float, float], n: int, side: Side, bound: float, level: float
) -> tuple[int | None, str]:
    """``(n_needed, how)`` for an inconclusive bound rule: Wilson for a Wilson proportion, else
    the ``1/sqrt(n)`` scaling."""
    if kind == "proportion":
        return wilson_n_needed(value, bound, side, level), "wilson"
    return scaled_n_needed(value, ci, n, side, bound), "scaled"


def decide_noninferiority(result: NonInferiority, p_adjusted: float) -> Outcome:
    """Pass when the Holm-adjusted p is below alpha; fail when the interval's lower end (harm
    orientation) reaches the margin; otherwise inconclusive."""
    if p_adjusted < result.alpha:
        return "pass"
    if result.ci[0] >= result.margin:
        return "fail"
    return "inconclusive"


def noninferiority_n_needed(result: NonInferiority) -> int | None:
    """Units (clusters) at which the one-sided test at the observed difference and spread would
    just reject: ``k (z_{1-alpha} se / (margin - d))^2``; None when ``d >= margin``."""
    gap = result.margin - result.d
    if gap <= 0 or result.se <= 0:
        return None
    z = NormalDist().inv_cdf(1 - result.alpha)
    k = result.n_clusters
    return max(k + 1, math.ceil(k * (z * result.se / gap) ** 2))


def overall(outcomes: list[Outcome]) -> Outcome:
    """Fail if any rule fails, else inconclusive if any is, else pass."""
    if "fail" in outcomes:
        return "fail"
    return "inconclusive" if "inconclusive" in outcomes else "pass"
