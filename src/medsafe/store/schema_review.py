"""Tables of review tasks, their units, reviewers' labels and adjudications (schema v5); owned
by :mod:`medsafe.review`.

- ``review_tasks``: one row per task (``spec``: the task's JSON, :class:`~medsafe.review.model.
  TaskSpec`); ``status`` ``open`` or ``complete``.
- ``review_units``: the units (items) a task samples, in the order reviewers see them.
- ``review_assignments``: which reviewer labels which unit (k per unit).
- ``review_labels``: each reviewer's label (``values``: JSON field -> choice key) and rationale;
  they stay here: only the final label reaches the run, as a score by the judge ``human``.
- ``review_adjudications``: an adjudicator's decision on a unit the reviewers disagreed on.
- ``review_finals``: each unit's final label (``agreed`` or ``adjudicated``; ``decided_by``: JSON
  list of names), written in the transaction that made it final.
"""

from __future__ import annotations

REVIEW_DDL = """
CREATE TABLE IF NOT EXISTS review_tasks (
    task_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS review_tasks_run ON review_tasks (run_id);
CREATE TABLE IF NOT EXISTS review_units (
    task_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (task_id, item_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS review_units_position ON review_units (task_id, position);
CREATE TABLE IF NOT EXISTS review_assignments (
    task_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    PRIMARY KEY (task_id, item_id, reviewer)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS review_assignments_reviewer ON review_assignments (reviewer, task_id);
CREATE TABLE IF NOT EXISTS review_labels (
    task_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    "values" TEXT NOT NULL,
    rationale TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    PRIMARY KEY (task_id, item_id, reviewer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS review_finals (
    task_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    how TEXT NOT NULL CHECK (how IN ('agreed', 'adjudicated')),
    "values" TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (task_id, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS review_adjudications (
    task_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    adjudicator TEXT NOT NULL,
    "values" TEXT NOT NULL,
    rationale TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    PRIMARY KEY (task_id, item_id)
) WITHOUT ROWID;
"""
"""Added by schema v5 (created in place: ``CREATE ... IF NOT EXISTS``)."""

REVIEW_TABLES = frozenset(
    {
        "review_tasks",
        "review_units",
        "review_assignments",
        "review_labels",
        "review_adjudications",
        "review_finals",
    }
)
