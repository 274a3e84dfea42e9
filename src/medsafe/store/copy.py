"""Copy runs between stores (SQLite ↔ PostgreSQL), all or nothing.

A run travels with every row that is its own: the run, its items, transcripts, scores,
dialogue turns and flags, and the request-cache rows of the calls it made (so a resumed or
repeated run in the target asks nothing the source already paid for). Store-wide records stay
where they are: the audit chain (a hash chain belongs to its store; the copy is recorded as a
new entry in the target's), sign-offs, review tasks, users, calibrations and gate decisions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from medsafe.errors import StoreError
from medsafe.store.sqlite import Store, request_hashes_of

RUN_TABLES = ("runs", "items", "transcripts", "scores", "dialogue_turns", "flags")
"""The tables whose rows of a run are copied, in an order that respects their meaning."""


@dataclass
class CopiedRun:
    """What was copied of one run."""

    run_id: str
    rows: dict[str, int] = field(default_factory=dict)
    cache: int = 0


def _columns(cursor: Any) -> list[str]:
    return [str(d[0]) for d in cursor.description]


def _insert_sql(table: str, columns: Sequence[str], verb: str = "INSERT") -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    return f"{verb} INTO {table} ({names}) VALUES ({marks})"


def _batches(cursor: Any, size: int) -> Iterator[list[tuple[Any, ...]]]:
    while rows := cursor.fetchmany(size):
        yield [tuple(r) for r in rows]


def _copy_table(
    source: sqlite3.Connection, target: sqlite3.Connection, table: str, run_id: str, chunk: int
) -> int:
    cursor = source.execute(f"SELECT * FROM {table} WHERE run_id=?", (run_id,))
    sql = _insert_sql(table, _columns(cursor))
    n = 0
    for rows in _batches(cursor, chunk):
        target.executemany(sql, rows)
        n += len(rows)
    return n


def _copy_cache(
    source: sqlite3.Connection, target: sqlite3.Connection, run_id: str, chunk: int
) -> int:
    keys = sorted(request_hashes_of(source, run_id))
    n = 0
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        marks = ",".join("?" * len(part))
        cursor = source.execute(f"SELECT * FROM cache WHERE request_hash IN ({marks})", part)
        sql = _insert_sql("cache", _columns(cursor), "INSERT OR IGNORE")
        for rows in _batches(cursor, chunk):
            target.executemany(sql, rows)
            n += len(rows)
    return n


def copy_runs(
    source: Store, target: Store, run_ids: Sequence[str] = (), *, chunk: int = 2000
) -> list[CopiedRun]:
    """Copy ``run_ids`` (default: every run) from ``source`` to ``target`` in one transaction.

    Refuses, before writing anything, a run the source lacks or the target already holds
    (delete it there first: ``medsafe delete``). On any error nothing is copied.
    """
    wanted = list(run_ids) or [r.run_id for r in source.list_runs()]
    if not wanted:
        raise StoreError(f"{source.path}: no runs to copy")
    missing = [r for r in wanted if source.get_run(r) is None]
    if missing:
        raise StoreError(f"no run {', '.join(map(repr, missing))} in the source store")
    present = [r for r in wanted if target.get_run(r) is not None]
    if present:
        raise StoreError(
            f"the target store already holds run {', '.join(map(repr, present))}; "
            "delete it there first (medsafe delete RUN --db TARGET) or copy other runs"
        )
    src, dst = source.connection, target.connection
    copied: list[CopiedRun] = []
    dst.execute("BEGIN IMMEDIATE")
    try:
        for run_id in wanted:
            done = CopiedRun(run_id)
            for table in RUN_TABLES:
                done.rows[table] = _copy_table(src, dst, table, run_id, chunk)
            done.cache = _copy_cache(src, dst, run_id, chunk)
            copied.append(done)
        dst.execute("COMMIT")
    except BaseException:
        if dst.in_transaction:
            dst.execute("ROLLBACK")
        raise
    return copied
