"""Store reads of the governance report and the run manifest: a run's review tasks with
their progress, reviewers' labels, and its items' licences and sources.

Read-only SQL over the review tables (schema v5) and items; a store without the review tables
has no tasks.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

__all__ = ["ReviewTaskRow", "item_licences", "review_labels", "review_tasks_of"]


@dataclass(frozen=True)
class ReviewTaskRow:
    """One review task of a run, with its progress counted from the review tables."""

    task_id: str
    status: str
    created_by: str
    created: str
    spec: dict[str, Any]
    units: int
    labels: int
    reviewers: int
    fully_labelled: int
    """Units with at least ``k`` reviewers' labels."""
    adjudicated: int


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
    ).fetchone()
    return row is not None


def review_tasks_of(conn: sqlite3.Connection, run_id: str) -> list[ReviewTaskRow]:
    """The run's review tasks, oldest first (none without the review tables)."""
    if not _has_table(conn, "review_tasks"):
        return []
    rows = conn.execute(
        "SELECT task_id, status, created_by, created, spec FROM review_tasks WHERE run_id=? "
        "ORDER BY created, task_id",
        (run_id,),
    ).fetchall()
    out = []
    for task_id, status, created_by, created, spec_json in rows:
        spec = json.loads(spec_json)
        k = int(spec.get("k", 2)) if isinstance(spec, dict) else 2
        units, labels, reviewers, full, adjudicated = conn.execute(
            "SELECT (SELECT count(*) FROM review_units WHERE task_id=:t), "
            "(SELECT count(*) FROM review_labels WHERE task_id=:t), "
            "(SELECT count(DISTINCT reviewer) FROM review_labels WHERE task_id=:t), "
            "(SELECT count(*) FROM (SELECT item_id FROM review_labels WHERE task_id=:t "
            " GROUP BY item_id HAVING count(*) >= :k)), "
            "(SELECT count(*) FROM review_adjudications WHERE task_id=:t)",
            {"t": task_id, "k": k},
        ).fetchone()
        out.append(
            ReviewTaskRow(
                str(task_id),
                str(status),
                str(created_by),
                str(created),
                spec if isinstance(spec, dict) else {},
                int(units),
                int(labels),
                int(reviewers),
                int(full),
                int(adjudicated),
            )
        )
    return out


def review_labels(conn: sqlite3.Connection, task_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """(item id, reviewer, values) of every reviewer's label of the task, by unit and reviewer."""
    rows = conn.execute(
        'SELECT item_id, reviewer, "values" FROM review_labels WHERE task_id=? '
        "ORDER BY item_id, reviewer",
        (task_id,),
    ).fetchall()
    return [(str(i), str(r), json.loads(v)) for i, r, v in rows]


def item_licences(conn: sqlite3.Connection, run_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Items per ``license`` and per ``source`` value of the run ("" when an item has none)."""
    rows = conn.execute(
        "SELECT json_extract(item_json, '$.license'), json_extract(item_json, '$.source'), "
        "count(*) FROM items WHERE run_id=? GROUP BY 1, 2 ORDER BY 1, 2",
        (run_id,),
    ).fetchall()
    licences: dict[str, int] = {}
    sources: dict[str, int] = {}
    for licence, source, count in rows:
        licences[licence or ""] = licences.get(licence or "", 0) + int(count)
        sources[source or ""] = sources.get(source or "", 0) + int(count)
    return licences, sources
