"""The audit trail: an append-only table ``audit_log`` whose rows form a SHA-256 hash chain.

Each entry holds ``seq`` (1, 2, 3...), ``ts`` (UTC ISO 8601), ``actor``, ``action``, ``target``
and ``payload`` (its RFC 8785 canonical JSON), and

- ``payload_hash`` = SHA-256 of the canonical JSON of the payload,
- ``prev_hash`` = the previous entry's ``hash`` (:data:`GENESIS`, 64 zeros, for the first),
- ``hash`` = SHA-256 of the canonical JSON of ``{seq, ts, actor, action, target,
  payload_hash, prev_hash}``.

:func:`verify` recomputes every link, so an edited, inserted or deleted row breaks the chain at
that row. Cutting the tail off leaves a valid shorter chain: it is caught against the heads
recorded elsewhere -- each sign-off stores the hash of its own ``signoff`` entry, a manifest
stores the head when it was written (pass it as ``expected_heads``).

The chain has no secret: whoever can write the file can rebuild it from scratch. It proves
that the log was not changed *behind the app's back* and, anchored in a signed manifest, that
it was not rewritten since the manifest was signed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from medsafe.audit.canonical import canonical, sha256_hex

__all__ = [
    "GENESIS",
    "AuditEntry",
    "ChainReport",
    "append",
    "entry_hash",
    "export",
    "head",
    "signoff_payload",
    "verify",
]

GENESIS = "0" * 64
"""``prev_hash`` of the first entry, and the head of an empty log."""

_FORBIDDEN_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "api_key",
        "apikey",
        "token",
        "access_token",
        "refresh_token",
        "private_key",
        "password_hash",
    }
)
"""Payload keys refused by :func:`append`: a payload must never carry a credential."""


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    seq: int
    ts: str
    actor: str
    action: str
    target: str | None
    payload: dict[str, Any]
    payload_hash: str
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as one JSON object (the ``medsafe audit export`` line)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "payload": self.payload,
            "payload_hash": self.payload_hash,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found: ``ok``, the number ``n`` of entries read, the ``seq`` of the
    first broken entry (None when ok) and why, in words."""

    ok: bool
    n: int
    first_broken: int | None
    reason: str


def entry_hash(
    seq: int,
    ts: str,
    actor: str,
    action: str,
    target: str | None,
    payload_hash: str,
    prev_hash: str,
) -> str:
    """The ``hash`` of an entry: SHA-256 of the canonical JSON of its linked fields."""
    return sha256_hex(
        canonical(
            {
                "seq": seq,
                "ts": ts,
                "actor": actor,
                "action": action,
                "target": target,
                "payload_hash": payload_hash,
                "prev_hash": prev_hash,
            }
        )
    )


