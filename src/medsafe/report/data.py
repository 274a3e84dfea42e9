"""SQL queries behind reports and comparisons: every aggregate is a GROUP BY in SQLite.

A *metric* is one (scorer, judge) pair. Its item-level value is the item's whole-transcript
score, or for scorers that only score turns the mean of the item's turn scores. MCQ scorers
count an unextracted answer (NULL value) as 0, as ``medsafe results`` does; any other scorer's
NULL (e.g. guardian ``unusable``) leaves the item out. One scan of ``scores`` (grouped by
metric, category, status, label and turn) gives counts, sums and turn curves; only per-group
sums, small groups for the bootstrap and the worst answers ever reach Python.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from medsafe.errors import StoreError
from medsafe.schema import Item, Score
from medsafe.store.sqlite import RunRecord, Store

if TYPE_CHECKING:
    from medsafe.stats import Interval

# medsafe.stats (scipy, statsmodels, scikit-learn) is imported inside the functions that use
# it, so that the CLI can start the SQL scans (see prefetch) while it loads.

ZERO_WHEN_NULL = ("mcq", "mcq.partial")
"""Scorers whose NULL value (an unextracted MCQ answer) counts as 0 (incorrect)."""
LOWER_IS_BETTER = ("harmfulness",)
"""Scorer families (name before the first ``.``) where a higher value is worse."""
BOOTSTRAP_MAX_N = 1000
"""Non-binary means of at most this many values get a percentile bootstrap CI, larger ones the
normal approximation (the bootstrap distribution of a mean is normal there; see docs)."""
Z95 = 1.959963984540054
FloatArray = NDArray[np.float64]

_VALUE = (
    "CASE WHEN s.status <> 'ok' THEN NULL "
    f"WHEN s.scorer IN ({', '.join(repr(n) for n in ZERO_WHEN_NULL)}) "
    "THEN COALESCE(s.value, 0.0) ELSE s.value END"
)
"""The metric value of one score row (SQL expression over ``scores s``)."""


_ITEM_VALUE = (
    f"COALESCE(MAX(CASE WHEN s.turn < 0 THEN {_VALUE} END), "
    f"AVG(CASE WHEN s.turn >= 0 THEN {_VALUE} END))"
)
"""An item's metric value (aggregate over its score rows of one metric)."""


def item_values_sql(schema: str = "main") -> str:
    """Per-item metric values of one run and metric: ``(item_id, v)``; params run, scorer, judge."""
    return (
        f"SELECT s.item_id AS item_id, {_ITEM_VALUE} AS v FROM {schema}.scores s "
        "WHERE s.run_id = ? AND s.scorer = ? AND s.judge = ? GROUP BY s.item_id"
    )


@dataclass(frozen=True, order=True)
class MetricKey:
    """A (scorer, judge) pair; ``name`` is how summaries and the CLI spell it."""

    scorer: str
    judge: str = ""

    @property
    def name(self) -> str:
        """``scorer``, or ``scorer:judge`` when the judge is not the scorer itself."""
        return self.scorer if self.judge in ("", self.scorer) else f"{self.scorer}:{self.judge}"

    @property
    def higher_is_better(self) -> bool:
        """False for scorer families listed in :data:`LOWER_IS_BETTER`."""
        return self.scorer.split(".", 1)[0] not in LOWER_IS_BETTER

    @property
    def is_mcq(self) -> bool:
        """Whether this is an MCQ correctness scorer."""
        return self.scorer in ZERO_WHEN_NULL


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
    """A mean (or rate) of ``n`` values with its 95% interval."""

    n: int
    mean: float | None
    ci: Interval | None

    @property
    def lo(self) -> float | None:
        """Lower bound, or None."""
        return None if self.ci is None or math.isnan(self.ci.lo) else self.ci.lo

    @property
    def hi(self) -> float | None:
        """Upper bound, or None."""
        return None if self.ci is None or math.isnan(self.ci.hi) else self.ci.hi


def normal_ci(n: int, total: float, total_sq: float) -> Interval:
    """Normal-approximation 95% CI of a mean from its sums (needs n >= 2)."""
    from medsafe.stats import Interval

    mean = total / n
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = Z95 * math.sqrt(var / n)
    return Interval(mean - half, mean + half, "normal")


