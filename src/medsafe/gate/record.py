"""Store a gate decision in ``gate_results`` with its audit-trail entry, in one transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from medsafe.audit.chain import append
from medsafe.gate.evaluate import GateResult
from medsafe.store.schema_gate import insert_gate_result
from medsafe.store.sqlite import Store


def record(db: Path, result: GateResult, actor: str) -> int:
    """Insert the decision (``run_ids`` a JSON list, ``result_json`` the ``--json`` output) and
    append a ``gate`` audit entry targeting the first run; returns the gate_results row id."""
    doc = result.to_dict()
    run_ids = sorted(set(result.runs.values()))
    ts = datetime.now(UTC).isoformat(timespec="seconds")
    with Store(db) as store:
        conn = store.connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = insert_gate_result(
                conn, run_ids, result.policy.sha256, result.outcome, json.dumps(doc), ts
            )
            payload = {
                "gate_result": row,
                "policy": doc["policy"]["name"],
                "policy_sha256": result.policy.sha256,
                "outcome": result.outcome,
                "runs": run_ids,
                "rules": [{"name": r["name"], "outcome": r["outcome"]} for r in doc["rules"]],
            }
            append(conn, actor, "gate", ",".join(run_ids), payload)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return row
