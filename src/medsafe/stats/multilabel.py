"""Multi-label detection figures: per-label precision/recall/F1, micro- and macro-F1, exact match,
with cluster bootstrap intervals (resampling whole images or reports).

Inputs are two 0/1 matrices of shape ``(items, labels)``: the reference ``truth`` and the
model's ``pred``. Per label ``TP = sum(truth & pred)``, ``FP = sum(~truth & pred)``,
``FN = sum(truth & ~pred)``; ``precision = TP/(TP+FP)``, ``recall = TP/(TP+FN)``,
``F1 = 2TP/(2TP+FP+FN)`` (NaN when the denominator is 0). Micro-F1 pools the counts over labels;
macro-F1 is the mean F1 over the labels with reference support (labels no item has are left
out, as ``sklearn.metrics.f1_score(labels=supported, average="macro")``); exact match is the
share of items whose predicted set equals the reference set. Checked against scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medsafe.stats._resample import block_size, check_level, check_resamples, rng_from
from medsafe.stats.results import Interval

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class MultilabelFigures:
    """Point figures and their 95% cluster bootstrap intervals (NaN where undefined)."""

    labels: tuple[str, ...]
    n_items: int
    n_clusters: int
    support: tuple[int, ...]
    """Reference positives per label."""
    predicted: tuple[int, ...]
    """Predicted positives per label."""
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    precision_ci: tuple[Interval, ...]
    recall_ci: tuple[Interval, ...]
    f1_ci: tuple[Interval, ...]
    micro_f1: float
    micro_f1_ci: Interval
    macro_f1: float
    macro_f1_ci: Interval
    exact_match: float
    exact_match_ci: Interval
    micro_precision: float
    micro_recall: float


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _figures(
    tp: FloatArray, fp: FloatArray, fn: FloatArray, supported: NDArray[np.bool_]
) -> dict[str, FloatArray]:
    """Figures from per-label counts; leading axes are resamples (``(..., labels)``)."""
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    tps, fps, fns = tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1)
    macro_parts = np.where(supported, np.nan_to_num(f1, nan=0.0), 0.0)
    n_supported = supported.sum(axis=-1)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": f1,
        "micro_f1": _ratio(2 * tps, 2 * tps + fps + fns),
        "micro_precision": _ratio(tps, tps + fps),
        "micro_recall": _ratio(tps, tps + fns),
        "macro_f1": _ratio(macro_parts.sum(axis=-1), n_supported.astype(np.float64)),
    }


def _as_matrix(values: ArrayLike, name: str) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (items x labels), got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 values only")
    return arr.astype(np.int64)


def _bounds(samples: FloatArray, level: float) -> Interval:
    """Percentile interval over resamples, ignoring resamples where the figure is undefined."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"), "cluster_percentile", level)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(float(lo), float(hi), "cluster_percentile", level)


def multilabel_figures(
    truth: ArrayLike,
    pred: ArrayLike,
    labels: tuple[str, ...],
    clusters: ArrayLike | None = None,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> MultilabelFigures:
    """Every detection figure with cluster bootstrap (percentile) intervals.

    ``clusters`` names the unit each row belongs to (an image or report asked about several
    times); ``None``: each row is its own cluster. Fewer than two clusters give NaN intervals.
    The resampling is vectorised on per-cluster count sums (resamples x clusters weights).
    """
    check_level(level)
    check_resamples(n_resamples)
    y, p = _as_matrix(truth, "truth"), _as_matrix(pred, "pred")
    if y.shape != p.shape or y.shape[1] != len(labels):
        raise ValueError(f"truth {y.shape} and pred {p.shape} must be items x {len(labels)}")
    n = y.shape[0]
    ids = np.arange(n) if clusters is None else np.asarray(clusters)
    if ids.shape != (n,):
        raise ValueError("clusters must have one entry per item")
    _, inv = np.unique(ids, return_inverse=True)
    k = int(inv.max()) + 1 if n else 0
    # Per-cluster sums: TP, FP, FN, support per label; exact matches and items per cluster.
    cells = np.stack([y & p, (1 - y) & p, y & (1 - p), y], axis=0).astype(np.float64)
    per_cluster = np.zeros((4, k, len(labels)))
    for j in range(4):
        np.add.at(per_cluster[j], inv, cells[j])
    exact = (y == p).all(axis=1).astype(np.float64)
    exact_c = np.bincount(inv, weights=exact, minlength=k)
    items_c = np.bincount(inv, minlength=k).astype(np.float64)
    tp, fp, fn, sup = per_cluster.sum(axis=1)
    point = _figures(tp, fp, fn, sup > 0)
    em = float(exact.mean()) if n else float("nan")
    draws: dict[str, list[FloatArray]] = {}
    if k >= 2:
        rng = rng_from(seed)
        step = block_size(k)
        for start in range(0, n_resamples, step):
            m = min(step, n_resamples - start)
            idx = rng.integers(0, k, (m, k))
            flat = (idx + (np.arange(m) * k)[:, None]).ravel()
            w = np.bincount(flat, minlength=m * k).reshape(m, k).astype(np.float64)
            btp, bfp, bfn, bsup = (w @ per_cluster[j] for j in range(4))
            for key, arr in _figures(btp, bfp, bfn, bsup > 0).items():
                draws.setdefault(key, []).append(arr)
            draws.setdefault("exact_match", []).append(_ratio(w @ exact_c, w @ items_c))
    boot = {key: np.concatenate(parts) for key, parts in draws.items()}

    def ci(key: str, col: int | None = None) -> Interval:
        if key not in boot:
            return Interval(float("nan"), float("nan"), "cluster_percentile", level)
        samples = boot[key] if col is None else boot[key][:, col]
        return _bounds(samples, level)

    def per_label(key: str) -> tuple[Interval, ...]:
        return tuple(ci(key, j) for j in range(len(labels)))

    return MultilabelFigures(
        labels=labels,
        n_items=n,
        n_clusters=k,
        support=tuple(int(v) for v in sup),
        predicted=tuple(int(v) for v in tp + fp),
        precision=tuple(float(v) for v in point["precision"]),
        recall=tuple(float(v) for v in point["recall"]),
        f1=tuple(float(v) for v in point["f1"]),
        precision_ci=per_label("precision"),
        recall_ci=per_label("recall"),
        f1_ci=per_label("f1"),
        micro_f1=float(point["micro_f1"]),
        micro_f1_ci=ci("micro_f1"),
        macro_f1=float(point["macro_f1"]),
        macro_f1_ci=ci("macro_f1"),
        exact_match=em,
        exact_match_ci=ci("exact_match"),
        micro_precision=float(point["micro_precision"]),
        micro_recall=float(point["micro_recall"]),
    )


def label_matrix(sets: list[frozenset[str]] | list[set[str]], labels: tuple[str, ...]) -> IntArray:
    """0/1 matrix (items x labels) of label sets; a label outside ``labels`` is an error."""
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(sets), len(labels)), dtype=np.int64)
    for i, found in enumerate(sets):
        for label in found:
            if label not in index:
                raise ValueError(f"label {label!r} is not in the label set")
            out[i, index[label]] = 1
    return out