def mean_cell(
    n: int, total: float, total_sq: float, binary: bool, values: Callable[[], FloatArray]
) -> Cell:
    """Mean with CI: Wilson for 0/1 values, bootstrap for small samples, else normal.

    The bootstrap is the percentile bootstrap of the mean over items, vectorised in numpy
    (``cluster_bootstrap_ci`` with one item per cluster), so a report never waits for
    ``scipy.stats`` to import.
    """
    from medsafe.stats import cluster_bootstrap_ci, wilson

    if n == 0:
        return Cell(0, None, None)
    mean = total / n
    if binary:
        return Cell(n, mean, wilson(round(total), n))
    if n < 2:
        return Cell(n, mean, None)
    if n <= BOOTSTRAP_MAX_N:
        v = values()
        ci = cluster_bootstrap_ci(v, np.arange(v.size), seed=0)  # one item per cluster
        return Cell(n, mean, replace(ci, method="percentile"))
    return Cell(n, mean, normal_ci(n, total, total_sq))


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
    """One metric of one run: overall and per-category means with CIs."""

    key: MetricKey
    binary: bool
    overall: Cell
    by_category: dict[str, Cell]
    status: StatusCounts
    has_turns: bool


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
    counts: Counts
    metrics: dict[MetricKey, MetricData]
    status: dict[MetricKey, StatusCounts]
    """Every scorer's rows by status, including scorers with no usable value."""
    turns: dict[MetricKey, list[TurnPoint]]
    worst: dict[MetricKey, list[Answer]]
    calibrations: dict[MetricKey, dict[str, Any]] = field(default_factory=dict)
    """Per metric: ``calibration`` and ``corrected_rate`` (see medsafe.calibrate.summary)."""


_COUNTS_SQL = """
SELECT i.category, i.language, i.kind, COUNT(*),
       COALESCE(SUM(t.status = 'ok'), 0), COALESCE(SUM(t.status = 'failed'), 0)
FROM items i LEFT JOIN transcripts t ON t.run_id = i.run_id AND t.item_id = i.item_id
WHERE i.run_id = ? GROUP BY i.category, i.language, i.kind
"""


def load_counts(conn: sqlite3.Connection, run_id: str, unextracted: int) -> Counts:
    """Item, generation and MCQ counts of a run (one GROUP BY)."""
    n = ok = failed = mcq = answered = 0
    by_category: dict[str, int] = {}
    by_cat_lang: dict[tuple[str, str], int] = {}
    languages: dict[str, int] = {}
    for category, language, kind, count, n_ok, n_failed in conn.execute(_COUNTS_SQL, (run_id,)):
        n, ok, failed = n + count, ok + n_ok, failed + n_failed
        if kind == "mcq":
            mcq, answered = mcq + count, answered + n_ok
        by_category[category] = by_category.get(category, 0) + count
        by_cat_lang[(category, language)] = by_cat_lang.get((category, language), 0) + count
        languages[language] = languages.get(language, 0) + count
    dominant: dict[str, str] = {}
    for (category, language), _count in sorted(by_cat_lang.items(), key=lambda kv: -kv[1]):
        dominant.setdefault(category, language)
    causes = conn.execute(
        "SELECT COALESCE(error, ''), COUNT(*) FROM transcripts WHERE run_id = ? "
        "AND status = 'failed' GROUP BY error ORDER BY COUNT(*) DESC, error LIMIT 5",
        (run_id,),
    ).fetchall()
    return Counts(
        n=n,
        ok=ok,
        failed=failed,
        mcq=mcq,
        mcq_answered=answered,
        unextracted=unextracted,
        by_category=dict(sorted(by_category.items())),
        category_language=dominant,
        languages=dict(sorted(languages.items())),
        failure_causes=[(str(e), int(c)) for e, c in causes],
    )


@dataclass
class _Sums:
    """Running sums of metric values."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    nonbinary: int = 0

    def add(self, n: int, total: float, total_sq: float, nonbinary: int) -> None:
        self.n += n
        self.total += total
        self.total_sq += total_sq
        self.nonbinary += nonbinary


_SCORES_SQL = f"""
SELECT s.scorer, s.judge, i.category, s.status, COALESCE(s.label, ''), s.turn, COUNT(*),
       COUNT({_VALUE}), COALESCE(SUM({_VALUE}), 0.0), COALESCE(SUM(({_VALUE}) * ({_VALUE})), 0.0),
       COALESCE(SUM(({_VALUE}) NOT IN (0.0, 1.0)), 0), MIN({_VALUE}), MAX({_VALUE})
