"""Calibrations kept in the results store, keyed by (scorer, judge), newest first.

Table ``calibrations`` (schema v2; see :mod:`medsafe.store.migrations`):
``scorer, judge, scorer_version, created, labels_sha256, report_json``. ``results`` and
``report`` show the newest calibration of each (scorer, judge) beside its scores.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsafe.store.sqlite import Store, now_iso


@dataclass(frozen=True)
class Calibration:
    """One stored calibration."""

    scorer: str
    judge: str
    scorer_version: str
    created: str
    report: dict[str, Any]


def save_calibration(
    db: Path, scorer: str, judge: str, version: str, report: dict[str, Any]
) -> str:
    """Store a calibration report in ``db`` (created or migrated as needed); returns its
    timestamp."""
    created = now_iso()
    with Store(db) as store:
        store.connection.execute(
            "INSERT OR REPLACE INTO calibrations VALUES (?, ?, ?, ?, ?, ?)",
            (
                scorer,
                judge,
                version,
                created,
                str(report["labels_sha256"]),
                json.dumps(report, ensure_ascii=False, sort_keys=True),
            ),
        )
    return created


def latest_calibrations(conn: sqlite3.Connection) -> dict[tuple[str, str], Calibration]:
    """The newest calibration of each (scorer, judge) on ``conn``; empty when there is none.

    ``conn`` may be on a store not opened through :class:`Store` (an attached or unmigrated
    v1 file), which may lack the table.
    """
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='calibrations'"
    ).fetchone()
    if exists is None:
        return {}
    out: dict[tuple[str, str], Calibration] = {}
    rows = conn.execute(
        "SELECT scorer, judge, scorer_version, created, report_json FROM calibrations "
        "ORDER BY created"
    )
    for scorer, judge, version, created, blob in rows:
        out[(scorer, judge)] = Calibration(scorer, judge, version, created, json.loads(blob))
    return out
