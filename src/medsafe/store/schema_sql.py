"""The SQLite layout of a results store (one file holds many runs)."""

from __future__ import annotations

SCHEMA_VERSION = 1

DDL = """
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

NO_TURN = -1
"""``scores.turn`` for a score of the whole transcript (SQLite primary keys cannot hold NULL)."""
