"""How the store writer turns a batch of queued writes into few SQLite statements.

Python's ``sqlite3`` releases the GIL around every statement step, so a writer that runs one
step per row hands the GIL back and forth with the event loop thousands of times a second,
and every hand-over delays the answers the loop is waiting to read. The writer therefore
gathers a batch's upserts per table and writes each table's rows with multi-row ``INSERT OR
REPLACE ... VALUES (...), (...)`` statements, and a batch's "clear this item's scores" requests
with one ``DELETE ... IN (...)``.

Reordering is only done where it cannot change the result. Within a *segment* of the batch:
clears run first, then each table's upserts, rows in the order they were queued (the last
write of a key wins, as it would one by one). Upserts into different tables commute (the
schema has no triggers or foreign keys). A clear may move ahead of earlier upserts only if
none of them was a score of the same item; otherwise it starts a new segment. Any other SQL
(:class:`Sql`) runs where it was queued, between segments.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medsafe.store.pg import engine

MAX_VARIABLES = 999
"""Bound parameters per statement: SQLite's smallest compiled-in limit, so any build works."""


@dataclass(frozen=True, slots=True)
class Sql:
    """Arbitrary SQL, run as is with ``executemany`` (never reordered)."""

    sql: str
    rows: Sequence[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Upsert:
    """``INSERT OR REPLACE`` of whole rows (every column, in table order) into ``table``."""

    table: str
    rows: Sequence[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class ClearScores:
    """Delete every score of these ``(run_id, item_id)`` items (a new answer makes them stale)."""

    items: Sequence[tuple[str, str]]


Op = Sql | Upsert | ClearScores


@dataclass
class _Segment:
    clears: list[tuple[str, str]] = field(default_factory=list)
    upserts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    scored: set[tuple[str, str]] = field(default_factory=set)

    def can_clear(self, op: ClearScores) -> bool:
        return not self.scored.intersection(op.items)

    def add(self, op: Upsert | ClearScores) -> None:
        if isinstance(op, ClearScores):
            self.clears.extend(op.items)
            return
        self.upserts.setdefault(op.table, []).extend(op.rows)
        if op.table == "scores":
            self.scored.update((row[0], row[1]) for row in op.rows)

    def run(self, conn: sqlite3.Connection) -> None:
        by_run: dict[str, list[str]] = defaultdict(list)
        for run_id, item_id in self.clears:
            by_run[run_id].append(item_id)
        for run_id, item_ids in by_run.items():
            for chunk in _chunks(item_ids, MAX_VARIABLES - 1):
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"DELETE FROM scores WHERE run_id=? AND item_id IN ({marks})",
                    (run_id, *chunk),
                )
        for table, queued in self.upserts.items():
            rows = _last_per_key(table, queued)
            if not rows:
                continue
            width = len(rows[0])
            if engine(conn) == "postgresql":  # psycopg pipelines executemany: one short query
                marks = ",".join("?" * width)
                conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", rows)
                continue
            for chunk in _chunks(rows, max(1, MAX_VARIABLES // width)):
                values = ",".join(["(" + ",".join("?" * width) + ")"] * len(chunk))
                flat = [value for row in chunk for value in row]
                conn.execute(f"INSERT OR REPLACE INTO {table} VALUES {values}", flat)


KEY_WIDTH = {"transcripts": 2, "cache": 1, "scores": 5, "flags": 3, "dialogue_turns": 3}
"""How many leading columns of each writer table make its primary key."""


def _last_per_key(table: str, rows: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
    """The last row queued for each key: what writing them one by one would leave, and what
    PostgreSQL needs (one ``ON CONFLICT DO UPDATE`` may not touch a row twice)."""
    width = KEY_WIDTH.get(table)
    if width is None:
        return rows
    last = {row[:width]: row for row in rows}
    return rows if len(last) == len(rows) else list(last.values())


def _chunks(rows: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def execute_batch(conn: sqlite3.Connection, ops: Sequence[Op]) -> None:
    """Run ``ops`` (inside the caller's transaction) with as few statements as is safe."""
    segment = _Segment()
    for op in ops:
        if isinstance(op, Sql):
            segment.run(conn)
            segment = _Segment()
            conn.executemany(op.sql, op.rows)
            continue
        if isinstance(op, ClearScores) and not segment.can_clear(op):
            segment.run(conn)
            segment = _Segment()
        segment.add(op)
    segment.run(conn)
