"""Prevalence corrected for judge error (Rogan & Gladen 1978)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from medsafe.stats._resample import (
    FloatArray,
    Seed,
    as_float_1d,
    check_level,
    check_resamples,
    interval_bounds,
    rng_from,
)
from medsafe.stats.results import Estimate, Interval


def _rogan_gladen(p_obs: FloatArray, sens: FloatArray, spec: FloatArray) -> FloatArray:
    den = sens + spec - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = (p_obs + spec - 1.0) / den
    out: FloatArray = np.where(den > 0, np.clip(raw, 0.0, 1.0), np.nan)
    return out


def corrected_rate(observed_positive_rate: float, sensitivity: float, specificity: float) -> float:
    """Rogan-Gladen true rate ``(p_obs + spec - 1) / (sens + spec - 1)``, clipped to [0, 1].

    NaN when ``sens + spec <= 1`` (the judge is no better than chance).
    """
    for name, v in (
        ("observed_positive_rate", observed_positive_rate),
        ("sensitivity", sensitivity),
        ("specificity", specificity),
    ):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    arr = _rogan_gladen(
        np.array(observed_positive_rate), np.array(sensitivity), np.array(specificity)
    )
    return float(arr)


def _counts(pair: tuple[int, int], name: str) -> tuple[int, int]:
    hits, total = int(pair[0]), int(pair[1])
    if total < 1 or not 0 <= hits <= total:
        raise ValueError(f"{name} must be (hits, total) with 0 <= hits <= total, total >= 1")
    return hits, total


def corrected_rate_ci(
    flags: ArrayLike,
    sens_counts: tuple[int, int],
    spec_counts: tuple[int, int],
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: Seed = 0,
) -> Estimate:
    """Rogan-Gladen rate from judge ``flags`` (0/1, NaN dropped) with a bootstrap CI.

    ``sens_counts = (flagged, n)`` over calibration items humans call positive and
    ``spec_counts = (not flagged, n)`` over those humans call negative. Each resample redraws
    the observed rate and both calibration proportions; for binary data resampling items
    with replacement is a binomial draw, which is what is used. Resamples where
    ``sens + spec <= 1`` are dropped from the percentile interval.
    """
    check_level(level)
    check_resamples(n_resamples)
    f = as_float_1d(flags, "flags")
    f = f[np.isfinite(f)]
    if f.size == 0 or not np.isin(f, (0.0, 1.0)).all():
        raise ValueError("flags must be a non-empty 0/1 vector")
    tp, n_pos = _counts(sens_counts, "sens_counts")
    tn, n_neg = _counts(spec_counts, "spec_counts")
    p_obs, sens, spec = float(f.mean()), tp / n_pos, tn / n_neg
    value = corrected_rate(p_obs, sens, spec)
    rng = rng_from(seed)
    boot = _rogan_gladen(
        rng.binomial(f.size, p_obs, n_resamples) / f.size,
        rng.binomial(n_pos, sens, n_resamples) / n_pos,
        rng.binomial(n_neg, spec, n_resamples) / n_neg,
    )
    lo, hi = interval_bounds(value, boot, level, "percentile")
    return Estimate(value, Interval(lo, hi, "bootstrap_percentile", level))
