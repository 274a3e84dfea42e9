"""The SQL behind a run's results: GROUP BY scans that return plain rows to ``medsafe.results``.

Nothing here computes a statistic; it counts, sums and reads. The store's internal encoding
(``turn = -1`` for a whole-transcript score, ``judge = ''`` for none) does not leave this
module: whole-transcript rows come back with ``turn`` None.

*Values*: a score row's value is NULL unless its status is ``ok``; an ok row without a value
takes its scale's ``null_value`` when the scale declares one (an unextracted MCQ answer
counts as 0), else stays NULL (e.g. the guardian's ``unusable``) and is left out of means.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from medsafe.store.pg import connect_pg, engine


def second_reader(conn: sqlite3.Connection) -> sqlite3.Connection | None:
    """Another read connection on ``conn``'s database file (for a worker thread), or None for
    an in-memory database."""
    if engine(conn) == "postgresql":
        return connect_pg(str(getattr(conn, "url", "")))
    for _seq, name, path in conn.execute("PRAGMA database_list"):
        if name == "main" and path:
            uri = Path(path).as_uri() + "?mode=ro"
            try:
                reader = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False
                )
                reader.execute("PRAGMA busy_timeout=60000")
                reader.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
            except sqlite3.Error:
                return None
            return reader
    return None


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def value_sql(null_values: Mapping[str, float], alias: str = "s") -> str:
    """The metric value of one score row (SQL expression over ``scores {alias}``)."""
    if not null_values:
        return f"CASE WHEN {alias}.status <> 'ok' THEN NULL ELSE {alias}.value END"
    cases = " ".join(
        f"WHEN {_literal(name)} THEN {float(v)!r}" for name, v in sorted(null_values.items())
    )
    return (
        f"CASE WHEN {alias}.status <> 'ok' THEN NULL "
        f"ELSE COALESCE({alias}.value, CASE {alias}.scorer {cases} END) END"
    )


def item_value_sql(null_values: Mapping[str, float]) -> str:
    """An item's value over its score rows of one metric: its whole-transcript score, else the
    mean of its turn scores (an aggregate over ``scores s`` grouped by item)."""
    v = value_sql(null_values)
    return (
        f"COALESCE(MAX(CASE WHEN s.turn < 0 THEN {v} END), AVG(CASE WHEN s.turn >= 0 THEN {v} END))"
    )


@dataclass(frozen=True)
class GroupRow:
    """Items of one category, language and kind: generations and MCQ correctness."""

    category: str
    language: str
    kind: str
    n: int
    ok: int
    failed: int
    mcq_answered: int
    correct: int
    unextracted: int
    partial: float


_GROUP_SQL = """
SELECT i.category, i.language, i.kind,
       COUNT(*) AS n,
       COALESCE(SUM(CASE WHEN t.status = 'ok' THEN 1 ELSE 0 END), 0) AS ok,
       COALESCE(SUM(CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
       COALESCE(SUM(CASE WHEN i.kind = 'mcq' AND t.status = 'ok' THEN 1 ELSE 0 END), 0)
           AS mcq_answered,
       COALESCE(SUM(CASE WHEN s.label = 'correct' THEN 1 ELSE 0 END), 0) AS correct,
       COALESCE(SUM(CASE WHEN s.label = 'unextracted' THEN 1 ELSE 0 END), 0) AS unextracted,
       COALESCE(SUM(p.value), 0.0) AS partial
FROM items i
LEFT JOIN transcripts t ON t.run_id = i.run_id AND t.item_id = i.item_id
LEFT JOIN scores s ON s.run_id = i.run_id AND s.item_id = i.item_id AND s.scorer = 'mcq'
     AND s.status = 'ok' AND s.turn = -1 AND s.judge = ''
LEFT JOIN scores p ON p.run_id = i.run_id AND p.item_id = i.item_id AND p.scorer = 'mcq.partial'
     AND p.status = 'ok' AND p.turn = -1 AND p.judge = ''
WHERE i.run_id = ?
GROUP BY i.category, i.language, i.kind
"""


def group_rows(conn: sqlite3.Connection, run_id: str) -> list[GroupRow]:
    """Item, generation and MCQ counts per (category, language, kind): one pass over items."""
    return [
        GroupRow(
            str(c), str(lang), str(kd), int(n), int(ok), int(f), int(a), int(k), int(u), float(p)
        )
        for c, lang, kd, n, ok, f, a, k, u, p in conn.execute(_GROUP_SQL, (run_id,))
    ]


def failure_causes(conn: sqlite3.Connection, run_id: str, limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent causes of failed generations, with their counts."""
    rows = conn.execute(
        "SELECT COALESCE(error, ''), COUNT(*) FROM transcripts WHERE run_id = ? "
        "AND status = 'failed' GROUP BY error ORDER BY COUNT(*) DESC, error LIMIT ?",
        (run_id, limit),
    ).fetchall()
    return [(str(e), int(c)) for e, c in rows]


@dataclass(frozen=True)
class ScanRow:
    """Score rows of one (scorer, judge, category, status, label, turn) group, with sums."""

    scorer: str
    judge: str
    category: str
    status: str
    label: str
    turn: int | None
    rows: int
    n_value: int
    total: float
    total_sq: float
    nonbinary: int
    low: float | None
    high: float | None
    positive: int
    """Rows whose value meets their scorer's threshold rule (0 without one)."""
    thresholded: int
    """Ok rows with a value that a threshold rule was applied to."""


_OPS = frozenset({"<", "<=", ">", ">="})


def _threshold_sql(rules: Mapping[str, tuple[str, float]]) -> tuple[str, str]:
    """SQL counting ok values meeting each scorer's ``value OP threshold`` rule, and those
    the rules applied to."""
    if not rules:
        return "0", "0"
    for op, _threshold in rules.values():
        if op not in _OPS:
            raise ValueError(f"bad comparison {op!r}")
    cases = " ".join(
        f"WHEN {_literal(name)} THEN CASE WHEN s.value {op} {float(threshold)!r} THEN 1 ELSE 0 END"
        for name, (op, threshold) in sorted(rules.items())
    )
    names = ", ".join(_literal(name) for name in sorted(rules))
    ok = "s.status = 'ok' AND s.value IS NOT NULL"
    return (
        f"COALESCE(SUM(CASE WHEN {ok} THEN CASE s.scorer {cases} END END), 0)",
        f"COALESCE(SUM(CASE WHEN {ok} AND s.scorer IN ({names}) THEN 1 ELSE 0 END), 0)",
    )


def scan_scores(
    conn: sqlite3.Connection,
    run_id: str,
    null_values: Mapping[str, float],
    thresholds: Mapping[str, tuple[str, float]] | None = None,
) -> list[ScanRow]:
    """Every score row of a run grouped by scorer, judge, category, status, label and turn,
    with the counts of the scorers' threshold rules (``{scorer: (op, threshold)}``)."""
    v = value_sql(null_values)
    positive, thresholded = _threshold_sql(thresholds or {})
    sql = f"""
SELECT s.scorer, s.judge, i.category, s.status, COALESCE(s.label, ''), s.turn, COUNT(*),
       COUNT({v}), COALESCE(SUM({v}), 0.0), COALESCE(SUM(({v}) * ({v})), 0.0),
       COALESCE(SUM(CASE WHEN ({v}) NOT IN (0.0, 1.0) THEN 1 ELSE 0 END), 0), MIN({v}), MAX({v}),
       {positive}, {thresholded}
FROM scores s JOIN items i ON i.run_id = s.run_id AND i.item_id = s.item_id
WHERE s.run_id = ? GROUP BY s.scorer, s.judge, i.category, s.status, s.label, s.turn
"""
    return [
        ScanRow(
            str(sc),
            str(j),
            str(c),
            str(st),
            str(lab),
            None if t < 0 else int(t),
            int(r),
            int(nv),
            float(tot),
            float(sq),
            int(nb),
            lo,
            hi,
            int(pos),
            int(thr),
        )
        for sc, j, c, st, lab, t, r, nv, tot, sq, nb, lo, hi, pos, thr in conn.execute(
            sql, (run_id,)
        )
    ]


@dataclass(frozen=True)
class SumRow:
    """Sums of item-level values of one (scorer, judge, category)."""

    scorer: str
    judge: str
    category: str
    n: int
    total: float
    total_sq: float
    nonbinary: int


def turned_sums(
    conn: sqlite3.Connection, run_id: str, null_values: Mapping[str, float]
) -> list[SumRow]:
    """Per (scorer, judge, category): sums of each item's mean over its turn scores."""
    v = value_sql(null_values)
    sql = f"""
SELECT x.scorer, x.judge, i.category, COUNT(x.v), COALESCE(SUM(x.v), 0.0),
       COALESCE(SUM(x.v * x.v), 0.0),
       COALESCE(SUM(CASE WHEN x.v NOT IN (0.0, 1.0) THEN 1 ELSE 0 END), 0)
FROM (SELECT s.item_id, s.scorer, s.judge, AVG({v}) AS v FROM scores s
      WHERE s.run_id = ? AND s.turn >= 0 GROUP BY s.item_id, s.scorer, s.judge) x
JOIN items i ON i.run_id = ? AND i.item_id = x.item_id
GROUP BY x.scorer, x.judge, i.category
"""
    return [
        SumRow(str(s), str(j), str(c), int(n), float(t), float(q), int(b))
        for s, j, c, n, t, q, b in conn.execute(sql, (run_id, run_id))
    ]


def item_values(
    conn: sqlite3.Connection,
    run_id: str,
    scorer: str,
    judge: str,
    null_values: Mapping[str, float],
    categories: Sequence[str] | None = None,
) -> Iterator[tuple[str, str, float]]:
    """``(item_id, category, value)`` of every item with a value for one scorer and judge.

    An item's value is its whole-transcript score, else the mean of its turn scores.
    """
    sql = (
        f"SELECT x.item_id, i.category, x.v FROM (SELECT s.item_id AS item_id, "
        f"{item_value_sql(null_values)} AS v "
        "FROM scores s WHERE s.run_id = ? AND s.scorer = ? AND s.judge = ? GROUP BY s.item_id) x "
        "JOIN items i ON i.run_id = ? AND i.item_id = x.item_id WHERE x.v IS NOT NULL"
    )
    args: tuple[Any, ...] = (run_id, scorer, judge, run_id)
    if categories is not None:
        sql += f" AND i.category IN ({', '.join('?' * len(categories))})"
        args += tuple(categories)
    for item_id, category, value in conn.execute(sql, args):
        yield str(item_id), str(category), float(value)


class VerdictRow(NamedTuple):
    """One score row of a judged scorer, with what the judged summaries read from its extras
    (a named tuple: a 200k-item run has hundreds of thousands of them)."""

    scorer: str
    judge: str
    item_id: str
    turn: int | None
    value: float | None
    label: str | None
    status: str
    category: str
    quality: float | None
    risky: Any
    criteria: str | None


_EXTRA = (
    "CASE WHEN instr(s.score_json, '\"{0}\"') > 0 "
    "THEN json_extract(s.score_json, '$.extra.{0}') END"
)
"""An extra field of a score, read only from the rows that have it (instr is cheap, JSON not)."""


@dataclass(frozen=True)
class JudgeUnits:
    """The units (item, turn) two or more judges of one scorer rated, one column per judge."""

    keys: list[tuple[str, int | None]]
    values: list[list[float | None]]
    """``values[j][u]``: judge j's value on unit u (None where judge j has none)."""
    labels: list[list[str | None]]
    criteria: list[list[str | None]] | None
    """The ``criteria`` extra (JSON text) per judge and unit, when asked for."""


def judge_units(
    conn: sqlite3.Connection,
    run_id: str,
    scorer: str,
    judges: Sequence[str],
    *,
    criteria: bool = False,
) -> JudgeUnits:
    """Every unit any of ``judges`` gave an ok value, with each judge's value and label."""
    parts = [f"MAX(CASE WHEN s.judge = ? THEN {col} END)" for col in ("s.value", "s.label")
             for _ in judges]  # fmt: skip
    args: list[Any] = [j for _col in range(2) for j in judges]
    if criteria:
        parts += [
            "MAX(CASE WHEN s.judge = ? THEN json_extract(s.score_json, '$.extra.criteria') END)"
        ] * len(judges)
        args += list(judges)
    marks = ", ".join("?" * len(judges))
    sql = (
        f"SELECT s.item_id, s.turn, {', '.join(parts)} FROM scores s WHERE s.run_id = ? "
        f"AND s.scorer = ? AND s.status = 'ok' AND s.value IS NOT NULL AND s.judge IN ({marks}) "
        "GROUP BY s.item_id, s.turn ORDER BY s.item_id, s.turn"
    )
    k = len(judges)
    keys: list[tuple[str, int | None]] = []
    values: list[list[float | None]] = [[] for _ in judges]
    labels: list[list[str | None]] = [[] for _ in judges]
    texts: list[list[str | None]] = [[] for _ in judges]
    for row in conn.execute(sql, (*args, run_id, scorer, *judges)):
        keys.append((str(row[0]), None if row[1] < 0 else int(row[1])))
        for j in range(k):
            values[j].append(row[2 + j])
            labels[j].append(row[2 + k + j])
            if criteria:
                texts[j].append(row[2 + 2 * k + j])
    return JudgeUnits(keys, values, labels, texts if criteria else None)


def quality_rows(
    conn: sqlite3.Connection, run_id: str, scorer: str, extra: str
) -> list[VerdictRow]:
    """The score rows of ``scorer`` that carry the extra field ``extra`` (as ``quality``)."""
    if not extra.isidentifier():
        raise ValueError(f"bad extra field name {extra!r}")
    fields = ", ".join(_EXTRA.format(name) for name in (extra, "risky", "criteria"))
    cursor = conn.execute(
        "SELECT s.scorer, s.judge, s.item_id, CASE WHEN s.turn < 0 THEN NULL ELSE s.turn END, "
        f"s.value, s.label, s.status, '', {fields} FROM scores s "
        f"WHERE s.run_id = ? AND s.scorer = ? AND json_extract(s.score_json, '$.extra.{extra}') "
        "IS NOT NULL",
        (run_id, scorer),
    )
    return list(map(VerdictRow._make, cursor))


def ok_verdicts(
    conn: sqlite3.Connection, run_id: str, scorer: str, judge: str
) -> list[tuple[str | None, float | None]]:
    """``(label, value)`` of every ok score of one scorer and judge."""
    return [
        (label, value)
        for label, value in conn.execute(
            "SELECT label, value FROM scores WHERE run_id=? AND scorer=? AND judge=? "
            "AND status='ok'",
            (run_id, scorer, judge),
        )
    ]


def scorer_versions(conn: sqlite3.Connection, run_id: str) -> dict[tuple[str, str], set[str]]:
    """The scorer versions found in a run's scores, per (scorer, judge)."""
    out: dict[tuple[str, str], set[str]] = {}
    for scorer, judge, version in conn.execute(
        "SELECT DISTINCT scorer, judge, json_extract(score_json, '$.scorer_version') FROM scores "
        "WHERE run_id=?",
        (run_id,),
    ):
        out.setdefault((str(scorer), str(judge)), set()).add(str(version))
    return out


def score_keys(conn: sqlite3.Connection, run_id: str) -> set[tuple[str, str]]:
    """The distinct (scorer, judge) pairs of a run's scores."""
    return {
        (str(s), str(j))
        for s, j in conn.execute(
            "SELECT DISTINCT scorer, judge FROM scores WHERE run_id=?", (run_id,)
        )
    }


def has_kind(conn: sqlite3.Connection, run_id: str, kind: str) -> bool:
    """Whether the run has an item of ``kind``."""
    row = conn.execute(
        "SELECT 1 FROM items WHERE run_id=? AND kind=? LIMIT 1", (run_id, kind)
    ).fetchone()
    return row is not None


def rotated_mcq_scores(conn: sqlite3.Connection, run_id: str) -> Iterator[str] | None:
    """The JSON of the run's rotated MCQ scores (``--rotate``), or None when it has none."""
    rotated = conn.execute(
        "SELECT 1 FROM items WHERE run_id=? AND kind='mcq' "
        "AND instr(item_json, '\"rotation\"') > 0 "
        "AND json_extract(item_json, '$.metadata.rotation') IS NOT NULL LIMIT 1",
        (run_id,),
    ).fetchone()
    if rotated is None:
        return None
    cursor = conn.execute(
        "SELECT score_json FROM scores WHERE run_id=? AND scorer='mcq' "
        "AND json_extract(score_json, '$.extra.rotation') IS NOT NULL",
        (run_id,),
    )
    return (str(blob) for (blob,) in cursor)


@dataclass(frozen=True)
class ConversationRow:
    """A dialogue item: id, language, category, strategy and the key of its seed request."""

    item_id: str
    language: str
    category: str
    strategy: str
    seed: str


def conversations(conn: sqlite3.Connection, run_id: str) -> list[ConversationRow]:
    """The run's dialogue items, in suite order."""
    rows = conn.execute(
        "SELECT item_id, language, category, COALESCE(json_extract(item_json, '$.strategy'), ''), "
        "COALESCE(json_extract(item_json, '$.metadata.seed_id'), "
        "json_extract(item_json, '$.seed'), item_id) "
        "FROM items WHERE run_id=? AND kind='dialogue' ORDER BY idx",
        (run_id,),
    ).fetchall()
    return [ConversationRow(str(i), str(la), str(c), str(st), str(se)) for i, la, c, st, se in rows]


def turn_scores(
    conn: sqlite3.Connection, run_id: str
) -> Iterator[tuple[str, str, str, int, float, str | None]]:
    """``(scorer, judge, item_id, turn, value, label)`` of every ok turn score with a value on a
    dialogue item."""
    yield from conn.execute(
        "SELECT s.scorer, s.judge, s.item_id, s.turn, s.value, s.label FROM scores s JOIN items i "
        "ON i.run_id=s.run_id AND i.item_id=s.item_id WHERE s.run_id=? AND i.kind='dialogue' "
        "AND s.turn>=0 AND s.status='ok' AND s.value IS NOT NULL",
        (run_id,),
    )


def dialogue_counts(conn: sqlite3.Connection, run_id: str) -> tuple[int, int, int, int, int]:
    """Dialogues: ``(n, ok, failed, attacker refusals, Crescendo backtracks)``."""
    n, ok, failed = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN t.status='ok' THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN t.status='failed' THEN 1 ELSE 0 END), 0) "
        "FROM items i LEFT JOIN transcripts t ON t.run_id=i.run_id AND t.item_id=i.item_id "
        "WHERE i.run_id=? AND i.kind='dialogue'",
        (run_id,),
    ).fetchone()
    refused = conn.execute(
        "SELECT COUNT(*) FROM flags WHERE run_id=? AND flag='attacker_refused'", (run_id,)
    ).fetchone()[0]
    backtracks = conn.execute(
        "SELECT COUNT(*) FROM dialogue_turns WHERE run_id=? AND kind='backtrack'", (run_id,)
    ).fetchone()[0]
    return int(n), int(ok), int(failed), int(refused), int(backtracks)


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