FROM scores s JOIN items i ON i.run_id = s.run_id AND i.item_id = s.item_id
WHERE s.run_id = ? GROUP BY s.scorer, s.judge, i.category, s.status, s.label, s.turn
"""

_TURNED_SQL = f"""
SELECT x.scorer, x.judge, i.category, COUNT(x.v), COALESCE(SUM(x.v), 0.0),
       COALESCE(SUM(x.v * x.v), 0.0), COALESCE(SUM(x.v NOT IN (0.0, 1.0)), 0)
FROM (SELECT s.item_id, s.scorer, s.judge, AVG({_VALUE}) AS v FROM scores s
      WHERE s.run_id = ? AND s.turn >= 0 GROUP BY s.item_id, s.scorer, s.judge) x
JOIN items i ON i.run_id = ? AND i.item_id = x.item_id
GROUP BY x.scorer, x.judge, i.category
"""


@dataclass
class ScoreScan:
    """What one GROUP BY scan of a run's scores yields."""

    status: dict[MetricKey, StatusCounts]
    whole: dict[MetricKey, dict[str, _Sums]]
    turned: dict[MetricKey, dict[str, _Sums]]
    turns: dict[MetricKey, dict[int, _Sums]]
    extremes: dict[MetricKey, tuple[float, float]]
    """Smallest and largest value of each metric's score rows."""


def scan_scores(conn: sqlite3.Connection, run_id: str) -> ScoreScan:
    """Status and label counts, per-category sums and per-turn sums of every metric."""
    status: dict[MetricKey, dict[str, Any]] = {}
    whole: dict[MetricKey, dict[str, _Sums]] = {}
    turns: dict[MetricKey, dict[int, _Sums]] = {}
    extremes: dict[MetricKey, tuple[float, float]] = {}
    for row in conn.execute(_SCORES_SQL, (run_id,)):
        scorer, judge, category, state, label, turn, rows, *sums, low, high = row
        key = MetricKey(scorer, judge)
        if low is not None:
            old = extremes.get(key, (low, high))
            extremes[key] = (min(old[0], low), max(old[1], high))
        entry = status.setdefault(key, {"ok": 0, "failed": 0, "skipped": 0, "labels": {}})
        entry[state] = entry.get(state, 0) + rows
        if state == "ok":
            entry["labels"][label] = entry["labels"].get(label, 0) + rows
        if turn < 0:
            whole.setdefault(key, {}).setdefault(category, _Sums()).add(*sums)
        else:
            turns.setdefault(key, {}).setdefault(int(turn), _Sums()).add(*sums)
    turned: dict[MetricKey, dict[str, _Sums]] = {}
    if any(key not in whole for key in turns):
        for scorer, judge, category, *sums in conn.execute(_TURNED_SQL, (run_id, run_id)):
            key = MetricKey(scorer, judge)
            if key not in whole:
                turned.setdefault(key, {}).setdefault(category, _Sums()).add(*sums)
    counts = {
        key: StatusCounts(e["ok"], e["failed"], e["skipped"], dict(sorted(e["labels"].items())))
        for key, e in sorted(status.items())
    }
    return ScoreScan(counts, whole, turned, turns, extremes)


def _values_by_category(
    conn: sqlite3.Connection, run_id: str, key: MetricKey, categories: list[str] | None
) -> dict[str | None, FloatArray]:
    """Item-level values of one metric, by category (and all together under ``None``)."""
    sql = (
        f"SELECT i.category, x.v FROM ({item_values_sql()}) x JOIN items i ON i.run_id = ? "
        "AND i.item_id = x.item_id WHERE x.v IS NOT NULL"
    )
    args: tuple[Any, ...] = (run_id, key.scorer, key.judge, run_id)
    if categories is not None:
        sql += f" AND i.category IN ({', '.join('?' * len(categories))})"
        args += tuple(categories)
    grouped: dict[str | None, list[float]] = {}
    for category, value in conn.execute(sql, args):
        grouped.setdefault(category, []).append(value)
        grouped.setdefault(None, []).append(value)
    return {k: np.asarray(v, dtype=np.float64) for k, v in grouped.items()}


