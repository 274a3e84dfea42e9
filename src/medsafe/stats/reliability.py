"""Inter-rater reliability of many raters on many units: Fleiss' kappa, Gwet's AC1 and
Krippendorff's alpha, each with a bootstrap confidence interval over units.

Every statistic reads one *counts table*: one row per unit, one column per category, cell
``n[u, c]`` = how many raters put unit ``u`` in category ``c`` (raters may differ per unit;
units rated by fewer than two raters carry no agreement information and are left out).

- Fleiss' kappa (Fleiss 1971), in the form for a varying number of raters per unit:
  ``P_u = sum_c n_uc (n_uc - 1) / (m_u (m_u - 1))``, ``P_o = mean_u P_u``,
  ``pi_c = mean_u n_uc / m_u``, ``P_e = sum_c pi_c^2``, ``kappa = (P_o - P_e) / (1 - P_e)``
  (Gwet's 2014 generalisation to missing ratings, as irrCAC computes it; equal to statsmodels'
  ``fleiss_kappa`` when every unit has the same number of raters).
- Gwet's AC1 (Gwet 2008): the same ``P_o`` and ``pi_c``,
  ``P_e = sum_c pi_c (1 - pi_c) / (q - 1)`` over the ``q`` categories of the scheme (not only
  those used), ``AC1 = (P_o - P_e) / (1 - P_e)``. Unlike kappa it does not collapse when one
  category dominates (the kappa paradoxes, Feinstein & Cicchetti 1990).
- Krippendorff's alpha (Krippendorff 2004, 2011) at a level of measurement (nominal,
  ordinal, interval), from the ``krippendorff`` package's coincidence-matrix formula.

Confidence intervals: percentile bootstrap over units (units resampled with replacement,
seeded); NaN statistics of a resample (e.g. all in one category) are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import krippendorff
import numpy as np
from numpy.typing import ArrayLike, NDArray

from medsafe.stats._resample import Seed, check_level, check_resamples, rng_from
from medsafe.stats.results import Estimate, Interval

Level = Literal["nominal", "ordinal", "interval"]
CountsStat = Callable[[NDArray[np.float64]], NDArray[np.float64]]

__all__ = [
    "Reliability",
    "alpha_many",
    "counts_table",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha_counts",
    "percent_agreement",
    "reliability",
]


def counts_table(
    ratings: Sequence[Sequence[object]], categories: Sequence[object]
) -> NDArray[np.float64]:
    """The units x categories counts table of ``ratings`` (one list of labels per unit).

    A label not in ``categories`` raises ValueError (naming it and the unit's position).
    """
    index = {c: j for j, c in enumerate(categories)}
    table = np.zeros((len(ratings), len(categories)), dtype=np.float64)
    for u, labels in enumerate(ratings):
        for label in labels:
            if label not in index:
                raise ValueError(f"unit {u}: label {label!r} is not one of {list(categories)}")
            table[u, index[label]] += 1
    return table


def _as_table(counts: ArrayLike) -> NDArray[np.float64]:
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2:
        raise ValueError(f"counts must be 2-D (units x categories), got shape {table.shape}")
    if np.any(table < 0):
        raise ValueError("counts must not be negative")
    return table


def _pairable(table: NDArray[np.float64]) -> NDArray[np.float64]:
    """The units (last two axes: units x categories) with at least two ratings."""
    return np.asarray(table[table.sum(axis=1) >= 2], dtype=np.float64)


def _observed(tables: NDArray[np.float64]) -> NDArray[np.float64]:
    """``P_o`` of a stack of tables (..., units, categories); units with m < 2 are weightless
    (their rows must already be removed or be all zero)."""
    m = tables.sum(axis=-1)
    pairs = (tables * (tables - 1.0)).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_unit = np.where(m >= 2, pairs / (m * (m - 1.0)), 0.0)
    n_units = (m >= 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_units > 0, per_unit.sum(axis=-1) / n_units, np.nan)


def _shares(tables: NDArray[np.float64]) -> NDArray[np.float64]:
    """``pi_c``: the mean over units (with two or more ratings) of each category's share."""
    m = tables.sum(axis=-1, keepdims=True)
    n_units = (m[..., 0] >= 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(m >= 2, tables / m, 0.0)
        return np.asarray(shares.sum(axis=-2) / n_units[..., None], dtype=np.float64)


def _fleiss(tables: NDArray[np.float64]) -> NDArray[np.float64]:
    pe = (_shares(tables) ** 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((_observed(tables) - pe) / (1.0 - pe), dtype=np.float64)


def _ac1(tables: NDArray[np.float64]) -> NDArray[np.float64]:
    q = tables.shape[-1]
    pi = _shares(tables)
    pe = (pi * (1.0 - pi)).sum(axis=-1) / (q - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((_observed(tables) - pe) / (1.0 - pe), dtype=np.float64)


def fleiss_kappa(counts: ArrayLike) -> float:
    """Fleiss' (1971) kappa of a units x categories counts table; NaN when undefined (no unit
    with two ratings, or every rating in one category)."""
    table = _pairable(_as_table(counts))
    if table.shape[0] == 0:
        return math.nan
    return float(_fleiss(table))


def gwet_ac1(counts: ArrayLike) -> float:
    """Gwet's (2008) AC1 of a units x categories counts table (the columns are the scheme's
    ``q`` categories, used or not); NaN when undefined (no unit with two ratings, q < 2)."""
    table = _pairable(_as_table(counts))
    if table.shape[0] == 0 or table.shape[1] < 2:
        return math.nan
    return float(_ac1(table))


def percent_agreement(counts: ArrayLike) -> float:
    """``P_o``: the mean share of agreeing rater pairs per unit (units with two ratings)."""
    table = _pairable(_as_table(counts))
    return math.nan if table.shape[0] == 0 else float(_observed(table))


def krippendorff_alpha_counts(
    counts: ArrayLike, level: Level = "nominal", values: Sequence[float] | None = None
) -> float:
    """Krippendorff's alpha of a counts table at ``level`` (``values``: the numeric value of
    each column for the ordinal/interval distance; default 0, 1, 2, ...). NaN when undefined
    (no unit with two ratings, or a single value used throughout)."""
    table = _pairable(_as_table(counts))
    if table.shape[0] == 0 or np.count_nonzero(table.sum(axis=0)) < 2:
        return math.nan
    domain = list(values) if values is not None else list(range(table.shape[1]))
    if len(domain) != table.shape[1]:
        raise ValueError(f"values has {len(domain)} entries for {table.shape[1]} categories")
    return float(
        krippendorff.alpha(
            value_counts=table.astype(np.int64), value_domain=domain, level_of_measurement=level
        )
    )


def alpha_many(
    tables: NDArray[np.float64], level: Level = "nominal", values: Sequence[float] | None = None
) -> NDArray[np.float64]:
    """Krippendorff's alpha of each table of a stack (..., units, categories), vectorised for
    the bootstrap; the same number as :func:`krippendorff_alpha_counts` (checked in tests).

    Coincidences ``o_ck = sum_u n_uc (n_uk - [c = k]) / (m_u - 1)`` over units with
    ``m_u >= 2``, marginals ``n_c``, ``N = sum n_c``; ``alpha = 1 - (N - 1) sum o_ck d_ck /
    sum n_c n_k d_ck`` with ``d`` nominal ``[c != k]``, interval ``(v_c - v_k)^2``, ordinal
    ``(sum_{g=c..k} n_g - (n_c + n_k) / 2)^2``. NaN where undefined.
    """
    q = tables.shape[-1]
    m = tables.sum(axis=-1, keepdims=True)
    used = np.where(m >= 2, tables, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(m >= 2, used / (m - 1.0), 0.0)
    o = np.einsum("...uc,...uk->...ck", scaled, used)
    o -= np.einsum("...uc,ck->...ck", scaled, np.eye(q))
    n_c = o.sum(axis=-1)
    total = n_c.sum(axis=-1)
    if level == "nominal":
        delta = np.broadcast_to(1.0 - np.eye(q), o.shape)
    elif level == "interval":
        v = np.asarray(values if values is not None else range(q), dtype=np.float64)
        delta = np.broadcast_to((v[:, None] - v[None, :]) ** 2, o.shape)
    else:
        cum = np.cumsum(n_c, axis=-1)
        lo = np.minimum.outer(np.arange(q), np.arange(q))
        hi = np.maximum.outer(np.arange(q), np.arange(q))
        between = np.take(cum, hi, axis=-1) - np.take(cum, lo, axis=-1) + np.take(n_c, lo, axis=-1)
        half = (n_c[..., :, None] + n_c[..., None, :]) / 2.0
        delta = (between - half) ** 2
    observed = (o * delta).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * delta).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (total - 1.0) * observed / expected
    return np.asarray(np.where(expected > 0, alpha, np.nan), dtype=np.float64)


@dataclass(frozen=True)
class Reliability:
    """Agreement of many raters on one label: each statistic with its bootstrap 95% CI."""

    n_units: int
    """Units rated at least twice (the units the statistics read)."""
    n_ratings: int
    percent_agreement: Estimate
    fleiss_kappa: Estimate
    gwet_ac1: Estimate
    krippendorff_alpha: Estimate
    alpha_level: Level

    def to_dict(self) -> dict[str, object]:
        """Plain JSON (non-finite floats as None)."""

        def fin(x: float) -> float | None:
            return x if math.isfinite(x) else None

        def est(e: Estimate) -> dict[str, object]:
            return {"value": fin(e.value), "ci95": [fin(e.ci.lo), fin(e.ci.hi)]}

        return {
            "n_units": self.n_units,
            "n_ratings": self.n_ratings,
            "percent_agreement": est(self.percent_agreement),
            "fleiss_kappa": est(self.fleiss_kappa),
            "gwet_ac1": est(self.gwet_ac1),
            "krippendorff_alpha": est(self.krippendorff_alpha),
            "alpha_level": self.alpha_level,
        }


def reliability(
    counts: ArrayLike,
    *,
    level: Level = "nominal",
    values: Sequence[float] | None = None,
    n_resamples: int = 1000,
    seed: Seed = 0,
    conf: float = 0.95,
) -> Reliability:
    """Percent agreement, Fleiss' kappa, Gwet's AC1 and Krippendorff's alpha (at ``level``) of
    a counts table, each with a percentile bootstrap CI over units (``n_resamples``, seeded).

    The same resampled units feed every statistic.
    """
    conf = check_level(conf)
    n_resamples = check_resamples(n_resamples)
    table = _pairable(_as_table(counts))
    rng = rng_from(seed)
    n = table.shape[0]
    idx = rng.integers(0, n, size=(n_resamples, n)) if n else np.zeros((0, 0), dtype=np.int64)

    def boot(stat: CountsStat, theta: float) -> Estimate:
        if n == 0 or not math.isfinite(theta):
            return Estimate(theta, Interval(math.nan, math.nan, "bootstrap", conf))
        out = np.concatenate([stat(table[idx[s : s + 256]]) for s in range(0, n_resamples, 256)])
        out = out[np.isfinite(out)]
        if out.size == 0:
            return Estimate(theta, Interval(math.nan, math.nan, "bootstrap", conf))
        lo, hi = np.quantile(out, [(1.0 - conf) / 2.0, (1.0 + conf) / 2.0])
        return Estimate(theta, Interval(float(lo), float(hi), "bootstrap", conf))

    def alpha_stack(tables: NDArray[np.float64]) -> NDArray[np.float64]:
        return alpha_many(tables, level, values)

    return Reliability(
        n_units=n,
        n_ratings=int(table.sum()),
        percent_agreement=boot(_observed, percent_agreement(table)),
        fleiss_kappa=boot(_fleiss, fleiss_kappa(table)),
        gwet_ac1=boot(_ac1, gwet_ac1(table)) if table.shape[1] >= 2 else boot(_ac1, math.nan),
        krippendorff_alpha=boot(alpha_stack, krippendorff_alpha_counts(table, level, values)),
        alpha_level=level,
    )
