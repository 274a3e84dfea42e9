"""The SQLite layout of a results store (one file holds many runs), one script per version.

These scripts are history: a store made by an older medsafe is brought up to date by
:mod:`medsafe.store.migrations`, which runs them in order, so a released script is never edited.
A schema change is a new script here and a new step there.
"""

from __future__ import annotations

from medsafe.store.schema_audit import AUDIT_TABLES
from medsafe.store.schema_authoring import AUTHORING_TABLES
from medsafe.store.schema_gate import GATE_TABLES
from medsafe.store.schema_review import REVIEW_TABLES
from medsafe.store.schema_web import WEB_TABLES
from medsafe.store.sqlscript import statements

V1_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    model TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_hash TEXT NOT NULL,
    n_items INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    provenance_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    language TEXT NOT NULL,
    item_json TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS items_by_idx ON items (run_id, idx);
CREATE TABLE IF NOT EXISTS cache (
    request_hash TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    usage_json TEXT NOT NULL,
    finish_reason TEXT,
    created TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transcripts (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    response TEXT,
    latency_s REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    transcript_json TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    scorer TEXT NOT NULL,
    judge TEXT NOT NULL,
    turn INTEGER NOT NULL,
    value REAL,
    label TEXT,
    status TEXT NOT NULL,
    error TEXT,
    score_json TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id, scorer, judge, turn)
) WITHOUT ROWID;
-- Each completed exchange of a multi-turn dialogue, stored as it happens, so that a run resumes
-- at the turn where it stopped: seq 0-based over the conversation, turn 1-based, kind 'turn' or
-- 'backtrack'. Added in place (CREATE IF NOT EXISTS): older stores gain it when opened.
CREATE TABLE IF NOT EXISTS dialogue_turns (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    kind TEXT NOT NULL,
    user TEXT NOT NULL,
    reply TEXT NOT NULL,
    record_json TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flags (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    flag TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (run_id, item_id, flag)
) WITHOUT ROWID;
"""
"""Schema v1, as medsafe 0.1.0 made it (``meta.schema_version`` '1', ``user_version`` 0)."""

CALIBRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS calibrations (
    scorer TEXT NOT NULL,
    judge TEXT NOT NULL,
    scorer_version TEXT NOT NULL,
    created TEXT NOT NULL,
    labels_sha256 TEXT NOT NULL,
    report_json TEXT NOT NULL,
    PRIMARY KEY (scorer, judge, created, labels_sha256)
) WITHOUT ROWID;
"""
"""Added by schema v2 (medsafe 0.1.0 created it on the first ``medsafe calibrate --db``)."""

LEASES_DDL = """
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL,
    heartbeat REAL NOT NULL
) WITHOUT ROWID;
"""
"""Added by schema v3: who is generating a run (``heartbeat`` in Unix seconds; see
:mod:`medsafe.store.lease`)."""

__all__ = ["MEDSAFE_TABLES", "NO_JUDGE", "NO_TURN", "statements"]

MEDSAFE_TABLES = frozenset(
    {"meta", "runs", "items", "cache", "transcripts", "scores", "dialogue_turns", "flags"}
    | {"calibrations", "leases"}
    | AUDIT_TABLES
    | REVIEW_TABLES
    | WEB_TABLES
    | GATE_TABLES
    | AUTHORING_TABLES
)
"""Every table a store of any version may hold."""

NO_TURN = -1
"""``scores.turn`` for a score of the whole transcript (SQLite primary keys cannot hold NULL)."""

NO_JUDGE = ""
"""``scores.judge`` for a score given without a judge model (a primary key cannot hold NULL)."""
