"""Multiple-comparison adjustment of p-values."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from statsmodels.stats.multitest import multipletests

from medsafe.stats._resample import FloatArray, as_float_1d

_METHODS = {"holm": "holm", "bh": "fdr_bh"}


def adjust_pvalues(p: ArrayLike, method: Literal["holm", "bh"] = "holm") -> FloatArray:
    """Adjusted p-values: Holm (1979) family-wise or Benjamini-Hochberg (1995) FDR.

    Uses ``statsmodels.stats.multitest.multipletests``. NaNs stay NaN in place and do not
    count towards the number of tests.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
    arr = as_float_1d(p, "p")
    ok = ~np.isnan(arr)
    if np.any((arr[ok] < 0) | (arr[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    out = np.full(arr.shape, np.nan)
    if ok.any():
        out[ok] = multipletests(arr[ok], method=_METHODS[method])[1]
    return out