def _metric(
    conn: sqlite3.Connection, run_id: str, key: MetricKey, parts: dict[str, _Sums], scan: ScoreScan
) -> MetricData | None:
    parts = {c: p for c, p in parts.items() if p.n > 0}
    if not parts:
        return None
    binary = all(p.nonbinary == 0 for p in parts.values())
    total = _Sums()
    for p in parts.values():
        total.add(p.n, p.total, p.total_sq, p.nonbinary)
    small = [c for c, p in parts.items() if p.n <= BOOTSTRAP_MAX_N]
    values: dict[str | None, FloatArray] = {}
    if not binary and (small or total.n <= BOOTSTRAP_MAX_N):
        wanted = None if total.n <= BOOTSTRAP_MAX_N else small
        values = _values_by_category(conn, run_id, key, wanted)

    def cell(p: _Sums, group: str | None) -> Cell:
        return mean_cell(p.n, p.total, p.total_sq, binary, lambda: values.get(group, _EMPTY))

    return MetricData(
        key=key,
        binary=binary,
        overall=cell(total, None),
        by_category={c: cell(p, c) for c, p in sorted(parts.items())},
        status=scan.status.get(key, StatusCounts()),
        has_turns=key in scan.turns,
    )


def load_metrics(
    conn: sqlite3.Connection, run_id: str, scan: ScoreScan | None = None
) -> dict[MetricKey, MetricData]:
    """Every metric of a run: overall and per-category means with 95% CIs."""
    scan = scan or scan_scores(conn, run_id)
    out: dict[MetricKey, MetricData] = {}
    for key, parts in sorted({**scan.whole, **scan.turned}.items()):
        metric = _metric(conn, run_id, key, parts, scan)
        if metric is not None:
            out[key] = metric
    return out


_EMPTY: FloatArray = np.empty(0)


def load_turns(
    conn: sqlite3.Connection, run_id: str, key: MetricKey, sums: dict[int, _Sums]
) -> list[TurnPoint]:
    """Mean of a metric at each turn with a 95% CI: cluster bootstrap over conversations for
    non-binary scores when every turn has at most BOOTSTRAP_MAX_N values, else Wilson (binary)
    or normal from the SQL sums."""
    sums = {t: p for t, p in sorted(sums.items()) if p.n > 0}
    binary = all(p.nonbinary == 0 for p in sums.values())
    if binary or max((p.n for p in sums.values()), default=0) > BOOTSTRAP_MAX_N:
        return [
            TurnPoint(t, mean_cell(p.n, p.total, p.total_sq, binary, _no_values))
            for t, p in sums.items()
        ]
    data = conn.execute(
        f"SELECT {_VALUE}, s.turn, s.item_id FROM scores s WHERE s.run_id = ? AND s.scorer = ? "
        "AND s.judge = ? AND s.turn >= 0",
        (run_id, key.scorer, key.judge),
    ).fetchall()
    values = np.array([np.nan if v is None else v for v, _t, _i in data], dtype=np.float64)
    turns = np.array([t for _v, t, _i in data], dtype=np.int64)
    clusters = np.array([i for _v, _t, i in data], dtype=object)
    from medsafe.stats import by_turn_summary

    summary = by_turn_summary(values, turns, clusters, seed=0)
    return [TurnPoint(s.turn, Cell(s.n, s.mean, s.ci)) for s in summary]


def _no_values() -> FloatArray:
    return _EMPTY


_WORST_SQL = """
SELECT s.item_id, s.turn, s.value, s.label, s.score_json, i.category, i.language,
       i.item_json, t.response
FROM scores s JOIN items i ON i.run_id = s.run_id AND i.item_id = s.item_id
LEFT JOIN transcripts t ON t.run_id = s.run_id AND t.item_id = s.item_id
WHERE s.run_id = ? AND s.scorer = ? AND s.judge = ? AND s.status = 'ok' AND s.value IS NOT NULL
  AND {where}
ORDER BY {order} LIMIT ?
"""
_KEY_ORDER = "s.item_id, s.scorer, s.judge, s.turn"
"""The primary-key order of ``scores``: a LIMIT in this order stops the scan early."""