@dataclass(frozen=True)
class WorstRow:
    """One low-ranked score with its item and answer (JSON blobs as stored)."""

    item_id: str
    turn: int | None
    value: float | None
    label: str | None
    score_json: str
    category: str
    language: str
    item_json: str
    response: str | None


def worst_rows(
    conn: sqlite3.Connection,
    run_id: str,
    scorer: str,
    judge: str,
    k: int,
    *,
    higher_is_safer: bool,
    extreme: float | None,
    positive_labels: tuple[str, ...] = (),
) -> list[WorstRow]:
    """The ``k`` worst ok scores of one scorer and judge: rows with a positive (harmful) label
    first, then the least safe value, ties in key order.

    Up to three queries, so that the common case stops early: positive labels in key order,
    rows at the ``extreme`` (least safe) value in key order, then the rest sorted by value.
    """
    direction = "ASC" if higher_is_safer else "DESC"
    marks = ", ".join(_literal(label) for label in positive_labels)
    not_positive = f"COALESCE(s.label, '') NOT IN ({marks})" if positive_labels else "1"
    stages: list[tuple[str, str, tuple[Any, ...]]] = []
    if positive_labels:
        stages.append((f"s.label IN ({marks})", _KEY_ORDER, ()))
    if extreme is not None:
        stages.append((f"{not_positive} AND s.value = ?", _KEY_ORDER, (extreme,)))
        stages.append((f"{not_positive} AND s.value <> ?", f"s.value {direction}, {_KEY_ORDER}",
                       (extreme,)))  # fmt: skip
    else:
        stages.append((not_positive, f"s.value {direction}, {_KEY_ORDER}", ()))
    rows: list[tuple[Any, ...]] = []
    for where, order, args in stages:
        if len(rows) >= k:
            break
        sql = _WORST_SQL.format(where=where, order=order)
        rows += conn.execute(sql, (run_id, scorer, judge, *args, k - len(rows))).fetchall()
    return [
        WorstRow(str(i), None if t < 0 else int(t), v, lab, str(sj), str(c), str(lang), str(ij), r)
        for i, t, v, lab, sj, c, lang, ij, r in rows
    ]


