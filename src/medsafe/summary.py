"""Run summaries aggregated in SQL (``medsafe results``): counts, accuracy, CIs, per scorer.

Accuracy (exact-set, MCQ items) = correct / answered, where *answered* counts MCQ items whose
generation succeeded. An unextracted answer is counted in the denominator (it is not correct)
and reported separately as ``unextracted``; ``accuracy_extracted`` = correct / extracted is
given beside it. Failed generations are excluded from every denominator and reported as
``failed``. Intervals are Wilson score intervals (Wilson 1927) at 95%.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

Z95 = 1.959963984540054


def wilson(successes: float, n: float, z: float = Z95) -> list[float] | None:
    """Wilson score interval ``[lo, hi]`` for ``successes`` out of ``n`` (None when n == 0).

    Closed form, so that the CLI does not import statsmodels on its hot path; tests check it
    against ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
    """
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


_GROUP_SQL = """
SELECT i.category, i.language,
       COUNT(*) AS n,
       COALESCE(SUM(t.status = 'ok'), 0) AS ok,
       COALESCE(SUM(t.status = 'failed'), 0) AS failed,
       COALESCE(SUM(i.kind = 'mcq' AND t.status = 'ok'), 0) AS mcq_answered,
       COALESCE(SUM(s.label = 'correct'), 0) AS correct,
       COALESCE(SUM(s.label = 'unextracted'), 0) AS unextracted,
       COALESCE(SUM(p.value), 0.0) AS partial
FROM items i
LEFT JOIN transcripts t ON t.run_id = i.run_id AND t.item_id = i.item_id
LEFT JOIN scores s ON s.run_id = i.run_id AND s.item_id = i.item_id AND s.scorer = 'mcq'
     AND s.status = 'ok' AND s.turn = -1 AND s.judge = ''
LEFT JOIN scores p ON p.run_id = i.run_id AND p.item_id = i.item_id AND p.scorer = 'mcq.partial'
     AND p.status = 'ok' AND p.turn = -1 AND p.judge = ''
WHERE i.run_id = ?
GROUP BY i.category, i.language
"""

_COUNTS = 6  # n, ok, failed, mcq_answered, correct, unextracted; then partial (a sum of values)


def _group_block(counts: list[float]) -> dict[str, Any]:
    n, ok, failed, answered, correct, unextracted, partial = counts
    block: dict[str, Any] = {
        "n": int(n),
        "ok": int(ok),
        "failed": int(failed),
        "pending": int(n) - int(ok) - int(failed),
        "mcq_answered": int(answered),
        "correct": int(correct),
        "unextracted": int(unextracted),
        "accuracy": _ratio(correct, answered),
        "ci95": wilson(correct, answered),
        "accuracy_extracted": _ratio(correct, answered - unextracted),
        "partial_credit": _ratio(partial, answered),
    }
    return block


def _grouped(
    conn: sqlite3.Connection, run_id: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Blocks by category and by language, from one pass over the run's items."""
    by: tuple[dict[str, list[float]], dict[str, list[float]]] = ({}, {})
    for category, language, *values in conn.execute(_GROUP_SQL, (run_id,)):
        for groups, key in zip(by, (category, language), strict=True):
            acc = groups.setdefault(str(key), [0] * (_COUNTS + 1))
            for k, value in enumerate(values):
                acc[k] += value
    categories, languages = (
        {key: _group_block(groups[key]) for key in sorted(groups)} for groups in by
    )
    return categories, languages