def load_worst(
    conn: sqlite3.Connection,
    run_id: str,
    key: MetricKey,
    k: int,
    *,
    extreme: float | None = None,
    any_unsafe: bool = True,
) -> list[Answer]:
    """The ``k`` worst-scored answers of a metric: ``unsafe`` labels first, then the worst value
    (lowest, or highest where lower is better), ties in item order.

    Run as up to three queries so that the common case stops early: unsafe rows in key order,
    rows at the metric's ``extreme`` value in key order, then the rest sorted by value.
    """
    direction = "ASC" if key.higher_is_better else "DESC"
    not_unsafe = "COALESCE(s.label, '') <> 'unsafe'"
    stages: list[tuple[str, str, tuple[Any, ...]]] = []
    if any_unsafe:
        stages.append(("s.label = 'unsafe'", _KEY_ORDER, ()))
    if extreme is not None:
        stages.append((f"{not_unsafe} AND s.value = ?", _KEY_ORDER, (extreme,)))
        stages.append((f"{not_unsafe} AND s.value <> ?", f"s.value {direction}, {_KEY_ORDER}",
                       (extreme,)))  # fmt: skip
    else:
        stages.append((not_unsafe, f"s.value {direction}, {_KEY_ORDER}", ()))
    rows: list[tuple[Any, ...]] = []
    for where, order, args in stages:
        if len(rows) >= k:
            break
        sql = _WORST_SQL.format(where=where, order=order)
        rows += conn.execute(sql, (run_id, key.scorer, key.judge, *args, k - len(rows))).fetchall()
    return [_answer(key, row) for row in rows]


def _answer(key: MetricKey, row: tuple[Any, ...]) -> Answer:
    item_id, turn, value, label, score_blob, category, language, item_blob, response = row
    item = Item.model_validate_json(item_blob)
    return Answer(
        item_id=item_id,
        category=category,
        language=language,
        metric=key.name,
        value=value,
        label=label,
        turn=None if turn < 0 else int(turn),
        prompt=item.last_user_text() or (item.question or ""),
        response=response,
        rationale=Score.model_validate_json(score_blob).rationale,
    )


def _worst_value(key: MetricKey, extremes: tuple[float, float] | None) -> float | None:
    if extremes is None:
        return None
    return extremes[0] if key.higher_is_better else extremes[1]


@dataclass(frozen=True)
class Prefetched:
    """A run's two large GROUP BY scans, done ahead (possibly in a worker thread)."""

    scan: ScoreScan
    counts: Counts


def prefetch(ref: RunRef) -> Prefetched:
    """Run the score scan and the item counts of ``ref`` on a connection of its own.

    Safe in a worker thread; SQLite releases the GIL while it scans, so the caller can import
    the rest of the report (scipy, matplotlib) meanwhile.
    """
    with open_store(ref.db) as store:
        store.require_run(ref.run_id)
        scan = scan_scores(store.connection, ref.run_id)
        unextracted = scan.status.get(MetricKey("mcq"), StatusCounts()).labels.get("unextracted", 0)
        return Prefetched(scan, load_counts(store.connection, ref.run_id, unextracted))


def load_run(ref: RunRef, *, worst: int = 10, prefetched: Prefetched | None = None) -> RunData:
    """Read one run's aggregates from its store (reusing ``prefetched`` scans if given)."""
    ahead = prefetched or prefetch(ref)
    scan = ahead.scan
    with open_store(ref.db) as store:
        record = store.require_run(ref.run_id)
        conn = store.connection
        metrics = load_metrics(conn, ref.run_id, scan)
        worst_answers = {
            key: load_worst(
                conn,
                ref.run_id,
                key,
                worst,
                extreme=_worst_value(key, scan.extremes.get(key)),
                any_unsafe=scan.status[key].labels.get("unsafe", 0) > 0,
            )
            for key in metrics
            if not key.is_mcq and worst > 0
        }
        return RunData(
            ref=ref,
            record=record,
            counts=ahead.counts,
            metrics=metrics,
            status=scan.status,
            turns={key: load_turns(conn, ref.run_id, key, t) for key, t in scan.turns.items()},
            worst={k: v for k, v in worst_answers.items() if v},
            calibrations=_calibrations(conn, ref.run_id, list(scan.status)),
        )


def _calibrations(
    conn: sqlite3.Connection, run_id: str, keys: list[MetricKey]
) -> dict[MetricKey, dict[str, Any]]:
    from medsafe.calibrate.store import latest_calibrations
    from medsafe.calibrate.summary import calibration_for

    table = latest_calibrations(conn)
    if not table:
        return {}
    found = {k: calibration_for(conn, run_id, k.scorer, k.judge, table) for k in keys}
    return {k: v for k, v in found.items() if v}
