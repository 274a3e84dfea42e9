"""Build the report's view model from run aggregates and render it to one HTML file.

Jinja2 autoescaping is on: every string from a model, a judge, a suite or a store is escaped.
Figures are inline SVG data URIs and the CSS is inline, so the file needs no network.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from medsafe._version import __version__
from medsafe.formatting import with_ci
from medsafe.report import plots
from medsafe.report.data import Cell, MetricKey, Prefetched, RunData, RunRef, load_run
from medsafe.report.dual_axis import dual_axis_section
from medsafe.report.imaging import imaging_sections
from medsafe.results import Estimate, RunResults, ScorerResults
from medsafe.schema import LANGUAGES, Language
from medsafe.taxonomy import find_category, framework_of, frameworks

if TYPE_CHECKING:
    # scipy and statsmodels load only when a report compares runs
    from medsafe.report.compare import Adjust, Comparison

_LANGUAGE: dict[str, Language] = {lang: lang for lang in LANGUAGES}


def metric_title(key: MetricKey) -> str:
    """Human name of a metric: its declared scale's title (with the judge when there is one)."""
    return key.title


def panel_title(key: MetricKey) -> str:
    """A short name for a small plot panel: the scale's title without its parenthesis (the
    axis label gives range and direction), and the judge, which tells panels apart."""
    base = key.title if key.scale is None else key.scale.title.split(" (", 1)[0]
    return base if key.judge in ("", key.scorer) else f"{base} · {key.judge}"


def category_label(category_id: str, language: str) -> str:
    """The taxonomy name of a category in ``language`` (the id when it is not in a taxonomy)."""
    found = find_category(category_id)
    if found is None:
        return category_id or "(none)"
    return found.label(_LANGUAGE.get(language, "en"))


def run_names(runs: Sequence[RunData]) -> dict[str, str]:
    """Display name per run id: the model, or ``model · run_id`` when models repeat."""
    models = [r.record.spec.model for r in runs]
    return {
        r.ref.run_id: m if models.count(m) == 1 else f"{m} · {r.ref.run_id}"
        for r, m in zip(runs, models, strict=True)
    }


def _is_percent(runs: Sequence[RunData], key: MetricKey) -> bool:
    """Shown as a percentage: a share scale (0-1), or binary values in every run."""
    if key.scale is not None and key.scale.is_share:
        return True
    return all(r.metrics[key].binary for r in runs if key in r.metrics)


def fmt_value(value: float | None, percent: bool) -> str:
    """``81.2%`` or ``3.41``; ``-`` for missing."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}%" if percent else f"{value:.3g}"


def _value_ci(value: float | None, lo: float | None, hi: float | None) -> tuple[str, str]:
    """A rate and its interval as percentages, for the dual-axis table."""
    return fmt_value(value, True), fmt_ci(lo, hi, True)


def fmt_ci(lo: float | None, hi: float | None, percent: bool) -> str:
    """``[75.0, 86.1]`` (in % when ``percent``)."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    if percent:
        return f"[{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"[{lo:.3g}, {hi:.3g}]"


