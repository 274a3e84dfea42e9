"""Review flags of a run (``suspected_injection``, ``judge_disagreement:SCORER``, ...): how many
items carry each flag, and the first flagged units by id, for the people who review them."""

from __future__ import annotations

import sqlite3

from medsafe.results.models import FlaggedUnit, Flags
from medsafe.store import aggregates as sql

MAX_UNITS = 100
"""At most this many flagged units are listed."""


def flags_block(conn: sqlite3.Connection, run_id: str) -> Flags:
    """Flagged items per flag and the first :data:`MAX_UNITS` flagged units (item, turn, flag)."""
    counts = sql.flag_counts(conn, run_id)
    if not counts:
        return Flags()
    units = sql.flagged_units(conn, run_id, MAX_UNITS + 1)
    return Flags(
        counts=counts,
        units=[FlaggedUnit(item_id=i, turn=t, flag=f) for i, t, f in units[:MAX_UNITS]],
        truncated=len(units) > MAX_UNITS,
    )
