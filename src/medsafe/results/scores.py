"""Per scorer (and judge): counts, labels, the item-level mean with its CI, by category, and
the harmful share under the scale's positive rule. One scan of the run's scores feeds it all.

An item's value is its whole-transcript score, or, for a scorer that scores turns only, the
mean of its turn scores (so the items, not the turns, are the units of every interval).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

from medsafe.results.estimate import BOOTSTRAP_MAX_N, mean_from_sums, proportion
from medsafe.results.models import Estimate, ScoreGroup, ScorerResults
from medsafe.scale import Scale, unknown_scale
from medsafe.store import aggregates as sql


@dataclass
class _Sums:
    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, n: int, total: float, total_sq: float) -> None:
        self.n += n
        self.total += total
        self.total_sq += total_sq


@dataclass
class _Status:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    positive: int = 0
    decided: int = 0
    """Whole-transcript ok rows the positive rule could decide, and how many were positive."""
    no_value: dict[str, int] = field(default_factory=dict)
    """Ok rows without a value, by label."""

    def add(self, status: str, rows: int) -> None:
        if status == "ok":
            self.ok += rows
        elif status == "failed":
            self.failed += rows
        else:
            self.skipped += rows


@dataclass
class _Metric:
    status: _Status = field(default_factory=_Status)
    by_category: dict[str, _Status] = field(default_factory=dict)
    whole: dict[str, _Sums] = field(default_factory=dict)
    turned: dict[str, _Sums] = field(default_factory=dict)
    has_turns: bool = False
    low: float | None = None
    high: float | None = None


def metric_name(scorer: str, judge: str) -> str:
    """``scorer``, or ``scorer:judge`` when the judge is not the scorer itself."""
    return scorer if judge in ("", scorer) else f"{scorer}:{judge}"


def _positive(scale: Scale, row: sql.ScanRow) -> bool | None:
    """Whether the ok rows of one scan group are positive under a label rule (None: no label
    rule, or no label; threshold rules are counted in SQL)."""
    rule = scale.rule()
    if rule is None or not rule.labels or row.status != "ok" or not row.label:
        return None
    return rule.is_positive(row.label, None)


def _scan(
    conn: sqlite3.Connection, run_id: str, scales: Mapping[str, Scale]
) -> dict[tuple[str, str], _Metric]:
    nulls = {name: s.null_value for name, s in scales.items() if s.null_value is not None}
    rules = {n: rule for n, sc in scales.items() if (rule := sc.rule()) is not None}
    thresholds = {
        n: (str(rule.op), float(rule.threshold))
        for n, rule in rules.items()
        if rule.op is not None and rule.threshold is not None
    }
    metrics: dict[tuple[str, str], _Metric] = {}
    for row in sql.scan_scores(conn, run_id, nulls, thresholds):
        m = metrics.setdefault((row.scorer, row.judge), _Metric())
        if row.low is not None and row.high is not None:
            m.low = row.low if m.low is None else min(m.low, row.low)
            m.high = row.high if m.high is None else max(m.high, row.high)
        cat = m.by_category.setdefault(row.category, _Status())
        for status in (m.status, cat):
            status.add(row.status, row.rows)
            if row.status == "ok":
                status.labels[row.label] = status.labels.get(row.label, 0) + row.rows
                if row.rows > row.n_value and row.label:
                    missing = row.rows - row.n_value
                    status.no_value[row.label] = status.no_value.get(row.label, 0) + missing
        if row.turn is None:
            m.whole.setdefault(row.category, _Sums()).add(row.n_value, row.total, row.total_sq)
        else:
            m.has_turns = True
            continue
        if row.scorer in thresholds:
            for status in (m.status, cat):
                status.decided += row.thresholded
                status.positive += row.positive
            continue
        scale = scales.get(row.scorer)
        verdict = None if scale is None else _positive(scale, row)
        if verdict is not None:
            for status in (m.status, cat):
                status.decided += row.rows
                status.positive += row.rows if verdict else 0
    if any(m.has_turns and not m.whole for m in metrics.values()):
        for summed in sql.turned_sums(conn, run_id, nulls):
            owner = metrics.get((summed.scorer, summed.judge))
            if owner is not None and not owner.whole:
                owner.turned.setdefault(summed.category, _Sums()).add(
                    summed.n, summed.total, summed.total_sq
                )
    return metrics


NO_VALUE_LABELS = ("unusable", "uncertain")
"""Labels that carry no value by design; listed (with 0) whenever a scale names them."""


def _denominator(scale: Scale, status: _Status) -> tuple[dict[str, int], str | None]:
    """Ok verdicts without a value by label, and the mean's denominator in words."""
    counts = {label: 0 for label in NO_VALUE_LABELS if label in scale.labels}
    counts |= status.no_value
    if not counts:
        return {}, None
    left_out = sum(counts.values())
    parts = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
    return counts, f"mean over {status.ok - left_out} of {status.ok} ok verdicts ({parts} left out)"


