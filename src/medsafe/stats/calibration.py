"""Judge-vs-human calibration report: accuracy, kappa, per-class P/R/F1, MAE, with CIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medsafe.stats._resample import (
    FloatArray,
    Seed,
    block_size,
    check_level,
    check_resamples,
    interval_bounds,
    rng_from,
)
from medsafe.stats.intervals import wilson
from medsafe.stats.results import Estimate, Interval, to_jsonable

IntArray = NDArray[np.intp]


def _encode(values: NDArray[Any], labels: Sequence[Any], name: str) -> IntArray:
    index = {label: i for i, label in enumerate(labels)}
    try:
        return np.array([index[v] for v in values.tolist()], dtype=np.intp)
    except KeyError as err:
        raise ValueError(f"{name} holds a value not in labels: {err.args[0]!r}") from None


def bootstrap_confusions(
    true: IntArray,
    pred: IntArray,
    k: int,
    *,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    seed: Seed = 0,
) -> tuple[IntArray, FloatArray]:
    """The confusion matrix and ``n_resamples`` cluster-bootstrap replicates of it.

    Whole clusters (default: each item its own) are resampled with replacement: each replicate
    draws multinomial counts of the clusters and sums their confusion matrices, so it costs
    one matrix product however many items a cluster holds. Drawn in memory-bounded blocks
    whose size does not change the random stream.
    """
    n = int(true.size)
    groups = (
        np.arange(n)
        if clusters is None
        else np.unique(np.asarray(clusters), return_inverse=True)[1]
    )
    n_groups = int(groups.max()) + 1 if n else 0
    per_group = np.zeros((n_groups, k * k))
    np.add.at(per_group, (groups, true * k + pred), 1.0)
    cm = per_group.sum(axis=0).reshape(k, k).astype(np.int64)
    rng = rng_from(seed)
    weights = np.full(n_groups, 1.0 / n_groups)
    step = block_size(n_groups)
    blocks = []
    for start in range(0, n_resamples, step):
        draws = rng.multinomial(n_groups, weights, size=min(step, n_resamples - start))
        blocks.append((draws @ per_group).reshape(-1, k, k))
    return cm, np.concatenate(blocks) if blocks else np.zeros((0, k, k))


def _div(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` with 0 where ``den == 0`` (sklearn's ``zero_division=0``)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def weighted_kappa(cm: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted kappa ``1 - sum(w*O) / sum(w*E)`` over the last two axes (Cohen 1968)."""
    n = cm.sum(axis=(-2, -1))
    expected = cm.sum(axis=-1)[..., :, None] * cm.sum(axis=-2)[..., None, :] / n[..., None, None]
    den = (weights * expected).sum(axis=(-2, -1))
    num = (weights * cm).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(den > 0, 1.0 - num / np.where(den > 0, den, 1.0), np.nan)
    return out


def metrics(
    cm: NDArray[Any], values: FloatArray | None, supported: NDArray[np.bool_] | None = None
) -> dict[str, FloatArray]:
    """All report metrics from confusion matrices of shape ``(..., k, k)``; macro-F1 over the
    classes marked ``supported`` (default: all ``k``)."""
    c = cm.astype(np.float64)
    k = c.shape[-1]
    n = c.sum(axis=(-2, -1))
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    rows, cols = c.sum(axis=-1), c.sum(axis=-2)
    f1 = _div(2 * tp, rows + cols)
    pos = np.arange(k, dtype=np.float64)
    out = {
        "accuracy": tp.sum(axis=-1) / n,
        "kappa": weighted_kappa(c, 1.0 - np.eye(k)),
        "precision": _div(tp, cols),
        "recall": _div(tp, rows),
        "f1": f1,
        "macro_f1": f1.mean(axis=-1) if supported is None else f1[..., supported].mean(axis=-1),
    }
    if values is not None:
        out["mae"] = (c * np.abs(values[:, None] - values[None, :])).sum(axis=(-2, -1)) / n
        quad = (pos[:, None] - pos[None, :]) ** 2 / max(k - 1, 1) ** 2
        out["weighted_kappa_quadratic"] = weighted_kappa(c, quad)
    return out


def _is_numeric(labels: Sequence[Any]) -> bool:
    arr = np.asarray(labels)
    return arr.dtype.kind in "iuf"


def classification_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    labels: Sequence[Any] | None = None,
    *,
    ordinal: bool | None = None,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: Seed = 0,
) -> dict[str, Any]:
    """Judge (``y_pred``) against human labels (``y_true``), JSON-ready.

    Accuracy with a Wilson CI; Cohen's kappa, per-class precision/recall/F1 and macro-F1
    with item-bootstrap percentile CIs (zero division counts as 0, as in sklearn). For
    ordinal numeric labels (auto-detected when ``ordinal`` is None) also MAE and quadratic
    weighted kappa. ``labels`` fixes the class order (default: sorted union).
    """
    check_level(level)
    check_resamples(n_resamples)
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or t.shape != p.shape or t.size == 0:
        raise ValueError("y_true and y_pred must be non-empty, 1-D and equally long")
    labs = list(np.unique(np.concatenate([t, p]))) if labels is None else list(labels)
    numeric = _is_numeric(labs)
    if ordinal and not numeric:
        raise ValueError("ordinal=True needs numeric labels")
    use_ordinal = numeric if ordinal is None else ordinal
    values = np.asarray(labs, dtype=np.float64) if use_ordinal else None
    tc, pc = _encode(t, labs, "y_true"), _encode(p, labs, "y_pred")
    k, n = len(labs), t.size
    cm, replicates = bootstrap_confusions(tc, pc, k, n_resamples=n_resamples, seed=seed)
    # macro-F1 over the classes the reference uses: a judge's label no human gave (the
    # guardian's abstention ``uncertain``) is wrong in accuracy but has no F1 of its own
    supported = cm.sum(axis=-1) > 0
    point = metrics(cm, values, supported)
    boot = metrics(replicates, values, supported)

    def est(key: str, j: int | None = None) -> dict[str, Any]:
        value = float(point[key] if j is None else point[key][j])
        dist = boot[key] if j is None else boot[key][:, j]
        lo, hi = interval_bounds(value, dist, level, "percentile")
        return Estimate(value, Interval(lo, hi, "bootstrap_percentile", level)).to_dict()

    correct = int(np.trace(cm))
    report: dict[str, Any] = {
        "n": n,
        "labels": to_jsonable(labs),
        "accuracy": Estimate(correct / n, wilson(correct, n, level)).to_dict(),
        "kappa": est("kappa"),
        "macro_f1": est("macro_f1"),
        "per_class": {
            str(label): {
                "support": int(cm[j].sum()),
                "precision": est("precision", j),
                "recall": est("recall", j),
                "f1": est("f1", j),
            }
            for j, label in enumerate(labs)
        },
        "confusion_matrix": cm.tolist(),
    }
    if values is not None:
        report["mae"] = est("mae")
        report["weighted_kappa_quadratic"] = est("weighted_kappa_quadratic")
    return report
