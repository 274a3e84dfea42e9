"""What a report shows about a run, read from its :class:`~medsafe.results.RunResults`.

Every figure (means, rates, intervals, turn curves, calibration) is the RunResults number: the
report computes none of its own. Besides results, the report reads from the store only what
is not a statistic: item counts by kind and language, the most frequent failure causes and the
worst-scored answers to show.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from medsafe.errors import StoreError
from medsafe.results import Estimate, RunResults, ScorerResults, results_and_groups
from medsafe.scale import Scale
from medsafe.schema import Item, Score
from medsafe.store import aggregates as sql
from medsafe.store.sqlite import RunRecord, Store


@dataclass(frozen=True, order=True)
class MetricKey:
    """A (scorer, judge) pair; ``name`` is how results and the CLI spell it."""

    scorer: str
    judge: str = ""
    scale: Scale | None = field(default=None, compare=False, hash=False)
    """The scorer's declared scale (direction, range, title); None only for a bare lookup key."""

    @property
    def name(self) -> str:
        """``scorer``, or ``scorer:judge`` when the judge is not the scorer itself."""
        return self.scorer if self.judge in ("", self.scorer) else f"{self.scorer}:{self.judge}"

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher value is safer (the scale's direction)."""
        return self.scale.higher_is_safer if self.scale is not None else True

    @property
    def is_mcq(self) -> bool:
        """Whether this is a correctness score whose missing value counts as 0 (MCQ)."""
        return self.scale is not None and self.scale.null_value is not None

    @property
    def title(self) -> str:
        """The scale's title (the metric's name when it has no scale)."""
        if self.scale is None or self.judge in ("", self.scorer):
            return self.scale.title if self.scale is not None else self.name
        return f"{self.scale.title} · {self.judge}"


def metric_key(block: ScorerResults) -> MetricKey:
    """The key of a results block."""
    return MetricKey(block.scorer, block.judge, block.scale)


def resolve_metric(name: str, available: list[MetricKey]) -> MetricKey:
    """The metric called ``name`` (``scorer`` or ``scorer:judge``) among ``available``."""
    for key in available:
        if name in (key.name, f"{key.scorer}:{key.judge}"):
            return key
    known = ", ".join(k.name for k in available) or "none"
    raise StoreError(f"no metric {name!r} in both runs (metrics: {known})")


@dataclass(frozen=True)
class RunRef:
    """A run in a store file."""

    run_id: str
    db: Path

    @property
    def label(self) -> str:
        """``run_id`` (the store is given separately)."""
        return self.run_id


def parse_run_ref(text: str, default_db: Path) -> RunRef:
    """``RUN`` or ``RUN@PATH`` (run ids never contain ``@``)."""
    run_id, sep, path = text.partition("@")
    if not run_id or (sep and not path):
        raise StoreError(f"bad run reference {text!r}: use RUN or RUN@PATH")
    return RunRef(run_id, Path(path) if sep else default_db)


def open_store(db: Path) -> Store:
    """Open an existing store (never create one by accident)."""
    if not db.is_file():
        raise StoreError(f"{db}: no such store")
    return Store(db)


@dataclass(frozen=True)
class Cell:
    """A mean (or rate) of ``n`` values with its 95% interval, as RunResults gives it."""

    n: int
    mean: float | None
    lo: float | None = None
    hi: float | None = None
    method: str | None = None

    @classmethod
    def of(cls, estimate: Estimate) -> Cell:
        """The cell of a results estimate (the same numbers)."""
        lo = estimate.lo if estimate.lo is not None and math.isfinite(estimate.lo) else None
        hi = estimate.hi if estimate.hi is not None and math.isfinite(estimate.hi) else None
        return cls(estimate.n, estimate.value, lo, hi, estimate.method)


@dataclass(frozen=True)
class StatusCounts:
    """Score rows of one metric by status, and the labels of the ``ok`` ones."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float | None:
        """failed / (ok + failed); skipped rows (failed generations) are not judge failures."""
        judged = self.ok + self.failed
        return self.failed / judged if judged else None


@dataclass(frozen=True)
class MetricData:
    """One metric of one run: overall and per-category means with CIs (from RunResults)."""

    key: MetricKey
    binary: bool
    overall: Cell
    by_category: dict[str, Cell]
    status: StatusCounts
    has_turns: bool
    harmful_share: Cell | None = None
    denominator: str | None = None
    """What the mean is over when some verdicts have no value (the guardian's unusable and
    uncertain counts)."""


@dataclass(frozen=True)
class TurnPoint:
    """Mean of one metric at one turn."""

    turn: int
    cell: Cell


@dataclass(frozen=True)
class Answer:
    """One of the worst-scored answers, with its verdict."""

    item_id: str
    category: str
    language: str
    metric: str
    value: float | None
    label: str | None
    turn: int | None
    prompt: str
    response: str | None
    rationale: str | None


@dataclass(frozen=True)
class Counts:
    """Items and generations of a run."""

    n: int
    ok: int
    failed: int
    mcq: int
    mcq_answered: int
    unextracted: int
    by_category: dict[str, int]
    category_language: dict[str, str]
    languages: dict[str, int]
    failure_causes: list[tuple[str, int]]

    @property
    def pending(self) -> int:
        """Items with no transcript yet."""
        return self.n - self.ok - self.failed


@dataclass(frozen=True)
class RunData:
    """Everything a report shows about one run."""

    ref: RunRef
    record: RunRecord
    results: RunResults
    counts: Counts
    metrics: dict[MetricKey, MetricData]
    status: dict[MetricKey, StatusCounts]
    """Every scorer's rows by status, including scorers with no usable value."""
    turns: dict[MetricKey, list[TurnPoint]]
    worst: dict[MetricKey, list[Answer]]


def load_counts(
    results: RunResults, rows: list[sql.GroupRow], causes: list[tuple[str, int]]
) -> Counts:
    """Item, generation and MCQ counts of a run."""
    by_category: dict[str, int] = {}
    by_cat_lang: dict[tuple[str, str], int] = {}
    languages: dict[str, int] = {}
    mcq = 0
    for row in rows:
        mcq += row.n if row.kind == "mcq" else 0
        by_category[row.category] = by_category.get(row.category, 0) + row.n
        key = (row.category, row.language)
        by_cat_lang[key] = by_cat_lang.get(key, 0) + row.n
        languages[row.language] = languages.get(row.language, 0) + row.n
    dominant: dict[str, str] = {}
    for (category, language), _count in sorted(by_cat_lang.items(), key=lambda kv: -kv[1]):
        dominant.setdefault(category, language)
    return Counts(
        n=results.n,
        ok=results.ok,
        failed=results.failed,
        mcq=mcq,
        mcq_answered=results.mcq_answered,
        unextracted=results.unextracted,
        by_category=dict(sorted(by_category.items())),
        category_language=dominant,
        languages=dict(sorted(languages.items())),
        failure_causes=causes,
    )


def _status(block: ScorerResults) -> StatusCounts:
    return StatusCounts(block.ok, block.failed, block.skipped, dict(block.labels))


def metrics_of(results: RunResults) -> dict[MetricKey, MetricData]:
    """One entry per (scorer, judge) block of the results that has a value."""
    out: dict[MetricKey, MetricData] = {}
    for name, block in results.scorers.items():
        if block.headline is not None or name != metric_key(block).name:
            continue  # a scorer's headline entry repeats its jury's (or judge's) block
        if block.estimate.n == 0:
            continue
        key = metric_key(block)
        out[key] = MetricData(
            key=key,
            binary=block.scale.kind == "binary" and not block.per_turn,
            overall=Cell.of(block.estimate),
            by_category={
                c: Cell.of(g.estimate) for c, g in block.by_category.items() if g.estimate.n > 0
            },
            status=_status(block),
            has_turns=block.per_turn or name in results.turn_metrics,
            harmful_share=Cell.of(block.harmful_share) if block.harmful_share else None,
            denominator=block.denominator,
        )
    return dict(sorted(out.items()))


def turns_of(results: RunResults, keys: dict[str, MetricKey]) -> dict[MetricKey, list[TurnPoint]]:
    """Per-turn means with their cluster-bootstrap intervals, per metric."""
    out: dict[MetricKey, list[TurnPoint]] = {}
    for name, metric in results.turn_metrics.items():
        key = keys.get(name)
        if key is None:
            continue
        out[key] = [
            TurnPoint(
                p.turn,
                Cell(
                    p.n,
                    p.mean,
                    p.ci95[0] if p.ci95 else None,
                    p.ci95[1] if p.ci95 else None,
                    p.method,
                ),
            )
            for p in metric.by_turn
        ]
    return out


def _answer(key: MetricKey, row: sql.WorstRow) -> Answer:
    item = Item.model_validate_json(row.item_json)
    return Answer(
        item_id=row.item_id,
        category=row.category,
        language=row.language,
        metric=key.name,
        value=row.value,
        label=row.label,
        turn=row.turn,
        prompt=item.last_user_text() or (item.question or ""),
        response=row.response,
        rationale=Score.model_validate_json(row.score_json).rationale,
    )


def load_worst(store: Store, run_id: str, metric: MetricData, k: int) -> list[Answer]:
    """The ``k`` worst-scored answers of a metric: harmful labels first, then the least safe
    value (lowest, or highest where lower is safer), ties in item order."""
    key = metric.key
    scale = key.scale
    if scale is None or k <= 0:
        return []
    rule = scale.rule()
    positive = tuple(sorted(rule.labels)) if rule is not None else ()
    present = tuple(label for label in positive if metric.status.labels.get(label, 0) > 0)
    extreme = scale.lo if scale.higher_is_safer else scale.hi
    rows = sql.worst_rows(
        store.connection,
        run_id,
        key.scorer,
        key.judge,
        k,
        higher_is_safer=scale.higher_is_safer,
        extreme=extreme if math.isfinite(extreme) else None,
        positive_labels=present,
    )
    return [_answer(key, row) for row in rows]


@dataclass(frozen=True)
class Prefetched:
    """A run's results and item counts, computed ahead (possibly in a worker thread)."""

    record: RunRecord
    results: RunResults
    kinds: list[sql.GroupRow]
    causes: list[tuple[str, int]]


def _has_jury(conn: sqlite3.Connection, run_id: str) -> bool:
    """Whether some scorer of the run has two or more judges (its agreement is shown)."""
    from medsafe.judges.jury import JURY

    judges = Counter(s for s, j in sql.score_keys(conn, run_id) if j not in ("", s, JURY))
    return any(n >= 2 for n in judges.values())


def prefetch(ref: RunRef) -> Prefetched:
    """Compute ``ref``'s results on a connection of its own (safe in a worker thread: SQLite
    releases the GIL while it scans, so the caller can import the renderer meanwhile)."""
    with open_store(ref.db) as store:
        record = store.require_run(ref.run_id)
        conn = store.connection
        # the decline tests and jury agreement need scipy.stats/sklearn: only when shown
        tests = sql.has_kind(conn, ref.run_id, "dialogue") or _has_jury(conn, ref.run_id)
        results, groups = results_and_groups(conn, record, tests=tests)
        return Prefetched(record, results, groups, sql.failure_causes(conn, ref.run_id))


def load_run(ref: RunRef, *, worst: int = 10, prefetched: Prefetched | None = None) -> RunData:
    """One run's report data (reusing ``prefetched`` results if given)."""
    ahead = prefetched or prefetch(ref)
    results = ahead.results
    metrics = metrics_of(results)
    status = {
        metric_key(b): _status(b)
        for name, b in results.scorers.items()
        if b.headline is None and name == metric_key(b).name
    }
    keys = {k.name: k for k in status}
    with open_store(ref.db) as store:
        worst_answers = {
            key: load_worst(store, ref.run_id, m, worst)
            for key, m in metrics.items()
            if not key.is_mcq and worst > 0
        }
    return RunData(
        ref=ref,
        record=ahead.record,
        results=results,
        counts=load_counts(results, ahead.kinds, ahead.causes),
        metrics=metrics,
        status=dict(sorted(status.items())),
        turns=turns_of(results, keys),
        worst={k: v for k, v in worst_answers.items() if v},
    )
