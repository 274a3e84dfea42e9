"""Tables of the workbench's accounts, sessions, login back-off and materialised run results
(schema v6); owned by :mod:`medsafe.web`.

``web_run_versions`` is a change counter per run, kept by triggers on every table a run's
results are computed from: any insert, update or delete of a run's items, transcripts, scores,
flags or dialogue turns (or of its spec) bumps it. The workbench keys each run's materialised
``RunResults`` (``web_results``) by that counter, an O(1) read, where a content hash would read
every row of the run (seconds at 200,000 items) on each page view.
"""

from __future__ import annotations

_RESULT_SOURCES = ("items", "transcripts", "scores", "flags", "dialogue_turns")


def _triggers() -> str:
    bump = (
        "INSERT INTO web_run_versions (run_id, version) VALUES ({row}.run_id, 1) "
        "ON CONFLICT (run_id) DO UPDATE SET version = version + 1;"
    )
    out = []
    for table in (*_RESULT_SOURCES, "runs"):
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS web_bump_{table}_{event.lower()} "
                f"AFTER {event} ON {table} BEGIN {bump.format(row=row)} END;"
            )
    return "\n".join(out)


def pg_triggers() -> list[str]:
    """The change counters in PostgreSQL's dialect (one function, a trigger per table).

    There the "counter" is the id of the last transaction that changed the run: equal means
    unchanged, as with SQLite's count. Writing it only when it differs keeps a transaction that
    writes 100,000 rows of one run from updating one row 100,000 times (PostgreSQL keeps every
    version of an updated row until the transaction ends, and each update walks them all).
    """
    out = [
        "CREATE OR REPLACE FUNCTION web_bump_run_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO web_run_versions (run_id, version) VALUES "
        "(CASE WHEN TG_OP = 'DELETE' THEN OLD.run_id ELSE NEW.run_id END, txid_current()) "
        "ON CONFLICT (run_id) DO UPDATE SET version = EXCLUDED.version "
        "WHERE web_run_versions.version <> EXCLUDED.version; "
        "RETURN NULL; END $$"
    ]
    for table in (*_RESULT_SOURCES, "runs"):
        out.append(f"DROP TRIGGER IF EXISTS web_bump_{table} ON {table}")
        out.append(
            f"CREATE TRIGGER web_bump_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION web_bump_run_version()"
        )
    return out


WEB_DDL = (
    """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT 'en',
    disabled INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (username);
CREATE TABLE IF NOT EXISTS web_login_failures (
    subject TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure REAL NOT NULL,
    blocked_until REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS web_run_versions (
    run_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS web_results (
    run_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    results_json TEXT NOT NULL,
    summary_json TEXT NOT NULL,
    computed REAL NOT NULL
) WITHOUT ROWID;
"""
    + _triggers()
    + "\n"
)
"""Added by schema v6 (the web package extends it while the workbench is built)."""

WEB_TABLES = frozenset(
    {"users", "web_sessions", "web_login_failures", "web_run_versions", "web_results"}
)