def flag_counts(conn: sqlite3.Connection, run_id: str) -> dict[str, int]:
    """Flagged items per flag name (one GROUP BY over the run's flags)."""
    rows = conn.execute(
        "SELECT flag, COUNT(*) FROM flags WHERE run_id = ? GROUP BY flag ORDER BY flag", (run_id,)
    )
    return {str(flag): int(n) for flag, n in rows}


def flagged_units(
    conn: sqlite3.Connection, run_id: str, limit: int
) -> list[tuple[str, int | None, str]]:
    """``(item_id, turn, flag)`` of the first ``limit`` flagged units, by item, turn and flag:
    one per turn listed in a flag's detail (``turns``), else one with turn None."""
    sql = (
        "SELECT f.item_id, t.value, f.flag FROM flags f LEFT JOIN json_each("
        "CASE WHEN json_valid(f.detail) AND json_type(f.detail, '$.turns') = 'array' "
        "THEN f.detail ELSE '{}' END, '$.turns') t "
        "WHERE f.run_id = ? ORDER BY f.item_id, t.value, f.flag LIMIT ?"
    )
    if engine(conn) == "postgresql":  # the store writes every detail as JSON
        sql = (
            "SELECT f.item_id, t.value, f.flag FROM flags f LEFT JOIN LATERAL "
            "jsonb_array_elements(CASE WHEN jsonb_typeof(f.detail::jsonb -> 'turns') = 'array' "
            "THEN f.detail::jsonb -> 'turns' ELSE '[]'::jsonb END) t(value) ON true "
            "WHERE f.run_id = ? ORDER BY f.item_id, t.value, f.flag LIMIT ?"
        )
    return [
        (str(item), turn if isinstance(turn, int) else None, str(flag))
        for item, turn, flag in conn.execute(sql, (run_id, limit))
    ]