def _total(groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    keys = ("n", "ok", "failed", "mcq_answered", "correct", "unextracted")
    sums = {k: sum(g[k] for g in groups.values()) for k in keys}
    partial = sum((g["partial_credit"] or 0.0) * g["mcq_answered"] for g in groups.values())
    answered, correct = sums["mcq_answered"], sums["correct"]
    return {
        **sums,
        "pending": sums["n"] - sums["ok"] - sums["failed"],
        "accuracy": _ratio(correct, answered),
        "ci95": wilson(correct, answered),
        "accuracy_extracted": _ratio(correct, answered - sums["unextracted"]),
        "partial_credit": _ratio(partial, answered),
    }


_SCORER_SQL = """
SELECT s.scorer, s.judge, i.category,
       COUNT(*) AS n,
       SUM(s.status = 'ok') AS ok,
       SUM(s.status = 'failed') AS failed,
       SUM(s.status = 'skipped') AS skipped,
       COUNT(s.value) AS n_value,
       SUM(s.value) AS total,
       SUM(s.value * s.value) AS total_sq,
       SUM(s.value NOT IN (0.0, 1.0)) AS non_binary
FROM scores s JOIN items i ON i.run_id = s.run_id AND i.item_id = s.item_id
WHERE s.run_id = ?
GROUP BY s.scorer, s.judge, i.category
"""


def _mean_block(n_value: int, total: float, total_sq: float, binary: bool) -> dict[str, Any]:
    if n_value == 0:
        return {"mean": None, "ci95": None, "ci_method": None}
    mean = total / n_value
    if binary:
        return {"mean": mean, "ci95": wilson(total, n_value), "ci_method": "wilson"}
    if n_value < 2:
        return {"mean": mean, "ci95": None, "ci_method": "normal"}
    var = max(0.0, (total_sq - n_value * mean * mean) / (n_value - 1))
    half = Z95 * math.sqrt(var / n_value)
    return {"mean": mean, "ci95": [mean - half, mean + half], "ci_method": "normal"}


def scorer_summaries(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """Per scorer (and judge): n, ok, failed, skipped, mean with CI, by category, labels."""
    acc: dict[str, dict[str, Any]] = {}
    for row in conn.execute(_SCORER_SQL, (run_id,)):
        scorer, judge, category, n, ok, failed, skipped, n_value, total, total_sq, nonbin = row
        key = scorer if not judge or judge == scorer else f"{scorer}:{judge}"
        entry = acc.setdefault(
            key,
            {"scorer": scorer, "judge": judge, "parts": {}},
        )
        entry["parts"][str(category)] = (
            int(n),
            int(ok),
            int(failed),
            int(skipped),
            int(n_value),
            float(total or 0.0),
            float(total_sq or 0.0),
            int(nonbin or 0),
        )
    out: dict[str, Any] = {}
    for key, entry in acc.items():
        parts = entry["parts"]
        sums = [sum(p[k] for p in parts.values()) for k in range(8)]
        binary = sums[7] == 0
        by_category = {
            cat: {
                "n": p[0],
                "ok": p[1],
                "failed": p[2],
                "skipped": p[3],
                **_mean_block(p[4], p[5], p[6], binary),
            }
            for cat, p in sorted(parts.items())
        }
        labels = dict(
            conn.execute(
                "SELECT COALESCE(label, ''), COUNT(*) FROM scores WHERE run_id=? AND scorer=? "
                "AND judge=? AND status='ok' GROUP BY label ORDER BY label",
                (run_id, entry["scorer"], entry["judge"]),
            ).fetchall()
        )
        out[key] = {
            "scorer": entry["scorer"],
            "judge": entry["judge"],
            "n": sums[0],
            "ok": sums[1],
            "failed": sums[2],
            "skipped": sums[3],
            "failure_rate": _ratio(sums[2], sums[0]),
            **_mean_block(sums[4], sums[5], sums[6], binary),
            "labels": labels,
            "by_category": by_category,
        }
    return out


def circular_block(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    """Circular evaluation over rotated MCQ items (``--rotate``), or None when there are none.

    A base item counts as correct only when every rotation of it is (MMBench's CircularEval);
    ``position_bias`` is, per letter, the share of answers picking that position minus the
    share of keys at that position (> 0: the model over-picks it).
    """
    rotated = conn.execute(
        "SELECT 1 FROM items WHERE run_id=? AND kind='mcq' AND instr(item_json, '\"rotation\"') "
        "AND json_extract(item_json, '$.metadata.rotation') IS NOT NULL LIMIT 1",
        (run_id,),
    ).fetchone()
    if rotated is None:  # spare the imports below on the common path
        return None
    from medsafe.schema import Score
    from medsafe.suites.rotation import circular_summary, rows_from_scores

    cursor = conn.execute(
        "SELECT score_json FROM scores WHERE run_id=? AND scorer='mcq' "
        "AND json_extract(score_json, '$.extra.rotation') IS NOT NULL",
        (run_id,),
    )
    scores = (Score.model_validate_json(blob) for (blob,) in cursor)
    result = circular_summary(rows_from_scores(scores))
    if result.n_rows == 0:
        return None
    complete = result.n_base - result.n_incomplete
    correct = round((result.circular_accuracy or 0.0) * complete)
    return {
        "n_base": result.n_base,
        "n_incomplete": result.n_incomplete,
        "n_rows": result.n_rows,
        "circular_accuracy": result.circular_accuracy,
        "ci95": wilson(correct, complete),
        "accuracy": result.accuracy,
        "per_rotation": {str(k): v for k, v in sorted(result.per_rotation.items())},
        "chosen_share": result.chosen_share,
        "correct_share": result.correct_share,
        "position_bias": result.position_bias,
    }


def run_summary(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """The object ``medsafe results --json`` prints."""
    by_category, by_language = _grouped(conn, run_id)
    summary = _total(by_category)
    summary["by_category"] = by_category
    summary["by_language"] = by_language
    summary["scorers"] = scorer_summaries(conn, run_id)
    from medsafe.judges.summary import add_judged_summaries  # agreement, per-scorer metrics

    add_judged_summaries(conn, run_id, summary["scorers"])
    from medsafe.calibrate.summary import add_calibrations  # calibration, corrected_rate

    add_calibrations(conn, run_id, summary["scorers"])
    circular = circular_block(conn, run_id)
    if circular is not None:
        summary["circular"] = circular
    dialogues = conn.execute(
        "SELECT 1 FROM items WHERE run_id=? AND kind='dialogue' LIMIT 1", (run_id,)
    ).fetchone()
    if dialogues is not None:  # numpy and the dialogue statistics only when they are needed
        from medsafe.redteam.statistics import redteam_summary  # by_turn, decline, asr...

        summary.update(redteam_summary(conn, run_id))
    return summary
