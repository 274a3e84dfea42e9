"""Tables of the workbench's accounts and sessions (schema v6); owned by :mod:`medsafe.web`."""

from __future__ import annotations

WEB_DDL = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT 'en',
    disabled INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
) WITHOUT ROWID;
"""
"""Added by schema v6 (the web package extends it while the workbench is built)."""

WEB_TABLES = frozenset({"users"})
