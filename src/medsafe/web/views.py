"""What the browse pages show, as plain values built from :class:`RunResults`.

Every figure is a RunResults number, formatted with the report's own formatters
(:mod:`medsafe.report.render`): the workbench computes no statistic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medsafe.report.data import Cell, MetricKey, metrics_of
from medsafe.report.render import (
    calibration_text,
    category_label,
    fmt_ci,
    fmt_p,
    fmt_value,
    metric_title,
)
from medsafe.results import Estimate, RunResults
from medsafe.web.results_cache import RunSummary

RunStatus = str
"""``running``, ``complete``, ``failed`` or ``partial`` (as ``medsafe runs`` says)."""


def run_status(n: int, ok: int, failed: int, live: bool) -> RunStatus:
    """A run's status as ``medsafe runs`` reports it, from its item counts."""
    if live:
        return "running"
    if ok == n:
        return "complete"
    if failed == n:
        return "failed"
    return "partial"


@dataclass(frozen=True)
class Figure:
    """A value with its interval and n, as text."""

    value: str
    ci: str
    n: str

    @classmethod
    def of(cls, estimate: Estimate | None, percent: bool) -> Figure:
        """The text of a RunResults estimate."""
        if estimate is None or estimate.value is None:
            return cls("-", "", "" if estimate is None else str(estimate.n))
        cell = Cell.of(estimate)
        return cls(fmt_value(cell.mean, percent), fmt_ci(cell.lo, cell.hi, percent), str(cell.n))


def _percent(key: MetricKey, binary: bool) -> bool:
    return bool(key.scale is not None and key.scale.is_share) or binary


def headline(summary: RunSummary) -> dict[str, Any]:
    """The runs list's figures: MCQ accuracy and the headline open-answer metric."""
    return {
        "mcq": Figure.of(summary.mcq, True) if summary.mcq is not None else None,
        "metric": summary.metric,
        "figure": Figure.of(summary.headline, summary.percent) if summary.metric else None,
    }


def _direction(key: MetricKey) -> str:
    if key.scale is None:
        return ""
    if key.is_mcq:
        return "dir.higher_better"
    return "dir.higher_safer" if key.higher_is_better else "dir.lower_safer"


def _language_of(results: RunResults) -> str:
    """The language categories are named in: the run's only language, else English."""
    return next(iter(results.by_language)) if len(results.by_language) == 1 else "en"


def run_overview(results: RunResults) -> dict[str, Any]:
    """The run page: counts, metrics, per-category table, judges, red-team blocks, flags."""
    metrics = metrics_of(results)
    lang = _language_of(results)
    metric_rows = []
    for key, m in metrics.items():
        block = results.scorers[key.name]
        percent = _percent(key, m.binary)
        metric_rows.append(
            {
                "name": key.name,
                "title": metric_title(key),
                "direction": _direction(key),
                "figure": Figure.of(block.estimate, percent),
                "harmful": Figure.of(block.harmful_share, True) if block.harmful_share else None,
                "rule": key.scale.positive if key.scale is not None else "",
                "ok": block.ok,
                "failed": block.failed,
                "skipped": block.skipped,
                "failure_rate": fmt_value(block.failure_rate, True),
                "labels": ", ".join(f"{k or '(none)'}: {v}" for k, v in block.labels.items()),
                "calibration": calibration_text(block),
                "coverage": Figure.of(block.coverage, True) if block.coverage else None,
                "coverage_warning": block.coverage_warning or "",
            }
        )
    categories = []
    for category, counts in sorted(results.by_category.items()):
        cells = []
        for key, m in metrics.items():
            group = results.scorers[key.name].by_category.get(category)
            estimate = group.estimate if group is not None else None
            cells.append(Figure.of(estimate, _percent(key, m.binary)))
        categories.append(
            {
                "id": category,
                "label": category_label(category, lang),
                "n": counts.n,
                "ok": counts.ok,
                "failed": counts.failed,
                "cells": cells,
            }
        )
    return {
        "metrics": metric_rows,
        "metric_titles": [metric_title(k) for k in metrics],
        "categories": categories,
        "languages": sorted((k, v.n) for k, v in results.by_language.items()),
        "agreement": _agreement(results),
        "redteam": _redteam(results),
        "flags": sorted(results.flags.counts.items()),
        "flag_units": results.flags.units[:20],
        "mcq": Figure.of(results.mcq, True) if results.mcq_answered else None,
        "unextracted": results.unextracted,
        "circular": Figure.of(results.circular.estimate, True) if results.circular else None,
    }


