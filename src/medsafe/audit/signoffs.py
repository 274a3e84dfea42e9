"""Sign-offs of runs: an auditor's approve/reject, bound to the run's content hash and the
audit chain.

A sign-off row stores the run's :func:`~medsafe.audit.content.run_content_hash` when it was
signed and ``audit_head``, the hash of its own ``signoff`` entry in the audit chain (so a
truncated log is caught by :func:`medsafe.audit.chain.verify`). It goes *stale* when the run's
content hash changes afterwards (a rescore, a new human label, an edit).

Preconditions (review tasks complete, separation of duties) are the caller's to check.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

from medsafe.audit.chain import append, signoff_payload
from medsafe.audit.content import run_content_hash

__all__ = ["Decision", "SignOff", "SignOffStatus", "record_signoff", "signoffs_for"]

Decision = Literal["approve", "reject"]


@dataclass(frozen=True)
class SignOff:
    """One stored sign-off."""

    id: int
    run_id: str
    actor: str
    decision: str
    comment: str
    conditions: str
    content_hash: str
    audit_head: str
    ts: str


@dataclass(frozen=True)
class SignOffStatus(SignOff):
    """A sign-off with the run's content hash now, and whether they differ (``stale``)."""

    current_hash: str
    stale: bool


def record_signoff(
    conn: sqlite3.Connection,
    run_id: str,
    actor: str,
    decision: Decision,
    comment: str,
    conditions: str,
) -> SignOff:
    """Store a sign-off of ``run_id`` by ``actor`` and its ``signoff`` audit entry together.

    Joins the caller's open transaction, or runs in its own ``BEGIN IMMEDIATE``; the content
    hash is computed inside it, so it is the content that was signed. Raises ValueError for a
    decision other than approve/reject or an empty actor, StoreError for an unknown run.
    """
    if decision not in ("approve", "reject"):
        raise ValueError(f"decision: expected 'approve' or 'reject', got {decision!r}")
    if not actor:
        raise ValueError("a sign-off needs an actor")
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        content_hash = run_content_hash(conn, run_id)
        payload = signoff_payload(run_id, decision, comment, conditions, content_hash)
        entry = append(conn, actor, "signoff", run_id, payload)
        row = conn.execute(
            "INSERT INTO signoffs (run_id, actor, decision, comment, conditions, content_hash, "
            "audit_head, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (run_id, actor, decision, comment, conditions, content_hash, entry.hash, entry.ts),
        ).fetchone()
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    sid = int(row[0])
    return SignOff(
        sid, run_id, actor, decision, comment, conditions, content_hash, entry.hash, entry.ts
    )


def signoffs_for(
    conn: sqlite3.Connection,
    run_id: str,
    *,
    current_hash: str | None = None,
    fresh: bool = False,
) -> list[SignOffStatus]:
    """The run's sign-offs, oldest first, each marked stale if the content changed since.

    The run's content hash is computed once, or taken from the cache while the run has not
    changed (pass ``current_hash`` if you have it; ``fresh`` recomputes it from the rows, for
    a decision rather than a display); a run with no sign-off costs one query. A run that was
    deleted has every sign-off stale.
    """
    rows = conn.execute(
        "SELECT id, run_id, actor, decision, comment, conditions, content_hash, audit_head, ts "
        "FROM signoffs WHERE run_id=? ORDER BY id",
        (run_id,),
    ).fetchall()
    if not rows:
        return []
    if current_hash is None:
        exists = conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone()
        current_hash = run_content_hash(conn, run_id, reuse=not fresh) if exists else ""
    return [
        SignOffStatus(
            id=int(sid),
            run_id=str(rid),
            actor=str(actor),
            decision=str(decision),
            comment=str(comment),
            conditions=str(conditions),
            content_hash=str(signed),
            audit_head=str(audit_head),
            ts=str(ts),
            current_hash=current_hash,
            stale=signed != current_hash,
        )
        for sid, rid, actor, decision, comment, conditions, signed, audit_head, ts in rows
    ]
