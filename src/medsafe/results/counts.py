"""Items, generations and MCQ accuracy of a run, overall and by category and language.

accuracy = correct / answered, where *answered* counts MCQ items whose generation succeeded;
an unextracted answer counts as not correct and is reported as ``unextracted``;
accuracy_extracted = correct / (answered - unextracted); failed generations are excluded
from every denominator. Interval: Wilson (docs/statistics.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from medsafe.results.estimate import proportion
from medsafe.results.models import GroupCounts
from medsafe.store import aggregates as sql


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _block(rows: Iterable[sql.GroupRow]) -> GroupCounts:
    n = ok = failed = answered = correct = unextracted = 0
    partial = 0.0
    for r in rows:
        n, ok, failed = n + r.n, ok + r.ok, failed + r.failed
        answered, correct = answered + r.mcq_answered, correct + r.correct
        unextracted, partial = unextracted + r.unextracted, partial + r.partial
    mcq = proportion(correct, answered)
    return GroupCounts(
        n=n,
        ok=ok,
        failed=failed,
        pending=n - ok - failed,
        mcq_answered=answered,
        correct=correct,
        unextracted=unextracted,
        accuracy=mcq.value,
        ci95=mcq.ci95,
        accuracy_extracted=_ratio(correct, answered - unextracted),
        partial_credit=_ratio(partial, answered),
        mcq=mcq,
    )


def group_counts(
    rows: list[sql.GroupRow],
) -> tuple[GroupCounts, dict[str, GroupCounts], dict[str, GroupCounts]]:
    """The whole run, by category and by language, from the item groups."""
    categories = sorted({r.category for r in rows})
    languages = sorted({r.language for r in rows})
    return (
        _block(rows),
        {c: _block(r for r in rows if r.category == c) for c in categories},
        {lang: _block(r for r in rows if r.language == lang) for lang in languages},
    )
