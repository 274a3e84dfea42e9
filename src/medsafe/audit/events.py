"""Audit entries of the command line: who acts (``cli:USER``) and the hook that records a
run's deletion inside the deleting transaction."""

from __future__ import annotations

import getpass
import sqlite3
from collections.abc import Callable

from medsafe.audit.chain import append

__all__ = ["cli_actor", "run_deleted"]

_DERIVED = ("content_hashes", "web_results", "web_run_versions")
"""Tables holding only what was computed from a run's rows."""


def cli_actor() -> str:
    """The actor of a command-line action: ``cli:`` and the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "cli:unknown"


def run_deleted(
    run_id: str, actor: str | None = None
) -> Callable[[sqlite3.Connection, dict[str, int]], None]:
    """A ``before_commit`` hook for ``Store.delete_run``: drops what was derived from the run
    (its cached content hash, the workbench's materialised results and change counter, which
    the deletion itself bumped) and appends a ``run_delete`` entry with the rows removed per
    table. Its sign-offs and audit entries stay (the sign-offs shown stale)."""

    def record(conn: sqlite3.Connection, removed: dict[str, int]) -> None:
        for table in _DERIVED:
            if conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
            ).fetchone():
                conn.execute(f"DELETE FROM {table} WHERE run_id=?", (run_id,))
        append(conn, actor or cli_actor(), "run_delete", run_id, {"run_id": run_id, **removed})

    return record
