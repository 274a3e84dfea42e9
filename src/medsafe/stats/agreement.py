"""Agreement between judges: Cohen's kappa, Krippendorff's alpha, Spearman, disagreements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import krippendorff
import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from medsafe.stats._resample import as_float_1d
from medsafe.stats.calibration import weighted_kappa
from medsafe.stats.results import Disagreements, TestResult


def cohen_kappa(
    a: ArrayLike,
    b: ArrayLike,
    weights: Literal["linear", "quadratic"] | None = None,
    labels: Sequence[Any] | None = None,
) -> float:
    """Cohen's kappa (1960), or weighted kappa (1968) with linear or quadratic weights on the
    label positions (as scikit-learn's ``cohen_kappa_score``, checked against it in tests).

    ``labels`` fixes the label order (default: the sorted union); pairs with a label outside it
    are left out. NaN when kappa is undefined (no pairs, or chance agreement is perfect).
    """
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("a and b must be 1-D and equally long")
    labs = list(np.unique(np.concatenate([x, y]))) if labels is None else list(labels)
    index = {label: i for i, label in enumerate(labs)}
    pairs = [(index[u], index[v]) for u, v in zip(x.tolist(), y.tolist(), strict=True)
             if u in index and v in index]  # fmt: skip
    k = len(labs)
    if not pairs or k == 0:
        return float("nan")
    codes = np.asarray(pairs, dtype=np.intp)
    cm = np.bincount(codes[:, 0] * k + codes[:, 1], minlength=k * k).reshape(k, k)
    pos = np.arange(k, dtype=np.float64)
    gap = np.abs(pos[:, None] - pos[None, :])
    w = {None: 1.0 - np.eye(k), "linear": gap, "quadratic": gap**2}[weights]
    return float(weighted_kappa(cm.astype(np.float64), w))


def krippendorff_alpha(
    ratings: ArrayLike, level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal"
) -> float:
    """Krippendorff's (2011) alpha for judges x items ratings, NaN = missing.

    Uses the ``krippendorff`` package (coincidence-matrix formula). NaN when alpha is
    undefined: no item rated by two judges, or a single value used throughout.
    """
    data = np.asarray(ratings, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"ratings must be 2-D (judges x items), got shape {data.shape}")
    pairable = np.sum(~np.isnan(data), axis=0) >= 2
    values = np.unique(data[:, pairable][~np.isnan(data[:, pairable])])
    if not pairable.any() or values.size < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def spearman(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Spearman rank correlation over pairs where both are finite (``scipy.stats.spearmanr``)."""
    x, y = as_float_1d(a, "a"), as_float_1d(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b differ in length: {x.size} != {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        nan = float("nan")
        return TestResult("spearman", nan, nan, nan, "spearman_rho", n)
    res = sps.spearmanr(x, y)
    rho = float(res.statistic)
    return TestResult("spearman", rho, float(res.pvalue), rho, "spearman_rho", n)


def disagreements(a: ArrayLike, b: ArrayLike, threshold: float) -> Disagreements:
    """Items where ``|a - b| > threshold``; pairs with a NaN are neither counted nor flagged."""
    x, y = as_float_1d(a, "a"), as_float_1d(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b differ in length: {x.size} != {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    flagged = keep & (np.abs(x - y) > threshold)
    n = int(keep.sum())
    share = float(flagged.sum() / n) if n else float("nan")
    return Disagreements(tuple(int(i) for i in np.flatnonzero(flagged)), share, n, threshold)
