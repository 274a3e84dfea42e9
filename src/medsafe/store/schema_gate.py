"""Tables of gate decisions (schema v7); owned by :mod:`medsafe.gate`."""

from __future__ import annotations

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
