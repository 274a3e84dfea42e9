"""Tables of gate decisions (schema v7); owned by :mod:`medsafe.gate`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from medsafe.store.aggregates import item_value_sql
from medsafe.store.pg import engine

GATE_DDL = """
CREATE TABLE IF NOT EXISTS gate_results (
    id INTEGER PRIMARY KEY,
    run_ids TEXT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    outcome TEXT NOT NULL,
    result_json TEXT NOT NULL,
    ts TEXT NOT NULL
);
"""
"""Added by schema v7 (the gate package extends it while the gate is built)."""

GATE_TABLES = frozenset({"gate_results"})


# -- the gate's reads and writes (all of its SQL) -------------------------------------------


def insert_gate_result(
    conn: sqlite3.Connection,
    run_ids: list[str],
    policy_sha256: str,
    outcome: str,
    result_json: str,
    ts: str,
) -> int:
    """Store one gate decision (in the caller's transaction); returns its row id."""
    row = conn.execute(
        "INSERT INTO gate_results (run_ids, policy_sha256, outcome, result_json, ts) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (json.dumps(run_ids), policy_sha256, outcome, result_json, ts),
    ).fetchone()
    return int(row[0])


def gate_results_of(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    """Every stored gate decision that judged ``run_id``, oldest first."""
    judged = (
        "g.run_ids::jsonb @> jsonb_build_array(?::text)"
        if engine(conn) == "postgresql"
        else "EXISTS (SELECT 1 FROM json_each(g.run_ids) r WHERE r.value = ?)"
    )
    rows = conn.execute(
        "SELECT g.id, g.run_ids, g.policy_sha256, g.outcome, g.result_json, g.ts "
        f"FROM gate_results g WHERE {judged} ORDER BY g.id",
        (run_id,),
    ).fetchall()
    return [
        {
            "id": r[0],
            "run_ids": json.loads(r[1]),
            "policy_sha256": r[2],
            "outcome": r[3],
            "result": json.loads(r[4]),
            "ts": r[5],
        }
        for r in rows
    ]


def paired_units(
    conn: sqlite3.Connection,
    schema_b: str,
    run_a: str,
    run_b: str,
    scorer: str,
    judge: str,
    null_values: Mapping[str, float],
) -> list[tuple[str, str | None, float | None, str | None, float | None]]:
    """``(item_id, label in A, value in A, label in B, value in B)`` of every item both runs
    scored ok for ``scorer``/``judge``; the value is the item value (whole transcript, else the
    mean of its turns), the label the whole-transcript label. ``schema_b``: ``""`` (this store) or
    the attached store of run B (``"rb."``) (:class:`medsafe.store.paired.PairedStores`)."""
    value = item_value_sql(null_values)
    label = "MAX(CASE WHEN s.turn < 0 AND s.status = 'ok' THEN s.label END)"

    def side(schema: str) -> str:
        return (
            f"SELECT s.item_id AS item_id, {label} AS l, {value} AS v FROM {schema}scores s "
            "WHERE s.run_id = ? AND s.scorer = ? AND s.judge = ? GROUP BY s.item_id"
        )

    sql = (
        f"WITH a AS ({side('')}), b AS ({side(schema_b)}) "
        "SELECT a.item_id, a.l, a.v, b.l, b.v FROM a JOIN b ON b.item_id = a.item_id "
        "WHERE (a.v IS NOT NULL OR a.l IS NOT NULL) AND (b.v IS NOT NULL OR b.l IS NOT NULL) "
        "ORDER BY a.item_id"
    )
    rows = conn.execute(sql, (run_a, scorer, judge, run_b, scorer, judge)).fetchall()
    return [(str(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def review_state(conn: sqlite3.Connection, run_id: str) -> tuple[int, int]:
    """Review tasks of ``run_id``: how many, and how many are not ``complete``."""
    if not _has_table(conn, "review_tasks"):
        return 0, 0
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status <> 'complete' THEN 1 ELSE 0 END), 0) "
        "FROM review_tasks "
        "WHERE run_id = ?",
        (run_id,),
    ).fetchone()
    return int(row[0]), int(row[1])


def run_item_count(conn: sqlite3.Connection, schema: str, run_id: str) -> int:
    """Items of ``run_id`` in ``schema`` (``""``: this store, or an attached one's ``"rb."``)."""
    row = conn.execute(f"SELECT COUNT(*) FROM {schema}items WHERE run_id = ?", (run_id,))
    return int(row.fetchone()[0])