def jury_coverage(
    conn: sqlite3.Connection, run_id: str, scorer: str, judges: Sequence[str], jury: str
) -> list[tuple[str, bool, int]]:
    """``(category, covered, units)``: the units (item, turn) any of ``judges`` was asked
    about (skipped rows excluded), by category and by whether ``jury`` gave them an ok value."""
    marks = ", ".join("?" * len(judges))
    sql = (
        "SELECT category, covered, COUNT(*) FROM (SELECT i.category AS category, "
        "MAX(s.judge = ? AND s.status = 'ok' AND s.value IS NOT NULL) AS covered "
        "FROM scores s JOIN items i ON i.run_id = s.run_id AND i.item_id = s.item_id "
        f"WHERE s.run_id = ? AND s.scorer = ? AND s.status != 'skipped' "
        f"AND s.judge IN ({marks}, ?) GROUP BY s.item_id, s.turn "
        "HAVING MAX(s.judge != ?) = 1) GROUP BY category, covered ORDER BY category"
    )
    args = (jury, run_id, scorer, *judges, jury, jury)
    return [(str(c), bool(covered), int(n)) for c, covered, n in conn.execute(sql, args)]


def ok_score_extras(
    conn: sqlite3.Connection, run_id: str, scorer: str
) -> Iterator[tuple[str, str, str | None, str]]:
    """``(item_id, judge, label, score_json)`` of every ok whole-transcript score of one scorer
    (detection and classification figures are computed from the extras)."""
    yield from conn.execute(
        "SELECT item_id, judge, label, score_json FROM scores "
        "WHERE run_id=? AND scorer=? AND status='ok' AND turn=-1 ORDER BY item_id",
        (run_id, scorer),
    )
