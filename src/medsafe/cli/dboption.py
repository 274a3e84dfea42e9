"""The ``--db`` option's value: a SQLite file or a ``postgresql://`` URL, password taken out."""

from __future__ import annotations

from pathlib import Path

from medsafe.exits import fail
from medsafe.store.pg import is_store_url, redacted, store_path

DB_HELP = "Results store: a SQLite file, or postgresql://USER@HOST:PORT/DBNAME."


def db_location(value: Path | None) -> Path | None:
    """``--db``'s callback: a URL's password goes to ``PGPASSWORD`` (never stored or printed)."""
    if value is None or not is_store_url(value):
        return value
    return store_path(value)


def require_store(db: Path) -> None:
    """Exit 2 naming ``db`` when it is a file that does not exist (a URL is checked on connect)."""
    if not is_store_url(db) and not db.exists():
        raise fail(f"{redacted(db)}: no such store")
