"""Accounts, passwords, server-side sessions and login back-off of the workbench.

Passwords are argon2id hashes (``argon2-cffi``). A session is a random token (32 bytes) that
only the browser holds, in an HttpOnly, SameSite=Strict cookie; the store keeps its SHA-256
with the session's CSRF token, absolute expiry and last activity (idle timeout). Failed logins
are counted per user name and per client address, and each subject is refused for an
exponentially growing time once it passes its threshold.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medsafe.errors import MedsafeError
from medsafe.store import accounts
from medsafe.store.sqlite import now_iso

ROLES = ("admin", "reviewer", "adjudicator", "auditor", "viewer")
"""Every role. A role grants only what it names: ``admin`` holds no other role implicitly."""

Language = Literal["en", "zh", "ja"]
LANGUAGES: tuple[Language, ...] = ("en", "zh", "ja")

SESSION_TTL_S = 12 * 3600.0
"""A session ends this long after login, active or not."""
IDLE_TIMEOUT_S = 30 * 60.0
"""A session ends after this long without a request."""
USER_THRESHOLD = 5
"""Failed logins of one user name before it is refused for a while."""
ADDRESS_THRESHOLD = 20
"""Failed logins from one client address before it is refused for a while (higher: an
address may be shared by a whole ward behind one NAT)."""
MAX_BLOCK_S = 15 * 60.0

_HASHER = PasswordHasher()
DUMMY_HASH = _HASHER.hash("medsafe: a password no account has")
"""Checked against when the user name is unknown (same cost as a real check); tests that
create users with cheaper parameters replace it with one of the same parameters."""


class AccountError(MedsafeError):
    """A bad account operation (unknown user, unknown role, empty password...)."""


@dataclass(frozen=True)
class User:
    """The signed-in user, as every route sees it."""

    username: str
    roles: frozenset[str]
    language: Language

    def has(self, *roles: str) -> bool:
        """Whether the user holds any of ``roles``."""
        return bool(self.roles.intersection(roles))


@dataclass(frozen=True)
class Session:
    """A live session: who, and the CSRF token its forms carry."""

    user: User
    token_hash: str
    csrf_token: str


def hash_password(password: str, hasher: PasswordHasher = _HASHER) -> str:
    """The argon2id hash of ``password`` (AccountError if empty)."""
    if not password:
        raise AccountError("the password is empty")
    return hasher.hash(password)


def check_roles(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    """``roles`` as a set, or AccountError naming an unknown one (or none given)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise AccountError(f"unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})")
    if not roles:
        raise AccountError(f"give at least one --role ({', '.join(ROLES)})")
    return frozenset(roles)


def check_username(name: str) -> str:
    """A user name of 1-64 printable characters without spaces, else AccountError."""
    if not 0 < len(name) <= 64 or not name.isprintable() or any(c.isspace() for c in name):
        raise AccountError(f"bad user name {name!r}: 1-64 printable characters, no spaces")
    return name


def audit(
    conn: sqlite3.Connection, actor: str, action: str, target: str, payload: dict[str, Any]
) -> None:
    """Append one entry to the store's audit chain."""
    from medsafe.audit.chain import append

    append(conn, actor, action, target, payload)


# -- accounts -------------------------------------------------------------------------------


def add_user(
    conn: sqlite3.Connection,
    username: str,
    password: str,
    roles: list[str] | tuple[str, ...],
    *,
    actor: str,
    language: Language = "en",
    hasher: PasswordHasher = _HASHER,
) -> User:
    """Create an account (AccountError if the name is taken) and audit it."""
    role_set = check_roles(roles)
    check_username(username)
    digest = hash_password(password, hasher)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not accounts.insert_user(conn, username, digest, role_set, language, now_iso()):
            raise AccountError(f"user {username!r} exists already (use `medsafe users reset`)")
        audit(conn, actor, "user.add", username, {"roles": sorted(role_set)})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return User(username, role_set, language)


def _require(conn: sqlite3.Connection, username: str) -> accounts.UserRow:
    row = accounts.get_user(conn, username)
    if row is None:
        raise AccountError(f"no user {username!r}")
    return row


