"""Splitting an SQL script (SQLite's dialect) into statements."""

from __future__ import annotations

import sqlite3


def statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one by one.

    Migrations run them with ``execute`` inside their transaction: ``executescript`` would
    commit it first.
    """
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:80]!r}")
    return out
