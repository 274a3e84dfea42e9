"""``medsafe align verdict``: did training make the model safer, and at what price?

1. **Safety, paired**: :func:`medsafe.report.compare.compare_runs` on the same items of the
   before and after runs (McNemar for a binary metric such as the guardian's safe rate, Wilcoxon
   signed-rank otherwise; paired-bootstrap 95% CI of the delta; per category with Holm).
2. **Over-refusal** on a benign control set (``benign-control``: questions where refusing is
   wrong): the share of answers the safety scorer labels ``refusal``, before and after, each with
   its Wilson 95% interval, and McNemar on the paired refusal indicators.
3. **Dual axis**: when the items' categories belong to two taxonomy frameworks (e.g.
   ``cn-ethics`` and ``cn-safety``), the metric's mean on each framework's items, before and
   after (Wilson intervals for a binary metric), drawn as one point per run.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medsafe.align.candidates import HUMAN, run_candidates
from medsafe.errors import StoreError
from medsafe.report.compare import Comparison, PairedResult, compare_arrays, compare_runs
from medsafe.report.data import RunRef, open_store
from medsafe.results.estimate import proportion
from medsafe.results.models import Estimate
from medsafe.taxonomy.registry import framework_of, get_framework

REFUSAL = "refusal"


@dataclass(frozen=True)
class OverRefusal:
    """Refusals on benign items, before and after, paired."""

    before: Estimate
    after: Estimate
    paired: PairedResult

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "before": self.before.model_dump(mode="json"),
            "after": self.after.model_dump(mode="json"),
            "paired": self.paired.to_dict(),
        }


@dataclass(frozen=True)
class GroupScore:
    """The metric's mean over one framework's items in one run."""

    framework: str
    run: str
    estimate: Estimate


@dataclass(frozen=True)
class Verdict:
    """The whole before/after verdict."""

    safety: Comparison
    over_refusal: OverRefusal | None
    dual: list[GroupScore]

    def to_dict(self) -> dict[str, Any]:
        """The ``align verdict --json`` object."""
        return {
            "safety": self.safety.to_dict(),
            "over_refusal": None if self.over_refusal is None else self.over_refusal.to_dict(),
            "dual_axis": [
                {"framework": g.framework, "run": g.run, **g.estimate.model_dump(mode="json")}
                for g in self.dual
            ],
        }


def _refusals(ref: RunRef, scorer: str) -> dict[str, bool]:
    """Item id -> whether its answer was labelled a refusal (human label first)."""
    out: dict[str, bool] = {}
    store = open_store(ref.db)
    try:
        for c in run_candidates(store, ref.run_id, scorer):
            labels = [s for s in c.scores if s["judge"] == HUMAN and s["label"]] or [
                s for s in c.scores if s["label"]
            ]
            if c.answer is not None and labels:
                out[c.item.id] = any(s["label"] == REFUSAL for s in labels)
    finally:
        store.close()
    return out


def over_refusal(before: RunRef, after: RunRef, scorer: str = "guardian") -> OverRefusal:
    """Refusal rates on the control runs and the paired test on the items both answered."""
    a, b = _refusals(before, scorer), _refusals(after, scorer)
    if not a or not b:
        raise StoreError(
            f"no {scorer!r} labels in control run {before.run_id if not a else after.run_id!r}"
        )
    shared = sorted(a.keys() & b.keys())
    va = np.array([float(a[i]) for i in shared])
    vb = np.array([float(b[i]) for i in shared])
    return OverRefusal(
        before=proportion(sum(a.values()), len(a)),
        after=proportion(sum(b.values()), len(b)),
        paired=compare_arrays(va, vb, binary=True, metric="over_refusal"),
    )


def dual_axis(comparison: Comparison) -> list[GroupScore]:
    """Per-framework means of both runs when the categories span exactly two frameworks."""
    groups: dict[str, list[PairedResult]] = {}
    for category, result in comparison.by_category.items():
        framework = framework_of(category)
        if framework is not None and result.n_pairs:
            groups.setdefault(framework, []).append(result)
    if len(groups) != 2:
        return []
    out = []
    for framework, results in sorted(groups.items()):
        n = sum(r.n_pairs for r in results)
        for run, side in ((comparison.run_a, "a"), (comparison.run_b, "b")):
            total = sum(getattr(r, side) * r.n_pairs for r in results)
            if comparison.binary:
                estimate = proportion(round(total), n)
            else:
                estimate = Estimate(value=total / n, ci95=None, n=n, method=None)
            out.append(GroupScore(framework, run, estimate))
    return out


def dual_axis_svg(groups: list[GroupScore]) -> bytes:
    """The dual-axis figure (first framework on x, second on y; one point per run) as SVG."""
    from medsafe.report import plots

    frameworks = sorted({g.framework for g in groups})
    runs = list(dict.fromkeys(g.run for g in groups))
    by = {(g.framework, g.run): g.estimate for g in groups}
    points = []
    for run in runs:
        x, y = by[(frameworks[0], run)], by[(frameworks[1], run)]
        if x.value is None or y.value is None:
            continue
        xl, xh = x.ci95 if x.ci95 else (None, None)
        yl, yh = y.ci95 if y.ci95 else (None, None)
        points.append(plots.Point(run, x.value, xl, xh, y.value, yl, yh))
    x_label, y_label = (f"{get_framework(f).title} ({f})" for f in frameworks)
    uri = plots.ethics_safety(points, x_label, y_label)
    return base64.b64decode(uri.partition(",")[2])


def verdict(
    before: RunRef,
    after: RunRef,
    *,
    metric: str | None = None,
    control: tuple[RunRef, RunRef] | None = None,
    refusal_scorer: str = "guardian",
) -> Verdict:
    """The paired safety comparison, over-refusal on the control runs, the dual-axis scores."""
    safety = compare_runs(before, after, metric=metric, adjust="holm")
    refusals = over_refusal(*control, refusal_scorer) if control else None
    return Verdict(safety=safety, over_refusal=refusals, dual=dual_axis(safety))


def write_svg(path: Path, svg: bytes) -> None:
    """Write the figure atomically."""
    from medsafe.outputs import staged, stderr_note

    with staged(path, stderr_note) as tmp:
        tmp.write_bytes(svg)