def set_disabled(conn: sqlite3.Connection, username: str, disabled: bool, *, actor: str) -> None:
    """Disable (or enable) an account; disabling ends its sessions."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _require(conn, username)
        accounts.update_user(conn, username, disabled=disabled)
        if disabled:
            accounts.delete_user_sessions(conn, username)
        audit(conn, actor, "user.disable" if disabled else "user.enable", username, {})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def reset_user(
    conn: sqlite3.Connection,
    username: str,
    *,
    actor: str,
    password: str | None = None,
    roles: list[str] | tuple[str, ...] | None = None,
    hasher: PasswordHasher = _HASHER,
) -> None:
    """Set a new password and/or roles; ends the user's sessions and clears its back-off."""
    digest = None if password is None else hash_password(password, hasher)
    role_set = None if roles is None else check_roles(roles)
    conn.execute("BEGIN IMMEDIATE")
    try:
        _require(conn, username)
        accounts.update_user(conn, username, password_hash=digest, roles=role_set)
        accounts.delete_user_sessions(conn, username)
        accounts.clear_failures(conn, [f"user:{username}"])
        changed: dict[str, object] = {"new_credentials": digest is not None}
        if role_set is not None:
            changed["roles"] = sorted(role_set)
        audit(conn, actor, "user.reset", username, changed)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def set_language(conn: sqlite3.Connection, username: str, language: Language) -> None:
    """Store the user's interface language."""
    accounts.update_user(conn, username, language=language)


# -- login and sessions ---------------------------------------------------------------------


def token_hash(token: str) -> str:
    """How a session token is stored (SHA-256, hex): a leaked table opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    """A login attempt's outcome: a new session token, or a refusal (``retry_after`` > 0
    when refused by back-off)."""

    token: str | None
    user: User | None
    retry_after: float = 0.0


def _block_for(failures: int, threshold: int) -> float:
    """Seconds to refuse a subject after ``failures`` consecutive failures."""
    if failures < threshold:
        return 0.0
    return float(min(MAX_BLOCK_S, 2 ** (failures - threshold)))


def login(
    conn: sqlite3.Connection,
    username: str,
    password: str,
    address: str,
    *,
    now: float | None = None,
) -> LoginResult:
    """Check a password and open a session, honouring and updating the back-off.

    A refused attempt (back-off) checks no password. An unknown user costs the same hash
    check as a known one, and counts as a failure of that name, so the answer says nothing
    about which names exist.
    """
    now = time.time() if now is None else now
    subjects = [f"user:{username}", f"addr:{address}"]
    wait = accounts.blocked_until(conn, subjects) - now
    if wait > 0:
        return LoginResult(None, None, wait)
    row = accounts.get_user(conn, username)
    ok = False
    try:
        ok = _HASHER.verify(row.password_hash if row else DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if row is None or row.disabled or not ok:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for subject, threshold in zip(
                subjects, (USER_THRESHOLD, ADDRESS_THRESHOLD), strict=True
            ):
                failures = accounts.failure_count(conn, subject) + 1
                accounts.record_failure(conn, subject, now, now + _block_for(failures, threshold))
            audit(conn, username, "login.failed", username, {"address": address})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return LoginResult(None, None)
    token = secrets.token_urlsafe(32)
    session = accounts.SessionRow(
        token_hash(token), row.username, secrets.token_urlsafe(32), now, now, now + SESSION_TTL_S
    )
    conn.execute("BEGIN IMMEDIATE")
    try:
        accounts.clear_failures(conn, subjects)
        accounts.delete_stale_sessions(conn, now, now - IDLE_TIMEOUT_S)
        accounts.insert_session(conn, session)
        audit(conn, row.username, "login", row.username, {"address": address})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    user = User(row.username, row.roles, _language(row.language))
    return LoginResult(token, user)


def _language(value: str) -> Language:
    for lang in LANGUAGES:
        if value == lang:
            return lang
    return "en"


def session_for(
    conn: sqlite3.Connection,
    token: str | None,
    *,
    now: float | None = None,
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> Session | None:
    """The live session of cookie value ``token`` (None if absent, expired, idle too long,
    or its account is disabled); records the activity."""
    if not token:
        return None
    now = time.time() if now is None else now
    digest = token_hash(token)
    row = accounts.get_session(conn, digest)
    if row is None:
        return None
    if row.expires <= now or row.last_seen < now - idle_timeout:
        accounts.delete_session(conn, digest)
        return None
    user_row = accounts.get_user(conn, row.username)
    if user_row is None or user_row.disabled:
        return None
    if now - row.last_seen > 30:  # one write per half minute is enough for the idle timer
        accounts.touch_session(conn, digest, now)
    user = User(user_row.username, user_row.roles, _language(user_row.language))
    return Session(user, digest, row.csrf_token)


def logout(conn: sqlite3.Connection, session: Session) -> None:
    """End ``session`` (its cookie opens nothing afterwards) and audit it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        accounts.delete_session(conn, session.token_hash)
        audit(conn, session.user.username, "logout", session.user.username, {})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def same_token(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens (False when either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
