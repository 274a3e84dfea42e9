"""Versioned migrations of a store file, tracked in SQLite's ``PRAGMA user_version``.

Version 0 is an empty file; version 1 is the layout medsafe 0.1.0 made (it left
``user_version`` at 0 and wrote ``meta.schema_version`` '1', which is how such a store is
recognised); each later version is one :class:`Migration` in :data:`MIGRATIONS`.
:func:`migrate` brings a store up to :data:`CURRENT_VERSION` when it is opened, all steps in one
transaction: a step that fails leaves the file as it was. ``meta.schema_version`` mirrors
``user_version``, so that medsafe 0.1.0 (which reads only ``meta``) refuses a newer store
instead of misreading it.

A store that needs no migration is only read, so a read-only file opens for reading.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medsafe.errors import StoreError
from medsafe.store.pg import PREREQUISITES, engine, table_names
from medsafe.store.schema_audit import AUDIT_DDL
from medsafe.store.schema_authoring import AUTHORING_DDL
from medsafe.store.schema_gate import GATE_DDL
from medsafe.store.schema_review import REVIEW_DDL
from medsafe.store.schema_sql import (
    CALIBRATIONS_DDL,
    LEASES_DDL,
    MEDSAFE_TABLES,
    V1_DDL,
    statements,
)
from medsafe.store.schema_web import WEB_DDL, pg_triggers


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    postgres = engine(conn) == "postgresql"
    for statement in statements(script):
        if postgres and statement.upper().startswith("CREATE TRIGGER"):
            continue  # PostgreSQL's triggers are written in its own dialect (pg_triggers)
        conn.execute(statement)


def create_v1(conn: sqlite3.Connection) -> None:
    """0 -> 1: create the tables of medsafe 0.1.0 (runs, items, cache, transcripts, scores,
    dialogue_turns, flags, meta); a table that exists already is kept as it is."""
    _run_script(conn, V1_DDL)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')")


def add_calibrations(conn: sqlite3.Connection) -> None:
    """1 -> 2: create the ``calibrations`` table unless ``medsafe calibrate`` already has."""
    _run_script(conn, CALIBRATIONS_DDL)


def add_leases(conn: sqlite3.Connection) -> None:
    """2 -> 3: create the ``leases`` table (the process generating each run)."""
    _run_script(conn, LEASES_DDL)


def add_audit(conn: sqlite3.Connection) -> None:
    """3 -> 4: the hash-chained ``audit_log`` and the ``signoffs`` of runs."""
    _run_script(conn, AUDIT_DDL)


def add_review(conn: sqlite3.Connection) -> None:
    """4 -> 5: review tasks, reviewers' labels and adjudications."""
    _run_script(conn, REVIEW_DDL)


def add_web(conn: sqlite3.Connection) -> None:
    """5 -> 6: the workbench's users and sessions."""
    _run_script(conn, WEB_DDL)
    if engine(conn) == "postgresql":
        for statement in pg_triggers():
            conn.execute(statement)


def add_gate(conn: sqlite3.Connection) -> None:
    """6 -> 7: the decisions of ``medsafe gate``."""
    _run_script(conn, GATE_DDL)


def add_authoring(conn: sqlite3.Connection) -> None:
    """7 -> 8: normative corpora (documents, sections) for ``medsafe corpus``/``generate``."""
    _run_script(conn, AUTHORING_DDL)


@dataclass(frozen=True)
class Migration:
    """One step: ``apply`` turns a store of version ``to - 1`` into version ``to``.

    ``apply`` runs inside the migration's transaction: it must not commit (no
    ``executescript``) and must not change ``user_version`` itself.
    """

    to: int
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, create_v1),
    Migration(2, add_calibrations),
    Migration(3, add_leases),
    Migration(4, add_audit),
    Migration(5, add_review),
    Migration(6, add_web),
    Migration(7, add_gate),
    Migration(8, add_authoring),
)
"""Every step, in order: ``MIGRATIONS[i]`` migrates version ``i`` to ``i + 1``."""

CURRENT_VERSION = len(MIGRATIONS)
"""The schema version this medsafe writes and reads."""


def _table_names(conn: sqlite3.Connection) -> set[str]:
    if engine(conn) == "postgresql":
        return table_names(conn)
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {str(name) for (name,) in rows if not str(name).startswith("sqlite_")}


def stored_version(conn: sqlite3.Connection, path: Path | str) -> int:
    """The schema version of the store on ``conn`` (0: empty); StoreError if not a store."""
    postgres = engine(conn) == "postgresql"
    version = 0 if postgres else int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version:
        return version
    tables = _table_names(conn)
    if postgres and "meta" in tables:  # PostgreSQL keeps the version in meta alone
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row is not None else 0
    if tables - MEDSAFE_TABLES and not tables & {"meta", "runs"}:
        listing = ", ".join(sorted(tables))
        kind = "a PostgreSQL database" if postgres else "an SQLite file"
        raise StoreError(f"{path}: not a medsafe store ({kind} with tables {listing})")
    if "meta" not in tables:
        return 0  # empty, or only the calibrations of a 0.1.0 ``calibrate --db``
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        return 0  # interrupted while 0.1.0 created it: migrating from 0 completes it
    if row[0] != "1":
        raise StoreError(
            f"{path}: unknown store schema (meta.schema_version {row[0]!r} with user_version 0; "
            f"this medsafe reads up to v{len(MIGRATIONS)})"
        )
    return 1


def _refuse_newer(path: Path | str, found: int, target: int) -> None:
    if found > target:
        raise StoreError(
            f"{path}: store schema v{found} was made by a newer medsafe "
            f"(this medsafe reads up to v{target}); upgrade medsafe to open it"
        )


def is_read_only(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite refusing to write a read-only file."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM)


def migrate(conn: sqlite3.Connection, path: Path | str) -> int:
    """Bring the store on ``conn`` (an autocommit connection) up to :data:`CURRENT_VERSION`.

    Returns the version found. A store already current is only read. Otherwise every step
    runs in one ``BEGIN IMMEDIATE`` transaction, rolled back if any fails. Raises StoreError
    naming ``path`` when the file is not a store, was made by a newer medsafe, cannot be
    written (permission denied), or a step fails.
    """
    target = len(MIGRATIONS)  # not CURRENT_VERSION: tests swap MIGRATIONS
    found = stored_version(conn, path)
    _refuse_newer(path, found, target)
    if found == target:
        return found
    step = found
    try:
        conn.execute("BEGIN IMMEDIATE")
        found = step = stored_version(conn, path)  # another process may have migrated it
        _refuse_newer(path, found, target)
        if engine(conn) == "postgresql":
            for statement in PREREQUISITES:
                conn.execute(statement)
        for migration in MIGRATIONS[found:]:
            migration.apply(conn)
            step = migration.to
        if found < target:
            conn.execute(f"PRAGMA user_version = {target:d}")
            conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(target),))
        conn.execute("COMMIT")
        forget = getattr(conn, "forget_tables", None)
        if forget is not None:
            forget()
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, StoreError) or not isinstance(exc, Exception):
            raise
        if is_read_only(exc):
            raise StoreError(
                f"{path}: store schema v{found}, this medsafe needs v{target}; migrating it "
                f"writes to the file: permission denied ({exc}). Open it once with write "
                "access, or work on a writable copy"
            ) from exc
        raise StoreError(
            f"{path}: migrating the store from v{found} to v{target} failed at the step to "
            f"v{step + 1} ({type(exc).__name__}: {exc}); the file is unchanged"
        ) from exc
    return found
