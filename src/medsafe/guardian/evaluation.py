"""Held-out figures of a guardian head: accuracy (Wilson CI), macro-F1 and per-class metrics.

Bootstrap CIs resample *prompts* (all responses to one prompt together, a cluster bootstrap)
with a fixed seed, so repeated runs give the same intervals. A prediction outside the gold labels
(the guardian's ``uncertain``) counts as wrong: it lowers accuracy and recall, and the share of
rows that got a gold label is reported as ``coverage``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsafe.stats.calibration import bootstrap_confusions, metrics
from medsafe.stats.normal import wilson_bounds

Interval = tuple[float, float]


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one label, each with a bootstrap 95% CI."""

    support: int
    precision: float
    recall: float
    f1: float
    precision_ci: Interval
    recall_ci: Interval
    f1_ci: Interval


@dataclass(frozen=True)
class SliceAccuracy:
    """Accuracy of one slice (e.g. one language) with its Wilson 95% CI."""

    n: int
    accuracy: float
    accuracy_ci: Interval


@dataclass(frozen=True)
class GuardianEvaluation:
    """Held-out evaluation of a guardian head."""

    labels: tuple[str, ...]
    n: int
    accuracy: float
    accuracy_ci: Interval
    macro_f1: float
    macro_f1_ci: Interval
    per_class: dict[str, ClassMetrics]
    confusion: tuple[tuple[int, ...], ...]
    """Rows are true labels, columns predicted labels, both in ``labels`` order."""
    per_language: dict[str, SliceAccuracy]
    n_boot: int
    seed: int
    principle_hits: dict[str, SliceAccuracy] = field(default_factory=dict)
    """On gold-``unsafe`` rows: ``top1`` (best principle is the row's category) and
    ``returned`` (the category is among the 1-2 principles a verdict reports)."""
    predicted_labels: tuple[str, ...] = ()
    """Columns of ``confusion`` when some prediction is not a gold label (e.g. ``uncertain``);
    empty: the columns are ``labels``."""
    abstained: int = 0
    """Rows predicted outside the gold labels (abstentions); they count as wrong."""
    coverage: SliceAccuracy | None = None
    """Share of rows given a gold label (1 - abstained / n), with its Wilson CI."""
    accuracy_covered: SliceAccuracy | None = None
    """Accuracy on the rows given a gold label."""
    per_stratum: dict[str, SliceAccuracy] = field(default_factory=dict)
    """Accuracy by stratum (e.g. ``adversarial``), when strata were given."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (tuples become lists)."""
        return {
            "labels": list(self.labels),
            "n": self.n,
            "accuracy": self.accuracy,
            "accuracy_ci": list(self.accuracy_ci),
            "macro_f1": self.macro_f1,
            "macro_f1_ci": list(self.macro_f1_ci),
            "per_class": {
                k: {
                    "support": m.support,
                    "precision": m.precision,
                    "recall": m.recall,
                    "f1": m.f1,
                    "precision_ci": list(m.precision_ci),
                    "recall_ci": list(m.recall_ci),
                    "f1_ci": list(m.f1_ci),
                }
                for k, m in self.per_class.items()
            },
            "confusion": [list(row) for row in self.confusion],
            "per_language": {k: _slice_dict(s) for k, s in self.per_language.items()},
            "n_boot": self.n_boot,
            "seed": self.seed,
            "principle_hits": {k: _slice_dict(s) for k, s in self.principle_hits.items()},
            "predicted_labels": list(self.predicted_labels or self.labels),
            "abstained": self.abstained,
            "coverage": _slice_dict(self.coverage) if self.coverage else None,
            "accuracy_covered": _slice_dict(self.accuracy_covered)
            if self.accuracy_covered
            else None,
            "per_stratum": {k: _slice_dict(s) for k, s in self.per_stratum.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardianEvaluation:
        """Inverse of :meth:`to_dict`."""

        def ci(value: Sequence[float]) -> Interval:
            return (float(value[0]), float(value[1]))

        return cls(
            labels=tuple(data["labels"]),
            n=int(data["n"]),
            accuracy=float(data["accuracy"]),
            accuracy_ci=ci(data["accuracy_ci"]),
            macro_f1=float(data["macro_f1"]),
            macro_f1_ci=ci(data["macro_f1_ci"]),
            per_class={
                k: ClassMetrics(
                    support=int(m["support"]),
                    precision=float(m["precision"]),
                    recall=float(m["recall"]),
                    f1=float(m["f1"]),
                    precision_ci=ci(m["precision_ci"]),
                    recall_ci=ci(m["recall_ci"]),
                    f1_ci=ci(m["f1_ci"]),
                )
                for k, m in data["per_class"].items()
            },
            confusion=tuple(tuple(int(x) for x in row) for row in data["confusion"]),
            per_language={k: _slice(s) for k, s in data["per_language"].items()},
            n_boot=int(data["n_boot"]),
            seed=int(data["seed"]),
            principle_hits={k: _slice(s) for k, s in data.get("principle_hits", {}).items()},
            predicted_labels=tuple(data.get("predicted_labels", ()))
            if tuple(data.get("predicted_labels", ())) != tuple(data["labels"])
            else (),
            abstained=int(data.get("abstained", 0)),
            coverage=_slice(data["coverage"]) if data.get("coverage") else None,
            accuracy_covered=_slice(data["accuracy_covered"])
            if data.get("accuracy_covered")
            else None,
            per_stratum={k: _slice(s) for k, s in data.get("per_stratum", {}).items()},
        )


def _slice_dict(s: SliceAccuracy) -> dict[str, Any]:
    return {"n": s.n, "accuracy": s.accuracy, "accuracy_ci": list(s.accuracy_ci)}


def _slice(data: Mapping[str, Any]) -> SliceAccuracy:
    low, high = data["accuracy_ci"]
    return SliceAccuracy(int(data["n"]), float(data["accuracy"]), (float(low), float(high)))


def slice_accuracy(hits: int, n: int) -> SliceAccuracy:
    """``hits / n`` with its Wilson 95% CI (accuracy 0 when ``n`` is 0)."""
    return SliceAccuracy(n, hits / n if n else 0.0, wilson(hits, n))


def wilson(successes: int, n: int) -> Interval:
    """Wilson 95% CI of a proportion (``(0, 1)`` when ``n`` is 0)."""
    return wilson_bounds(successes, n) or (0.0, 1.0)


def _metrics(cms: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Per-class precision, recall, F1 and macro-F1 of ``(..., K, K)`` confusion matrices
    (:func:`medsafe.stats.calibration.metrics`: zero division counts as 0, as in sklearn)."""
    found = metrics(cms, None)
    return found["precision"], found["recall"], found["f1"], found["macro_f1"]


def _percentile_ci(values: NDArray[np.float64]) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 0.0)
    low, high = np.percentile(finite, [2.5, 97.5])
    return (float(low), float(high))


def evaluate(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    strata: Sequence[Sequence[str]] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> GuardianEvaluation:
    """Score predictions against gold labels; ``groups`` clusters the bootstrap (by prompt).

    Predictions outside ``labels`` (abstentions) count as wrong; ``strata`` gives each row's
    strata names (e.g. ``("adversarial",)``) for per-stratum accuracy.
    """
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError("y_true and y_pred must be non-empty and of equal length")
    if unknown := set(y_true) - set(labels):
        raise ValueError(f"gold labels {sorted(unknown)} are not among {list(labels)}")
    extra = sorted(set(y_pred) - set(labels))
    columns = (*labels, *extra)
    index = {label: k for k, label in enumerate(columns)}
    k = len(labels)
    true_idx = np.array([index[y] for y in y_true])
    pred_idx = np.array([index[y] for y in y_pred])
    group_keys = list(groups) if groups is not None else [str(i) for i in range(len(y_true))]
    group_ids = {g: i for i, g in enumerate(dict.fromkeys(group_keys))}
    g_idx = np.array([group_ids[g] for g in group_keys])  # clusters in order of appearance
    cm, boot = bootstrap_confusions(
        true_idx, pred_idx, len(columns), clusters=g_idx, n_resamples=n_boot, seed=seed
    )
    precision, recall, f1, _macro = _metrics(cm.astype(np.float64))
    b_precision, b_recall, b_f1, _b_macro = _metrics(boot)
    macro = float(np.mean(f1[:k]))  # over the gold labels only
    b_macro = b_f1[:, :k].mean(axis=1)

    correct = int(np.trace(cm))
    per_class = {
        label: ClassMetrics(
            support=int(cm[j].sum()),
            precision=float(np.nan_to_num(precision[j])),
            recall=float(np.nan_to_num(recall[j])),
            f1=float(np.nan_to_num(f1[j])),
            precision_ci=_percentile_ci(b_precision[:, j]),
            recall_ci=_percentile_ci(b_recall[:, j]),
            f1_ci=_percentile_ci(b_f1[:, j]),
        )
        for j, label in enumerate(labels)
    }
    hits = true_idx == pred_idx
    per_language: dict[str, SliceAccuracy] = {}
    if languages is not None:
        for language in sorted(set(languages)):
            mask = np.array([lang == language for lang in languages])
            per_language[language] = slice_accuracy(int(hits[mask].sum()), int(mask.sum()))
    per_stratum: dict[str, SliceAccuracy] = {}
    if strata is not None:
        for name in sorted({s for row in strata for s in row}):
            mask = np.array([name in row for row in strata])
            per_stratum[name] = slice_accuracy(int(hits[mask].sum()), int(mask.sum()))
    covered = pred_idx < k
    abstained = int((~covered).sum())
    return GuardianEvaluation(
        labels=tuple(labels),
        n=len(y_true),
        accuracy=correct / len(y_true),
        accuracy_ci=wilson(correct, len(y_true)),
        macro_f1=macro,
        macro_f1_ci=_percentile_ci(b_macro),
        per_class=per_class,
        confusion=tuple(tuple(int(x) for x in row) for row in cm[:k]),
        per_language=per_language,
        n_boot=n_boot,
        seed=seed,
        predicted_labels=tuple(columns) if extra else (),
        abstained=abstained,
        coverage=slice_accuracy(len(y_true) - abstained, len(y_true)),
        accuracy_covered=slice_accuracy(correct, int(covered.sum())),
        per_stratum=per_stratum,
    )
