"""The report's imaging section: detection (per-label table, F1 bars, recall-vs-precision
scatter) and classification (per-disease sensitivity bars, confusion heatmap, sensitivity-vs-
PPV scatter per model). Every figure comes from the run's results (docs/imaging.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medsafe.report.plots import PALETTE, Panel, Series, _clip, _data_uri, _figure, category_bars
from medsafe.report.plots import plain as _plain
from medsafe.results.models import Estimate, RunResults


def pct(estimate: Estimate | None) -> dict[str, str]:
    """``{value, ci}`` of an estimate as percentages ("-" when undefined)."""
    if estimate is None or estimate.value is None:
        return {"value": "-", "ci": "", "n": "" if estimate is None else str(estimate.n)}
    ci = (
        ""
        if estimate.ci95 is None
        else f"{100 * estimate.ci95[0]:.1f}–{100 * estimate.ci95[1]:.1f}"
    )
    return {"value": f"{100 * estimate.value:.1f}", "ci": ci, "n": str(estimate.n)}


@dataclass(frozen=True)
class Dot:
    """One label or class of one run on a recall/sensitivity (x) vs precision/PPV (y) plane."""

    run: str
    name: str
    x: float
    y: float


def scatter(dots: Sequence[Dot], x_label: str, y_label: str) -> str:
    """Sensitivity (x) against PPV (y), one colour per run, each point named."""
    runs = list(dict.fromkeys(d.run for d in dots))
    with _figure(5.2, 4.2) as fig:
        ax = fig.subplots()
        for j, run in enumerate(runs):
            mine = [d for d in dots if d.run == run]
            ax.scatter([100 * d.x for d in mine], [100 * d.y for d in mine],
                       color=PALETTE[j % len(PALETTE)], label=_plain(run), s=18)  # fmt: skip
            for d in mine:
                ax.annotate(_clip(d.name, 18), (100 * d.x, 100 * d.y), xytext=(4, 3),
                            textcoords="offset points", fontsize=7)  # fmt: skip
        ax.set_xlim(-2, 102)
        ax.set_ylim(-2, 102)
        ax.set_xlabel(_plain(f"{x_label} (%)"))
        ax.set_ylabel(_plain(f"{y_label} (%)"))
        ax.grid(color="#ddd", lw=0.5)
        if len(runs) > 1:
            ax.legend(fontsize=7, frameon=False)
        return _data_uri(fig)


def confusion_heatmap(classes: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> str:
    """Reference (rows) x answer (columns) counts, shaded by the share of each row."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 1.6 + 0.45 * len(classes)
    with _figure(size + 0.8, size) as fig:
        ax = fig.subplots()
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        labels = [_clip(c, 16) for c in classes]
        ax.set_xticks(range(len(classes)), labels, rotation=30, ha="right", fontsize=7.5)
        ax.set_yticks(range(len(classes)), labels, fontsize=7.5)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
        ax.set_xlabel("model answer")
        ax.set_ylabel("reference")
        ax.set_title(_plain(title), fontsize=9)
        fig.colorbar(image, ax=ax, label="share of the row", shrink=0.8)
        return _data_uri(fig)


def _bars(names: Sequence[str], series: Sequence[Series], title: str) -> str:
    return category_bars(list(names), [Panel(title=title, series=series, percent=True)], columns=1)


def _num(value: float | None) -> float:
    return float("nan") if value is None else value


def _detection(run: str, metric: str, results: RunResults) -> dict[str, Any] | None:
    block = results.scorers[metric]
    if not block.per_label:
        return None
    labels = list(block.per_label)
    rows = [
        {"label": label, "support": f.support, "predicted": f.predicted,
         "precision": pct(f.precision), "recall": pct(f.recall), "f1": pct(f.f1)}
        for label, f in block.per_label.items()
    ]  # fmt: skip
    f1 = [block.per_label[x].f1 for x in labels]
    series = Series(run, [e.value for e in f1], [e.lo for e in f1], [e.hi for e in f1])
    dots = [
        Dot(run, label, f.recall.value, f.precision.value)
        for label, f in block.per_label.items()
        if f.recall.value is not None and f.precision.value is not None
    ]
    extra = block.additional
    return {
        "run": run,
        "metric": metric,
        "rows": rows,
        "micro_f1": pct(block.micro_f1),
        "macro_f1": pct(block.macro_f1),
        "exact_match": pct(block.exact_match),
        "unparsed": block.unparsed or 0,
        "location": pct(block.location) if block.location else None,
        "additional": None
        if extra is None
        else {
            "flagged": extra.flagged,
            "reviewed": extra.reviewed,
            "confirmed": extra.confirmed,
            "rate": pct(extra.rate),
            "confirmed_rate": pct(extra.confirmed_rate),
            "precision_before": pct(extra.precision_before),
            "precision_after": pct(extra.precision_after),
        },
        "bars": _bars(labels, [series], "F1 per label"),
        "scatter": scatter(dots, "recall", "precision") if dots else None,
    }


def _classification(run: str, metric: str, results: RunResults) -> dict[str, Any] | None:
    fig = results.scorers[metric].classification
    if fig is None:
        return None
    sens = [fig.per_class[c].sensitivity for c in fig.classes]
    series = Series(run, [e.value for e in sens], [e.lo for e in sens], [e.hi for e in sens])
    dots = [
        Dot(run, c, f.sensitivity.value, f.ppv.value)
        for c, f in fig.per_class.items()
        if f.sensitivity.value is not None and f.ppv.value is not None
    ]
    rows = [
        {"label": c, "support": f.support, "sensitivity": pct(f.sensitivity),
         "specificity": pct(f.specificity), "ppv": pct(f.ppv),
         "f1": "-" if f.f1 is None else f"{100 * f.f1:.1f}"}
        for c, f in fig.per_class.items()
    ]  # fmt: skip
    kappa = fig.kappa
    return {
        "run": run,
        "metric": metric,
        "rows": rows,
        "accuracy": pct(fig.accuracy),
        "macro_f1": "-" if fig.macro_f1 is None else f"{100 * fig.macro_f1:.1f}",
        "kappa": "-" if kappa is None or math.isnan(_num(kappa)) else f"{kappa:.3f}",
        "unparsed": fig.unparsed,
        "by_modality": [{"modality": m, **pct(e)} for m, e in fig.by_modality.items()],
        "bars": _bars(fig.classes, [series], "Sensitivity per class"),
        "heatmap": confusion_heatmap(fig.classes, fig.confusion, f"{run}: confusion matrix"),
        "scatter": scatter(dots, "sensitivity", "PPV") if dots else None,
    }


def imaging_sections(named: Sequence[tuple[str, RunResults]]) -> list[dict[str, Any]]:
    """One entry per detection or classification block of each (display name, results)."""
    out: list[dict[str, Any]] = []
    for run, results in named:
        for metric in sorted(results.scorers):
            scorer = metric.split(":", 1)[0]
            if scorer == "detection":
                section = _detection(run, metric, results)
            elif scorer == "classification":
                section = _classification(run, metric, results)
            else:
                continue
            if section is not None:
                out.append({"kind": scorer, **section})
    return out
