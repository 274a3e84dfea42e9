"""The dual-axis view: MCQ accuracy on one taxonomy framework against another, per run.

The Chinese medical-ethics benchmark plots each model's accuracy on its ethics dimensions
against its safety dimensions (before and after fine-tuning). Any report whose MCQ items fall in
exactly two frameworks (``cn-ethics`` and ``cn-safety`` in the ``cn-dual`` sample suite) gets the
same figure: one point per run, each axis the run's accuracy over that framework's items with
its Wilson interval (the per-category counts come from RunResults; the pooled proportion from
:func:`medsafe.results.estimate.proportion`, the statistic every surface uses for a rate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from medsafe.report import plots
from medsafe.report.data import MetricKey, RunData
from medsafe.results.estimate import proportion
from medsafe.taxonomy import framework_of
from medsafe.taxonomy.registry import get_framework


def _counts(run: RunData, key: MetricKey) -> dict[str, tuple[int, int]]:
    """(correct, answered) per framework, summed over the run's categories."""
    out: dict[str, tuple[int, int]] = {}
    metric = run.metrics.get(key)
    if metric is None:
        return out
    for category, cell in metric.by_category.items():
        framework = framework_of(category)
        if framework is None or not cell.n or cell.mean is None:
            continue
        correct, n = out.get(framework, (0, 0))
        out[framework] = (correct + round(cell.mean * cell.n), n + cell.n)
    return out


def dual_axis_section(
    runs: Sequence[RunData],
    key: MetricKey | None,
    names: Mapping[str, str],
    fmt: Callable[[float | None, float | None, float | None], tuple[str, str]],
) -> dict[str, Any] | None:
    """The figure and table, or None unless the runs' MCQ items span exactly two frameworks."""
    if key is None:
        return None
    counts = {run.ref.run_id: _counts(run, key) for run in runs}
    found = sorted({f for per in counts.values() for f in per})
    if len(found) != 2:
        return None
    x_name, y_name = found
    points, rows = [], []
    for run in runs:
        per = counts[run.ref.run_id]
        if x_name not in per or y_name not in per:
            continue
        x, y = proportion(*per[x_name]), proportion(*per[y_name])
        if x.value is None or y.value is None:
            continue
        name = names[run.ref.run_id]
        points.append(plots.Point(name, x.value, x.lo, x.hi, y.value, y.lo, y.hi))
        rows.append({"model": name, "x": fmt(x.value, x.lo, x.hi), "y": fmt(y.value, y.lo, y.hi),
                     "x_n": per[x_name][1], "y_n": per[y_name][1]})  # fmt: skip
    if not points:
        return None
    x_label, y_label = (f"{get_framework(f).title} ({f})" for f in (x_name, y_name))
    return {
        "figure": plots.ethics_safety(points, x_label, y_label),
        "x_label": x_label,
        "y_label": y_label,
        "rows": rows,
    }
