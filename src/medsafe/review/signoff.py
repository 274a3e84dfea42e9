"""Sign-off of a run by an auditor, with its preconditions checked here and the record kept by
:func:`medsafe.audit.signoffs.record_signoff` (content hash and audit-chain head).

Preconditions: every required review task of the run is complete, and the auditor labelled or
adjudicated no unit of any of the run's tasks (separation of duties).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from medsafe.audit.signoffs import Decision, SignOff, SignOffStatus, record_signoff, signoffs_for
from medsafe.review.tasks import ReviewError, list_tasks, reviewers_of_run


@dataclass(frozen=True)
class SignOffState:
    """What a sign-off page shows: open required tasks, who may not sign, the sign-offs."""

    run_id: str
    open_tasks: list[str]
    reviewers: set[str]
    signoffs: list[SignOffStatus]

    def blocker(self, actor: str) -> str | None:
        """Why ``actor`` cannot sign off now, or None."""
        if actor in self.reviewers:
            return f"{actor} reviewed units of run {self.run_id}: separation of duties"
        if self.open_tasks:
            return f"required review tasks are not complete: {', '.join(self.open_tasks)}"
        return None


def signoff_state(conn: sqlite3.Connection, run_id: str) -> SignOffState:
    """The run's sign-off state."""
    tasks = list_tasks(conn, run_id)
    open_tasks = [t.spec.task_id for t in tasks if t.spec.required and t.n_final < t.n_units]
    return SignOffState(
        run_id, open_tasks, reviewers_of_run(conn, run_id), signoffs_for(conn, run_id)
    )


def sign_off(
    conn: sqlite3.Connection,
    run_id: str,
    actor: str,
    decision: Decision,
    comment: str = "",
    conditions: str = "",
) -> SignOff:
    """Record the sign-off if its preconditions hold; ReviewError saying why not otherwise."""
    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        raise ReviewError(f"no run {run_id!r}")
    conn.execute("BEGIN IMMEDIATE")  # checks and record in one transaction
    try:
        problem = signoff_state(conn, run_id).blocker(actor)
        if problem is not None:
            raise ReviewError(problem)
        signed = record_signoff(conn, run_id, actor, decision, comment, conditions)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return signed
