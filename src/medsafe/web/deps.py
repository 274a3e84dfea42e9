"""Request dependencies every route builds on: the store connection, the signed-in user,
role checks and CSRF checks.

A page asked without a live session redirects to ``/login`` (an ``/api/`` route answers 401);
a user without the route's role gets 403; a state-changing request whose CSRF token (form
field ``csrf_token`` or header ``X-CSRF-Token``) is not its session's gets 403.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from medsafe.store.webstore import connect_shared
from medsafe.web.auth import Session, User, same_token, session_for

SESSION_COOKIE = "medsafe_session"


class LoginRequired(Exception):
    """A page asked without a live session (the app answers with a redirect to /login)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def store_path(request: Request) -> Path:
    """The store file the app serves."""
    path: Path = request.app.state.db
    return path


class ConnectionPool:
    """Open store connections reused across requests: no connect per request, and no
    checkpoint of the write-ahead log each time a request's connection was the last open."""

    def __init__(self, path: Path, keep: int = 32) -> None:
        self.path = path
        self.keep = keep
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def take(self) -> sqlite3.Connection:
        """An idle connection, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return connect_shared(self.path)

    def give(self, conn: sqlite3.Connection) -> None:
        """Return a connection (rolled back if a transaction was left open)."""
        if conn.in_transaction:
            conn.rollback()
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def get_conn(request: Request) -> Iterator[sqlite3.Connection]:
    """A connection to the store for this request (the store was migrated at start-up)."""
    pool: ConnectionPool = request.app.state.pool
    conn = pool.take()
    try:
        yield conn
    finally:
        pool.give(conn)


Conn = Annotated[sqlite3.Connection, Depends(get_conn)]


def current_session(request: Request, conn: Conn) -> Session:
    """The request's live session (redirect to /login, or 401 under /api/, without one)."""
    token = request.cookies.get(SESSION_COOKIE)
    session = session_for(conn, token, idle_timeout=request.app.state.idle_timeout)
    if session is None:
        if request.url.path.startswith("/api/"):
            raise HTTPException(401, "login required")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.session = session
    return session


async def current_user(session: Annotated[Session, Depends(current_session)]) -> User:
    """The signed-in user (see :func:`current_session`)."""
    return session.user


CurrentUser = Annotated[User, Depends(current_user)]


class RoleCheck:
    """A dependency admitting a signed-in user holding any of ``roles`` (403 otherwise);
    ``roles`` stays readable, so that tests can tell which roles each route admits."""

    def __init__(self, roles: tuple[str, ...]) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, user: CurrentUser) -> User:
        if not user.has(*self.roles):
            raise HTTPException(403, "your role does not allow this")
        return user


def require_roles(*roles: str) -> RoleCheck:
    """A dependency admitting a signed-in user holding any of ``roles`` (403 otherwise)."""
    return RoleCheck(roles)


async def verify_csrf(
    request: Request, session: Annotated[Session, Depends(current_session)]
) -> None:
    """Refuse (403) a state-changing request without its session's CSRF token."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get("csrf_token")
            sent = value if isinstance(value, str) else None
    if not same_token(sent, session.csrf_token):
        raise HTTPException(403, "missing or wrong CSRF token")