def _estimate(
    sums: _Sums, group: str | None, binary: bool, values: dict[str | None, list[float]]
) -> Estimate:
    return mean_from_sums(
        sums.n, sums.total, sums.total_sq, binary=binary, values=lambda: values.get(group, [])
    )


def scorer_blocks(
    conn: sqlite3.Connection, run_id: str, scales: Mapping[str, Scale]
) -> dict[str, ScorerResults]:
    """One block per (scorer, judge) pair found in the run's scores, keyed ``scorer[:judge]``."""
    nulls = {name: s.null_value for name, s in scales.items() if s.null_value is not None}
    out: dict[str, ScorerResults] = {}
    for (scorer, judge), m in sorted(_scan(conn, run_id, scales).items()):
        scale = scales.get(scorer) or unknown_scale(scorer, m.low or 0.0, m.high or 0.0)
        per_turn = not m.whole and m.has_turns
        parts = {c: s for c, s in (m.whole or m.turned).items() if s.n > 0}
        binary = scale.kind == "binary" and not per_turn
        total = _Sums()
        for p in parts.values():
            total.add(p.n, p.total, p.total_sq)
        wanted: list[str] | None = None
        if not binary and total.n > BOOTSTRAP_MAX_N:
            wanted = [c for c, p in parts.items() if p.n <= BOOTSTRAP_MAX_N]
        values: dict[str | None, list[float]] = {}
        if not binary and (wanted is None or wanted):
            for _item, category, value in sql.item_values(
                conn, run_id, scorer, judge, nulls, wanted
            ):
                values.setdefault(category, []).append(value)
                values.setdefault(None, []).append(value)

        overall = _estimate(total, None, binary, values)
        has_rule = scale.rule() is not None and not per_turn
        groups = {}
        for category, status in sorted(m.by_category.items()):
            e = _estimate(parts.get(category, _Sums()), category, binary, values)
            groups[category] = ScoreGroup(
                n=status.ok + status.failed + status.skipped,
                ok=status.ok,
                failed=status.failed,
                skipped=status.skipped,
                mean=e.value,
                ci95=e.ci95,
                ci_method=e.method,
                estimate=e,
                harmful_share=proportion(status.positive, status.decided) if has_rule else None,
            )
        st = m.status
        judged = st.ok + st.failed
        no_value, denominator = _denominator(scale, st)
        out[metric_name(scorer, judge)] = ScorerResults(
            scorer=scorer,
            judge=judge,
            scale=scale,
            n=st.ok + st.failed + st.skipped,
            ok=st.ok,
            failed=st.failed,
            skipped=st.skipped,
            failure_rate=st.failed / judged if judged else None,
            mean=overall.value,
            ci95=overall.ci95,
            ci_method=overall.method,
            estimate=overall,
            per_turn=per_turn,
            labels=dict(sorted(st.labels.items())),
            by_category=groups,
            harmful_share=proportion(st.positive, st.decided) if has_rule else None,
            no_value=no_value,
            denominator=denominator,
        )
    return out
