"""Tables of the audit trail and sign-offs (schema v4); owned by :mod:`medsafe.audit`."""

from __future__ import annotations

AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    payload TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_hash ON audit_log(hash);
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_prev ON audit_log(prev_hash);
CREATE TABLE IF NOT EXISTS signoffs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment TEXT NOT NULL DEFAULT '',
    conditions TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    audit_head TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS signoffs_run ON signoffs(run_id);
CREATE TABLE IF NOT EXISTS content_hashes (
    run_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL
) WITHOUT ROWID;
"""
"""Added by schema v4: the hash-chained audit log, the sign-offs of runs, and a cache of run
content hashes keyed by the run's change counter (``web_run_versions.version``, kept by
triggers), so that showing whether a sign-off is stale does not re-read a large run."""

AUDIT_TABLES = frozenset({"audit_log", "signoffs", "content_hashes"})
