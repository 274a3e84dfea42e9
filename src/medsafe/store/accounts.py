"""The workbench's accounts, sessions and login back-off as rows (tables of schema v6).

Plain reads and writes: hashing, expiry rules and back-off policy live in
:mod:`medsafe.web.auth`. Connections are autocommit; each function is one statement or one
short transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class UserRow:
    """One account as stored (``roles`` comma-separated in the table)."""

    username: str
    password_hash: str
    roles: frozenset[str]
    language: str
    disabled: bool
    created: str


@dataclass(frozen=True)
class SessionRow:
    """One server-side session (times in Unix seconds)."""

    token_hash: str
    username: str
    csrf_token: str
    created: float
    last_seen: float
    expires: float


def _user(row: tuple[str, str, str, str, int, str]) -> UserRow:
    username, password_hash, roles, language, disabled, created = row
    return UserRow(
        username,
        password_hash,
        frozenset(r for r in roles.split(",") if r),
        language,
        bool(disabled),
        created,
    )


_USER_COLUMNS = "username, password_hash, roles, language, disabled, created"


def get_user(conn: sqlite3.Connection, username: str) -> UserRow | None:
    """The account ``username``, or None."""
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE username=?", (username,)
    ).fetchone()
    return None if row is None else _user(row)


def list_users(conn: sqlite3.Connection) -> list[UserRow]:
    """Every account, by name."""
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
    return [_user(r) for r in rows]


def insert_user(
    conn: sqlite3.Connection,
    username: str,
    password_hash: str,
    roles: frozenset[str],
    language: str,
    created: str,
) -> bool:
    """Add an account; False if the name is taken."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO users (username, password_hash, roles, language, disabled, "
        "created) VALUES (?, ?, ?, ?, 0, ?)",
        (username, password_hash, ",".join(sorted(roles)), language, created),
    )
    return cur.rowcount == 1


def update_user(
    conn: sqlite3.Connection,
    username: str,
    *,
    password_hash: str | None = None,
    roles: frozenset[str] | None = None,
    language: str | None = None,
    disabled: bool | None = None,
) -> bool:
    """Change the given fields of an account; False if there is no such account."""
    sets: list[str] = []
    args: list[object] = []
    for column, value in (
        ("password_hash", password_hash),
        ("roles", None if roles is None else ",".join(sorted(roles))),
        ("language", language),
        ("disabled", None if disabled is None else int(disabled)),
    ):
        if value is not None:
            sets.append(f"{column}=?")
            args.append(value)
    if not sets:
        return get_user(conn, username) is not None
    cur = conn.execute(f"UPDATE users SET {', '.join(sets)} WHERE username=?", (*args, username))
    return cur.rowcount == 1


# -- sessions -------------------------------------------------------------------------------


def insert_session(conn: sqlite3.Connection, session: SessionRow) -> None:
    """Store a new session."""
    conn.execute(
        "INSERT INTO web_sessions (token_hash, username, csrf_token, created, last_seen, expires)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            session.token_hash,
            session.username,
            session.csrf_token,
            session.created,
            session.last_seen,
            session.expires,
        ),
    )


def get_session(conn: sqlite3.Connection, token_hash: str) -> SessionRow | None:
    """The session whose token hashes to ``token_hash``, or None."""
    row = conn.execute(
        "SELECT token_hash, username, csrf_token, created, last_seen, expires FROM web_sessions "
        "WHERE token_hash=?",
        (token_hash,),
    ).fetchone()
    return None if row is None else SessionRow(*row)


def touch_session(conn: sqlite3.Connection, token_hash: str, now: float) -> None:
    """Record activity on a session (its idle timeout counts from here)."""
    conn.execute("UPDATE web_sessions SET last_seen=? WHERE token_hash=?", (now, token_hash))


def delete_session(conn: sqlite3.Connection, token_hash: str) -> None:
    """End one session."""
    conn.execute("DELETE FROM web_sessions WHERE token_hash=?", (token_hash,))


def delete_user_sessions(conn: sqlite3.Connection, username: str) -> int:
    """End every session of ``username``; how many there were."""
    return conn.execute("DELETE FROM web_sessions WHERE username=?", (username,)).rowcount


def delete_stale_sessions(conn: sqlite3.Connection, now: float, idle_before: float) -> int:
    """Drop sessions past their expiry or idle since before ``idle_before``."""
    return conn.execute(
        "DELETE FROM web_sessions WHERE expires<=? OR last_seen<?", (now, idle_before)
    ).rowcount


# -- login back-off -------------------------------------------------------------------------


def blocked_until(conn: sqlite3.Connection, subjects: list[str]) -> float:
    """The latest time until which any of ``subjects`` (``user:NAME``, ``addr:IP``) is
    refused (0.0 when none is)."""
    if not subjects:
        return 0.0
    marks = ",".join("?" * len(subjects))
    row = conn.execute(
        f"SELECT MAX(blocked_until) FROM web_login_failures WHERE subject IN ({marks})",
        subjects,
    ).fetchone()
    return float(row[0] or 0.0)


def failure_count(conn: sqlite3.Connection, subject: str) -> int:
    """Consecutive failed logins recorded for ``subject``."""
    row = conn.execute(
        "SELECT failures FROM web_login_failures WHERE subject=?", (subject,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def record_failure(
    conn: sqlite3.Connection, subject: str, now: float, blocked_until: float
) -> None:
    """Count one more failed login for ``subject``, refused until ``blocked_until``."""
    conn.execute(
        "INSERT INTO web_login_failures (subject, failures, last_failure, blocked_until) "
        "VALUES (?, 1, ?, ?) ON CONFLICT (subject) DO UPDATE SET failures=failures+1, "
        "last_failure=excluded.last_failure, blocked_until=excluded.blocked_until",
        (subject, now, blocked_until),
    )


def clear_failures(conn: sqlite3.Connection, subjects: list[str]) -> None:
    """Forget the failed logins of ``subjects`` (after a successful login or a reset)."""
    conn.executemany("DELETE FROM web_login_failures WHERE subject=?", [(s,) for s in subjects])