def fmt_delta(value: float | None, percent: bool) -> str:
    """``+4.2 pp`` or ``+0.31``."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:+.1f} pp" if percent else f"{value:+.3g}"


def fmt_p(p: float | None) -> str:
    """``<0.001``, ``0.013``, ``-``."""
    if p is None or not math.isfinite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _raw(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _cell_text(cell: Cell | None, percent: bool) -> dict[str, str]:
    """Display text of a cell, and its exact numbers for the ``data-*`` attributes."""
    if cell is None or cell.mean is None:
        return {"value": "-", "ci": "", "n": "", "raw": "", "raw_lo": "", "raw_hi": ""}
    return {
        "value": fmt_value(cell.mean, percent),
        "ci": fmt_ci(cell.lo, cell.hi, percent),
        "n": str(cell.n),
        "raw": _raw(cell.mean),
        "raw_lo": _raw(cell.lo),
        "raw_hi": _raw(cell.hi),
    }


@dataclass(frozen=True)
class Category:
    """A category as the report shows it."""

    id: str
    label: str
    language: str
    framework: str


def _categories(runs: Sequence[RunData]) -> dict[str, list[Category]]:
    """Categories present in any run, grouped by framework title in taxonomy order."""
    language: dict[str, str] = {}
    for run in runs:
        for cat, lang in run.counts.category_language.items():
            language.setdefault(cat, lang)
    order = {c.id: (i, j) for i, f in enumerate(frameworks()) for j, c in enumerate(f.categories)}
    titles = {f.name: f.title for f in frameworks()}
    # One naming language for the whole report: the suite's own when it has only one,
    # English when languages are mixed (so a category is never named in a stray language).
    if len(set(language.values())) > 1:
        language = dict.fromkeys(language, "en")
    groups: dict[str, list[Category]] = {}
    for cat in sorted(language, key=lambda c: (order.get(c, (len(order), 0)), c)):
        fw = framework_of(cat)
        title = titles[fw] if fw else "Other categories"
        groups.setdefault(title, []).append(
            Category(cat, category_label(cat, language[cat]), language[cat], title)
        )
    return groups


def _metric_keys(runs: Sequence[RunData]) -> list[MetricKey]:
    keys: set[MetricKey] = set()
    for run in runs:
        keys.update(run.metrics)
    return sorted(keys, key=lambda k: (not k.is_mcq, k.scorer, k.judge))


def _signature(runs: Sequence[RunData], key: MetricKey) -> tuple[Any, ...]:
    """Every per-category mean and n of a metric in every run (to spot duplicate metrics)."""
    return tuple(
        tuple(
            (c, cell.n, None if cell.mean is None else round(cell.mean, 12))
            for c, cell in sorted(r.metrics[key].by_category.items())
        )
        if key in r.metrics
        else None
        for r in runs
    )


def shown_metrics(runs: Sequence[RunData]) -> tuple[list[MetricKey], dict[str, str]]:
    """Metrics shown by category, and those left out as exact duplicates (name -> shown name),
    e.g. MCQ partial credit on a suite of single-answer items."""
    shown: list[MetricKey] = []
    seen: dict[tuple[Any, ...], MetricKey] = {}
    duplicates: dict[str, str] = {}
    for key in _metric_keys(runs):
        sig = _signature(runs, key)
        if sig in seen:
            duplicates[metric_title(key)] = metric_title(seen[sig])
            continue
        seen[sig] = key
        shown.append(key)
    return shown, duplicates


def _series(runs: Sequence[RunData], key: MetricKey, cats: Sequence[Category]) -> list[Any]:
    out = []
    for run in runs:
        metric = run.metrics.get(key)
        cells = [metric.by_category.get(c.id) if metric else None for c in cats]
        out.append(
            plots.Series(
                run_names(runs)[run.ref.run_id],
                [c.mean if c else None for c in cells],
                [c.lo if c else None for c in cells],
                [c.hi if c else None for c in cells],
            )
        )
    return out


def _framework_sections(runs: Sequence[RunData], keys: Sequence[MetricKey]) -> list[dict[str, Any]]:
    """Per framework: one bar figure (a panel per metric) and a table with one row per
    (category, model) and one column per metric."""
    sections = []
    for title, cats in _categories(runs).items():
        used = [
            k
            for k in keys
            if any(k in r.metrics and c.id in r.metrics[k].by_category for r in runs for c in cats)
        ]
        if not used:
            continue
        percent = {k: _is_percent(runs, k) for k in used}
        panels = [
            plots.Panel(
                panel_title(k),
                _series(runs, k, cats),
                percent[k],
                axis=_axis(k),
                direction=_direction(k),
            )
            for k in used
        ]
        rows = []
        for c in cats:
            for j, run in enumerate(runs):
                cells = []
                for key in used:
                    metric = run.metrics.get(key)
                    cell = metric.by_category.get(c.id) if metric else None
                    text = _cell_text(cell, percent[key])
                    cells.append({**text, "metric": key.name, "run": run.ref.run_id})
                name = run_names(runs)[run.ref.run_id]
                rows.append({"category": c, "first": j == 0, "model": name, "cells": cells})
        sections.append(
            {
                "title": title,
                "figure": plots.category_bars([c.label for c in cats], panels),
                "metrics": [metric_title(k) for k in used],
                "rows": rows,
            }
        )
    return sections


def _safety_metric(runs: Sequence[RunData]) -> MetricKey | None:
    """The y axis of the ethics-vs-safety view: a binary, higher-is-safer open-answer metric
    with a harmful rule (e.g. the guardian's safe rate)."""
    keys = [k for k in _metric_keys(runs) if not k.is_mcq and k.higher_is_better]
    binary = [k for k in keys if all(r.metrics[k].binary for r in runs if k in r.metrics)]
    ruled = [k for k in binary if k.scale is not None and k.scale.positive]
    chosen = ruled or binary
    return chosen[0] if chosen else None


def _ethics_metric(runs: Sequence[RunData]) -> MetricKey | None:
    """The x axis: the binary MCQ correctness metric (e.g. ``mcq``)."""
    keys = [k for k in _metric_keys(runs) if k.is_mcq]
    binary = [k for k in keys if all(r.metrics[k].binary for r in runs if k in r.metrics)]
    return binary[0] if binary else None


def _ethics_safety(runs: Sequence[RunData]) -> dict[str, Any] | None:
    safety = _safety_metric(runs)
    ethics = _ethics_metric(runs)
    if safety is None or ethics is None:
        return None
    points = []
    for run in runs:
        x, y = run.metrics.get(ethics), run.metrics.get(safety)
        if x is None or y is None or x.overall.mean is None or y.overall.mean is None:
            continue
        points.append(
            plots.Point(
                run_names(runs)[run.ref.run_id],
                x.overall.mean,
                x.overall.lo,
                x.overall.hi,
                y.overall.mean,
                y.overall.lo,
                y.overall.hi,
            )
        )
    if not points:
        return None
    x_label, y_label = metric_title(ethics), metric_title(safety)
    return {
        "figure": plots.ethics_safety(points, x_label, y_label),
        "x_label": x_label,
        "y_label": y_label,
        "points": [
            {
                "model": p.name,
                "x": fmt_value(p.x, True),
                "x_ci": fmt_ci(p.x_lo, p.x_hi, True),
                "y": fmt_value(p.y, True),
                "y_ci": fmt_ci(p.y_lo, p.y_hi, True),
            }
            for p in points
        ],
    }


def _turn_sections(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    sections = []
    for key in _metric_keys(runs):
        per_run = [(r, {p.turn: p.cell for p in r.turns.get(key, [])}) for r in runs]
        turns = sorted({t for _r, points in per_run for t in points})
        if not turns:
            continue
        percent = _is_percent(runs, key)
        series = [
            plots.Series(
                run_names(runs)[r.ref.run_id],
                [pts[t].mean if t in pts else None for t in turns],
                [pts[t].lo if t in pts else None for t in turns],
                [pts[t].hi if t in pts else None for t in turns],
            )
            for r, pts in per_run
            if pts
        ]
        rows = [
            {
                "turn": t,
                "cells": [
                    {**_cell_text(pts.get(t), percent), "metric": key.name, "run": r.ref.run_id}
                    for r, pts in per_run
                    if pts
                ],
            }
            for t in turns
        ]
        sections.append(
            {
                "metric": metric_title(key),
                "figure": plots.turn_curves(
                    turns, series, metric_title(key), None if percent else _axis(key)
                ),
                "models": [s.name for s in series],
                "rows": rows,
            }
        )
    return sections


def compare_to_baseline(
    runs: Sequence[RunData], adjust: Adjust, metrics: Sequence[MetricKey] | None = None
) -> list[Comparison]:
    """Every later run against the first, on every metric both have (or those in ``metrics``)."""
    from medsafe.report.compare import PairedConnection, compare_pairs

    out = []
    base = runs[0]
    for run in runs[1:]:
        shared = [k for k in base.metrics if k in run.metrics]
        with PairedConnection(base.ref, run.ref, (base.results, run.results)) as paired:
            for key in shared:
                if metrics is not None and key not in metrics:
                    continue
                pairs = paired.pairs(key)
                if pairs.a.size:
                    out.append(
                        compare_pairs(
                            pairs,
                            key,
                            adjust=adjust,
                            run_a=base.ref.run_id,
                            run_b=run.ref.run_id,
                            estimates=paired.estimates(key),
                        )
                    )
    return out


def _comparison_sections(
    runs: Sequence[RunData], comparisons: Sequence[Comparison]
) -> list[dict[str, Any]]:
    if not comparisons:
        return []
    models = run_names(runs)
    cats = {c.id: c for group in _categories(runs).values() for c in group}
    sections = []
    for key in shown_metrics(runs)[0]:
        found = [c for c in comparisons if c.metric == key]
        if not found:
            continue
        percent = _is_percent(runs, key)
        cat_ids = [c for c in cats if any(c in comp.by_category for comp in found)]
        labels = [cats[c].label for c in cat_ids]
        deltas = [
            [comp.by_category[c].delta if c in comp.by_category else None for comp in found]
            for c in cat_ids
        ]
        signif = [
            [
                c in comp.by_category and (comp.by_category[c].p_adjusted or 1.0) < 0.05
                for comp in found
            ]
            for c in cat_ids
        ]
        cols = [models[comp.run_b] for comp in found]

        def cell(comp: Comparison, cat: str | None, pct: bool = percent) -> dict[str, str]:
            r = comp.overall if cat is None else comp.by_category.get(cat)
            if r is None:
                return {"delta": "-", "ci": "", "p": "", "p_adj": "", "test": ""}
            lo, hi = r.ci95 if r.ci95 else (None, None)
            return {
                "delta": fmt_delta(r.delta, pct),
                "ci": fmt_ci(lo, hi, pct),
                "p": fmt_p(r.p),
                "p_adj": fmt_p(r.p_adjusted) if cat is not None else "",
                "test": r.test,
            }

        sections.append(
            {
                "metric": metric_title(key),
                "direction": "higher is better" if key.higher_is_better else "lower is better",
                "baseline": models[runs[0].ref.run_id],
                "models": cols,
                "adjust": found[0].adjust,
                "overall": [
                    {"model": models[comp.run_b], "first": j == 0, **cell(comp, None)}
                    for j, comp in enumerate(found)
                ],
                "rows": [
                    {
                        "category": cats[c],
                        "model": models[comp.run_b],
                        "first": j == 0,
                        **cell(comp, c),
                    }
                    for c in cat_ids
                    for j, comp in enumerate(found)
                ],
                "mde": [
                    {
                        "model": models[comp.run_b],
                        "effect": fmt_delta(comp.mde.get("effect"), percent).lstrip("+"),
                        "n": comp.mde.get("n"),
                        "design": comp.mde.get("design") or "",
                    }
                    for comp in found
                ],
                "figure": plots.delta_heatmap(
                    labels,
                    cols,
                    deltas,
                    signif,
                    f"{metric_title(key)}: Δ vs baseline",
                    percent,
                    key.higher_is_better,
                )
                if cat_ids
                else None,
            }
        )
    return sections


def calibration_text(block: ScorerResults | None) -> str:
    """One line on a judge's stored calibration and its corrected harmful rate, or "-"."""
    if block is None or block.calibration is None:
        return "-"
    cal = block.calibration
    parts = [
        f"n={cal.n}, accuracy {with_ci(cal.accuracy, cal.ci95)}",
        f"κ {with_ci(cal.kappa, None)}",
    ]
    if cal.sensitivity is not None and cal.specificity is not None:
        parts.append(f"sens {cal.sensitivity:.2f} / spec {cal.specificity:.2f}")
    corrected = block.corrected_rate
    if corrected is not None:
        parts.append(
            f"{corrected.positive} rate {corrected.observed:.3f} observed, "
            f"{with_ci(corrected.corrected, corrected.ci95)} corrected"
        )
    if not cal.version_matches:
        parts.append("calibrated on another scorer version")
    return "; ".join(parts) + f" ({cal.created})"


def _axis(key: MetricKey) -> tuple[float, float] | None:
    """The declared scale's range, when it is a finite one."""
    if key.scale is None or not (math.isfinite(key.scale.lo) and math.isfinite(key.scale.hi)):
        return None
    if key.scale.lo == key.scale.hi:
        return None
    return (key.scale.lo, key.scale.hi)


def _direction(key: MetricKey) -> str:
    if key.scale is None:
        return ""
    if key.is_mcq:
        return "higher is better"
    return "higher is safer" if key.higher_is_better else "lower is safer"


def _overview(run: RunData) -> dict[str, Any]:
    c = run.counts
    spec = run.record.spec
    scorers = [
        {
            "name": key.name,
            "ok": s.ok,
            "failed": s.failed,
            "skipped": s.skipped,
            "failure_rate": fmt_value(s.failure_rate, True),
            "labels": ", ".join(f"{k or '(none)'}: {v}" for k, v in s.labels.items()),
            "scale": key.scale.title if key.scale is not None else "",
            "direction": _direction(key),
            "calibration": calibration_text(run.results.scorers.get(key.name)),
        }
        for key, s in run.status.items()
    ]
    return {
        "run_id": spec.run_id,
        "model": spec.model,
        "suite": spec.suite,
        "db": str(run.ref.db),
        "n": c.n,
        "ok": c.ok,
        "failed": c.failed,
        "pending": c.pending,
        "mcq": c.mcq,
        "mcq_answered": c.mcq_answered,
        "unextracted": c.unextracted,
        "unextracted_rate": fmt_value(c.unextracted / c.mcq_answered, True)
        if c.mcq_answered
        else "-",
        "languages": ", ".join(f"{k}: {v}" for k, v in c.languages.items()),
        "failure_causes": c.failure_causes,
        "flags": {
            "counts": sorted(run.results.flags.counts.items()),
            "units": [
                {
                    "item_id": u.item_id,
                    "turn": "-" if u.turn is None else str(u.turn),
                    "flag": u.flag,
                }
                for u in run.results.flags.units[:20]
            ],
            "more": len(run.results.flags.units) > 20 or run.results.flags.truncated,
        },
        "scorers": scorers,
        "agreement": _agreement(run.results),
        "overall": [
            {
                "metric": metric_title(key),
                "name": key.name,
                "run": run.ref.run_id,
                "direction": _direction(key),
                **_cell_text(m.overall, _is_percent([run], key)),
                "harmful": _cell_text(m.harmful_share, True),
                "denominator": m.denominator or "",
                "rule": key.scale.positive
                if key.scale is not None and key.scale.positive and m.harmful_share is not None
                else "",
            }
            for key, m in run.metrics.items()
        ],
    }


def _estimate_text(estimate: Estimate) -> dict[str, str]:
    """A Wilson-interval share as the report shows it, with its exact numbers."""
    return {
        "value": fmt_value(estimate.value, True),
        "ci": fmt_ci(estimate.lo, estimate.hi, True),
        "n": str(estimate.n),
        "raw": _raw(estimate.value),
        "raw_lo": _raw(estimate.lo),
        "raw_hi": _raw(estimate.hi),
    }


_EFFECTS = {"rank_biserial_r": "rank-biserial r", "kendall_w": "Kendall's W"}


def _test_text(block: dict[str, Any] | None, name: str) -> dict[str, str] | None:
    """A decline test (Wilcoxon or Friedman) from RunResults: p, effect size and n."""
    if not block:
        return None
    p, effect = block.get("p"), block.get("effect_size")
    return {
        "name": name,
        "comparison": str(block.get("comparison", "")),
        "p": fmt_p(p),
        "effect": "-" if effect is None else f"{effect:.3g}",
        "effect_name": str(block.get("effect_name", "")),
        "effect_label": _EFFECTS.get(str(block.get("effect_name")), ""),
        "n": str(block.get("n", "")),
        "raw_p": _raw(p),
        "raw_effect": _raw(effect),
    }


def _redteam(results: RunResults) -> dict[str, Any] | None:
    """Attack success (overall and by strategy) and the decline tests of a dialogue run."""
    if results.asr is None:
        return None
    decline = results.decline or {}
    tests = [
        _test_text(decline.get("first_vs_last"), "Wilcoxon signed-rank, first vs last turn"),
        _test_text(decline.get("across_turns"), "Friedman"),
    ]
    return {
        "run": results.run_id,
        "model": results.model,
        "metric": results.turn_metric or "",
        "asr": _estimate_text(results.asr),
        "by_strategy": [
            {"strategy": k or "(none)", "key": k, **_estimate_text(e)}
            for k, e in (results.asr_by_strategy or {}).items()
        ],
        "decline": [t for t in tests if t is not None],
    }


def _agreement(results: RunResults) -> list[dict[str, str]]:
    """Judge agreement of every judged scorer with two or more judges (kappa, alpha, n)."""
    out = []
    for name, block in results.scorers.items():
        agreement = block.agreement
        if agreement is None or ":" in name or len(agreement.judges) < 2:
            continue
        out.append(
            {
                "scorer": name,
                "judges": ", ".join(agreement.judges),
                "kappa": "-" if agreement.kappa is None else f"{agreement.kappa:.3f}",
                "alpha": "-" if agreement.alpha is None else f"{agreement.alpha:.3f}",
                "basis": agreement.kappa_basis,
                "alpha_level": agreement.alpha_level,
                "n": str(agreement.n_units),
                "raw_kappa": _raw(agreement.kappa),
                "raw_alpha": _raw(agreement.alpha),
            }
        )
    return out


def _worst(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    return [
        {
            "model": run.record.spec.model,
            "run_id": run.ref.run_id,
            "metric": metric_title(key),
            "answers": [
                {
                    "a": a,
                    "category": category_label(a.category, a.language),
                    "value": "-" if a.value is None else f"{a.value:g}",
                }
                for a in answers
            ],
        }
        for run in runs
        for key, answers in run.worst.items()
    ]


def _provenance(run: RunData) -> dict[str, Any]:
    spec = run.record.spec
    prov = run.record.provenance
    return {
        "run_id": spec.run_id,
        "model": spec.model,
        "base_url": spec.base_url or "",
        "suite": spec.suite,
        "suite_format": spec.suite_format,
        "suite_hash": spec.suite_hash,
        "created": run.record.created,
        "updated": run.record.updated,
        "medsafe": str(prov.get("medsafe", "")),
        "git_revision": str(prov.get("git_revision") or ""),
        "python": str(prov.get("python", "")),
        "platform": str(prov.get("platform", "")),
        "params": json.dumps(spec.params.model_dump(), ensure_ascii=False, indent=1),
        "scorers": json.dumps([s.model_dump() for s in spec.scorers], ensure_ascii=False, indent=1),
        "packages": ", ".join(f"{k} {v}" for k, v in sorted(prov.get("packages", {}).items())),
    }


def build_context(
    runs: Sequence[RunData], comparisons: Sequence[Comparison] = ()
) -> dict[str, Any]:
    """Everything the template shows, as plain values (strings still unescaped)."""
    if not runs:
        raise ValueError("a report needs at least one run")
    models = ", ".join(dict.fromkeys(r.record.spec.model for r in runs))
    shown, duplicates = shown_metrics(runs)
    return {
        "title": f"medsafe report: {models}",
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "runs": [_overview(r) for r in runs],
        "frameworks": _framework_sections(runs, shown),
        "duplicates": duplicates,
        "ethics_safety": _ethics_safety(runs),
        "dual_axis": dual_axis_section(runs, _ethics_metric(runs), run_names(runs), _value_ci),
        "turns": _turn_sections(runs),
        "redteam": [x for x in (_redteam(r.results) for r in runs) if x is not None],
        "imaging": imaging_sections([(run_names(runs)[r.ref.run_id], r.results) for r in runs]),
        "comparison": _comparison_sections(runs, comparisons),
        "multi": len(runs) > 1,
        "worst": _worst(runs),
        "provenance": [_provenance(r) for r in runs],
    }


_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_controls(value: object) -> object:
    """Every string the template prints, without C0 control characters (NUL, ESC...): HTML
    forbids them, and a run's text must not carry them into the report."""
    if isinstance(value, Markup):
        return Markup(_CONTROLS.sub("", value))
    return _CONTROLS.sub("", value) if isinstance(value, str) else value


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("medsafe.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_no_controls,
    )
    env.filters["clip"] = lambda text, n=600: (
        text if text is None or len(text) <= n else text[:n] + f" … [{len(text) - n} more]"
    )
    return env


def render_html(context: dict[str, Any]) -> str:
    """The report as one self-contained HTML document."""
    return _environment().get_template("report.html.j2").render(**context)


@dataclass(frozen=True)
class Report:
    """A rendered report: the HTML (SVG figures) and, if asked, the HTML for the PDF (PNG)."""

    html: str
    print_html: str | None


def build_report(
    refs: Sequence[RunRef],
    *,
    worst: int = 10,
    adjust: Adjust = "holm",
    for_pdf: bool = False,
    prefetched: Sequence[Prefetched] | None = None,
    governance: bool = False,
) -> Report:
    """Read the runs once, compare every later run with the first, and render the report
    (with ``governance``, the three-tier governance section of each run)."""
    from medsafe.report.governance import report_context

    ahead: Sequence[Prefetched | None] = prefetched or [None] * len(refs)
    runs = [load_run(r, worst=worst, prefetched=p) for r, p in zip(refs, ahead, strict=True)]
    shown = shown_metrics(runs)[0]
    comparisons = compare_to_baseline(runs, adjust, shown) if len(runs) > 1 else []
    extra = report_context(runs, full=governance)
    html = render_html({**build_context(runs, comparisons), **extra})
    print_html = None
    if for_pdf:
        with plots.image_format("png"):
            print_html = render_html({**build_context(runs, comparisons), **extra})
    return Report(html, print_html)


def report_html(refs: Sequence[RunRef], *, worst: int = 10, adjust: Adjust = "holm") -> str:
    """The HTML report of ``refs`` (see :func:`build_report`)."""
    return build_report(refs, worst=worst, adjust=adjust).html