def _check_payload(value: Any, path: str = "payload") -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(key, str) and key.lower().replace("-", "_") in _FORBIDDEN_KEYS:
                raise ValueError(f"{path}.{key}: audit payloads never carry credentials")
            _check_payload(inner, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            _check_payload(inner, f"{path}[{index}]")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _last(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS
    return int(row[0]), str(row[1])


def _insert(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str | None,
    payload: dict[str, Any],
) -> AuditEntry:
    blob = canonical(payload)
    last_seq, prev = _last(conn)
    seq = last_seq + 1
    ts = _now()
    payload_hash = sha256_hex(blob)
    digest = entry_hash(seq, ts, actor, action, target, payload_hash, prev)
    conn.execute(
        "INSERT INTO audit_log (seq, ts, actor, action, target, payload, payload_hash, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, actor, action, target, blob.decode("utf-8"), payload_hash, prev, digest),
    )
    return AuditEntry(seq, ts, actor, action, target, payload, payload_hash, prev, digest)


def append(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str | None,
    payload: Mapping[str, Any],
) -> AuditEntry:
    """Append one entry to the chain and return it.

    Inside the caller's open transaction the entry joins it (it commits or rolls back with the
    caller's change; open it with ``BEGIN IMMEDIATE`` so that the read of the head and the
    insert are serialised with other writers). Without one, it opens ``BEGIN IMMEDIATE`` and
    commits. Raises ValueError for a payload that is not JSON or carries a credential-named key
    (``password``, ``api_key``, ``token``...).
    """
    if not actor or not action:
        raise ValueError("an audit entry needs an actor and an action")
    data = dict(payload)
    _check_payload(data)
    if conn.in_transaction:
        return _insert(conn, actor, action, target, data)
    conn.execute("BEGIN IMMEDIATE")
    try:
        entry = _insert(conn, actor, action, target, data)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return entry


def head(conn: sqlite3.Connection) -> str:
    """The hash of the last entry (:data:`GENESIS` when the log is empty)."""
    return _last(conn)[1]


_COLUMNS = "seq, ts, actor, action, target, payload, payload_hash, prev_hash, hash"


def _rows(conn: sqlite3.Connection, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    last = None
    while True:
        if last is None:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq LIMIT ?", (chunk,)
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, chunk),
            ).fetchall()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def export(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every entry in ``seq`` order, as JSON objects (see :meth:`AuditEntry.as_dict`)."""
    for seq, ts, actor, action, target, payload, payload_hash, prev, digest in _rows(conn):
        yield AuditEntry(
            int(seq), ts, actor, action, target, json.loads(payload), payload_hash, prev, digest
        ).as_dict()


def _broken_row(row: tuple[Any, ...], expected_seq: int, prev: str) -> str | None:
    seq, ts, actor, action, target, payload, payload_hash, prev_hash, digest = row
    if seq != expected_seq:
        if isinstance(seq, int) and seq > expected_seq:
            missing = (
                f"seq {expected_seq}"
                if seq == expected_seq + 1
                else f"seq {expected_seq}-{seq - 1}"
            )
            return f"entries before it are missing ({missing}: deleted?)"
        return f"out of sequence (expected seq {expected_seq})"
    if prev_hash != prev:
        return "prev_hash does not match the previous entry's hash (a row inserted or deleted?)"
    if not isinstance(payload, str) or sha256_hex(payload.encode("utf-8")) != payload_hash:
        return "payload does not match its payload_hash (payload edited)"
    if entry_hash(seq, ts, actor, action, target, payload_hash, prev_hash) != digest:
        return "hash does not match the entry's fields (entry edited)"
    return None


def signoff_payload(
    run_id: str, decision: str, comment: str, conditions: str, content_hash: str
) -> dict[str, Any]:
    """The payload of a ``signoff`` entry, rebuilt from a ``signoffs`` row by :func:`verify`."""
    return {
        "run_id": run_id,
        "decision": decision,
        "comment": comment,
        "conditions": conditions,
        "content_hash": content_hash,
    }


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
    ).fetchone()
    return row is not None


def _in_chain(conn: sqlite3.Connection, digest: str) -> bool:
    """Whether ``digest`` is :data:`GENESIS` or the hash of an entry (of a verified chain)."""
    if digest == GENESIS:
        return True
    return conn.execute("SELECT 1 FROM audit_log WHERE hash=?", (digest,)).fetchone() is not None


def _signoff_problem(conn: sqlite3.Connection) -> tuple[str, bool] | None:
    """(what is wrong, whether it shows a truncated tail) for the first sign-off whose
    recorded head is not in the chain or whose row differs from its ``signoff`` entry."""
    if not _table_exists(conn, "signoffs"):
        return None
    rows = conn.execute(
        "SELECT id, run_id, actor, decision, comment, conditions, content_hash, audit_head "
        "FROM signoffs ORDER BY id"
    ).fetchall()
    for sid, run_id, actor, decision, comment, conditions, content_hash, recorded in rows:
        where = f"sign-off #{sid} of run {run_id!r}"
        if not _in_chain(conn, str(recorded)):
            return f"{where} recorded audit head {str(recorded)[:12]}...", True
        entry = conn.execute(
            "SELECT action, actor, target, payload_hash FROM audit_log WHERE hash=?", (recorded,)
        ).fetchone()
        payload = signoff_payload(run_id, decision, comment, conditions, content_hash)
        expected = ("signoff", actor, run_id, sha256_hex(canonical(payload)))
        if entry is None or tuple(entry) != expected:
            return f"{where} differs from its audit entry (the sign-off row was edited)", False
    return None


def verify(conn: sqlite3.Connection, expected_heads: Iterable[str] = ()) -> ChainReport:
    """Recompute the whole chain; the first entry that fails is reported.

    Besides the links, every head recorded by a sign-off -- and every hash in
    ``expected_heads`` (e.g. a manifest's ``audit_head``) -- must be the hash of an entry still
    in the chain (or :data:`GENESIS`): otherwise the tail was truncated.
    """
    prev = GENESIS
    n = 0
    for row in _rows(conn):
        n += 1
        problem = _broken_row(row, n, prev)
        if problem is not None:
            return ChainReport(False, n - 1, int(row[0]), f"entry seq {row[0]}: {problem}")
        prev = str(row[8])
    for recorded in expected_heads:
        if not _in_chain(conn, recorded):
            return _truncated(n, f"the given head {recorded[:12]}...")
    signoff = _signoff_problem(conn)
    if signoff is not None:
        what, truncated = signoff
        return _truncated(n, what) if truncated else ChainReport(False, n, None, what)
    return ChainReport(True, n, None, f"{n} entries, chain intact, head {prev[:12]}...")


def _truncated(n: int, where: str) -> ChainReport:
    return ChainReport(
        False,
        n,
        n + 1,
        f"{where} is not in the chain of {n} entries: entries after seq {n} were removed "
        "(tail truncated)",
    )