def _agreement(results: RunResults) -> list[dict[str, str]]:
    out = []
    for name, block in results.scorers.items():
        agreement = block.agreement
        if agreement is None or ":" in name or len(agreement.judges) < 2:
            continue
        d = agreement.disagreements
        out.append(
            {
                "scorer": name,
                "judges": ", ".join(agreement.judges),
                "n": str(agreement.n_units),
                "kappa": "-" if agreement.kappa is None else f"{agreement.kappa:.3f}",
                "basis": agreement.kappa_basis,
                "alpha": "-" if agreement.alpha is None else f"{agreement.alpha:.3f}",
                "alpha_level": agreement.alpha_level,
                "spearman": "-" if agreement.spearman is None else f"{agreement.spearman:.3f}",
                "disagree": Figure.of(
                    Estimate(value=d.value, ci95=d.ci95, n=d.n, method="wilson"), True
                ).value,
                "threshold": f"{d.threshold:g}",
            }
        )
    return out


def _test(block: dict[str, Any] | None, name: str) -> dict[str, str] | None:
    if not block:
        return None
    effect = block.get("effect_size")
    return {
        "name": name,
        "p": fmt_p(block.get("p")),
        "effect": "-" if effect is None else f"{effect:.3g}",
        "effect_name": str(block.get("effect_name", "")),
        "n": str(block.get("n", "")),
    }


def _redteam(results: RunResults) -> dict[str, Any] | None:
    if results.dialogues is None and not results.turn_metrics:
        return None
    decline = results.decline or {}
    tests = [
        _test(decline.get("first_vs_last"), "Wilcoxon signed-rank, first vs last turn"),
        _test(decline.get("across_turns"), "Friedman"),
    ]
    metric = results.turn_metrics.get(results.turn_metric or "")
    percent = bool(metric and metric.scale.is_share)
    return {
        "metric": results.turn_metric or "",
        "dialogues": results.dialogues,
        "by_turn": [
            {
                "turn": p.turn,
                "n": p.n,
                "figure": Figure.of(
                    Estimate(value=p.mean, ci95=p.ci95, n=p.n, method=p.method), percent
                ),
            }
            for p in results.by_turn or []
        ],
        "asr": Figure.of(results.asr, True) if results.asr else None,
        "by_strategy": [
            (k or "(none)", Figure.of(e, True)) for k, e in (results.asr_by_strategy or {}).items()
        ],
        "by_language": [
            (k, Figure.of(e, True)) for k, e in (results.asr_by_language or {}).items()
        ],
        "decline": [t for t in tests if t is not None],
    }


def comparison_view(comparison: Any, results: tuple[RunResults, RunResults]) -> dict[str, Any]:
    """A :class:`medsafe.report.compare.Comparison` as the compare page shows it."""
    from medsafe.report.render import fmt_delta

    key: MetricKey = comparison.metric
    percent = _percent(key, comparison.binary)
    lang = _language_of(results[0])

    def row(result: Any, adjusted: bool) -> dict[str, str]:
        lo, hi = result.ci95 if result.ci95 is not None else (None, None)
        return {
            "a": fmt_value(result.a, percent),
            "b": fmt_value(result.b, percent),
            "delta": fmt_delta(result.delta, percent),
            "ci": fmt_ci(lo, hi, percent),
            "test": result.test,
            "p": fmt_p(result.p_adjusted if adjusted else result.p),
            "n": str(result.n_pairs),
        }

    estimates = comparison.estimates or (None, None)
    return {
        "title": metric_title(key),
        "direction": _direction(key),
        "models": (results[0].model, results[1].model),
        "own": (Figure.of(estimates[0], percent), Figure.of(estimates[1], percent)),
        "overall": row(comparison.overall, False),
        "by_category": [
            {"label": category_label(c, lang), **row(r, True)}
            for c, r in sorted(comparison.by_category.items())
        ],
        "adjust": comparison.adjust,
        "unpaired": comparison.unpaired,
        "mde": comparison.mde,
    }
