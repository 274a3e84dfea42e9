"""Tables of review tasks, reviewers' labels and adjudications (schema v5); owned by
:mod:`medsafe.review`."""

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
"""
"""Added by schema v5 (the review package extends it while the workbench is built)."""

REVIEW_TABLES = frozenset({"review_tasks"})
