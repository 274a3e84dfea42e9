"""The workbench's reads of a store that are not accounts: a connection usable across the
server's worker threads, the per-run change counters, materialised run results, and the
paged, filtered item list of a run.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from medsafe.schema import Item
from medsafe.store.pg import connect_pg, is_store_url
from medsafe.store.schema_sql import NO_JUDGE


def connect_shared(path: Path | str) -> sqlite3.Connection:
    """An autocommit connection to an existing store that one request may use from the
    several threads a web framework hands it to (one at a time)."""
    if is_store_url(path):
        return connect_pg(path)
    conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@dataclass(frozen=True)
class RunRow:
    """A run as the runs list shows it (before its results)."""

    run_id: str
    created: str
    model: str
    suite: str
    n_items: int


def run_rows(
    conn: sqlite3.Connection,
    *,
    model: str = "",
    suite: str = "",
    since: str = "",
    until: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RunRow], int]:
    """Runs, newest first, whose model and suite contain the given texts and that were made
    on or after ``since`` / on or before ``until`` (ISO dates); and how many match in all."""
    where = ["instr(lower(model), lower(?)) > 0", "instr(lower(suite), lower(?)) > 0"]
    args: list[object] = [model, suite]
    if since:
        where.append("substr(created, 1, 10) >= ?")
        args.append(since)
    if until:
        where.append("substr(created, 1, 10) <= ?")
        args.append(until)
    clause = " AND ".join(where)
    total = int(conn.execute(f"SELECT COUNT(*) FROM runs WHERE {clause}", args).fetchone()[0])
    rows = conn.execute(
        f"SELECT run_id, created, model, suite, n_items FROM runs WHERE {clause} "
        "ORDER BY created DESC, run_id LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ).fetchall()
    return [RunRow(str(r), str(c), str(m), str(s), int(n)) for r, c, m, s, n in rows], total


def run_version(conn: sqlite3.Connection, run_id: str) -> int:
    """The run's change counter (bumped by triggers on every change of its rows; 0 if it
    never changed since the counters exist)."""
    row = conn.execute("SELECT version FROM web_run_versions WHERE run_id=?", (run_id,)).fetchone()
    return 0 if row is None else int(row[0])


def cached_results(conn: sqlite3.Connection, run_id: str) -> tuple[str, str] | None:
    """The materialised results of a run: (fingerprint, RunResults JSON), or None."""
    row = conn.execute(
        "SELECT fingerprint, results_json FROM web_results WHERE run_id=?", (run_id,)
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def cached_summaries(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, tuple[str, str]]:
    """The materialised summaries of several runs (at most 998): run id -> (fingerprint,
    summary JSON), without reading their full results."""
    if not run_ids:
        return {}
    marks = ",".join("?" * len(run_ids))
    rows = conn.execute(
        f"SELECT run_id, fingerprint, summary_json FROM web_results WHERE run_id IN ({marks})",
        run_ids,
    ).fetchall()
    return {str(r): (str(f), str(j)) for r, f, j in rows}


def run_versions(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, int]:
    """:func:`run_version` of several runs (at most 998) in one query."""
    if not run_ids:
        return {}
    marks = ",".join("?" * len(run_ids))
    rows = conn.execute(
        f"SELECT run_id, version FROM web_run_versions WHERE run_id IN ({marks})", run_ids
    ).fetchall()
    found = {str(r): int(v) for r, v in rows}
    return {r: found.get(r, 0) for r in run_ids}


def store_results(
    conn: sqlite3.Connection,
    run_id: str,
    fingerprint: str,
    results_json: str,
    summary_json: str,
    now: float,
) -> None:
    """Materialise a run's results and their summary under ``fingerprint`` (replacing older
    ones)."""
    conn.execute(
        "INSERT OR REPLACE INTO web_results (run_id, fingerprint, results_json, summary_json, "
        "computed) VALUES (?, ?, ?, ?, ?)",
        (run_id, fingerprint, results_json, summary_json, now),
    )


@dataclass(frozen=True)
class ItemFilter:
    """Filters of a run's item list (empty strings and None: no filter)."""

    category: str = ""
    language: str = ""
    flag: str = ""
    scorer: str = ""
    judge: str | None = None
    label: str = ""
    min_value: float | None = None
    max_value: float | None = None
    text: str = ""


@dataclass(frozen=True)
class ItemListRow:
    """One row of a run's item list."""

    idx: int
    item_id: str
    kind: str
    category: str
    language: str
    item: Item
    status: str | None
    flags: tuple[str, ...]


def _filter_sql(f: ItemFilter) -> tuple[str, list[object]]:
    where: list[str] = []
    args: list[object] = []
    if f.category:
        where.append("i.category = ?")
        args.append(f.category)
    if f.language:
        where.append("i.language = ?")
        args.append(f.language)
    if f.flag:
        where.append(
            "EXISTS (SELECT 1 FROM flags g WHERE g.run_id=i.run_id AND g.item_id=i.item_id "
            "AND g.flag=?)"
        )
        args.append(f.flag)
    if f.scorer and (f.label or f.min_value is not None or f.max_value is not None):
        cond = ["s.run_id=i.run_id", "s.item_id=i.item_id", "s.scorer=?", "s.status='ok'"]
        args.append(f.scorer)
        if f.judge is not None:
            cond.append("s.judge=?")
            args.append(f.judge or NO_JUDGE)
        if f.label:
            cond.append("s.label=?")
            args.append(f.label)
        if f.min_value is not None:
            cond.append("s.value>=?")
            args.append(f.min_value)
        if f.max_value is not None:
            cond.append("s.value<=?")
            args.append(f.max_value)
        where.append(f"EXISTS (SELECT 1 FROM scores s WHERE {' AND '.join(cond)})")
    if f.text:
        where.append(
            "(instr(lower(i.item_json), lower(?)) > 0 OR instr(lower(i.item_id), lower(?)) > 0 "
            "OR instr(lower(COALESCE(t.response, '')), lower(?)) > 0)"
        )
        args.extend([f.text, f.text, f.text])
    return (" AND " + " AND ".join(where)) if where else "", args


def item_page(
    conn: sqlite3.Connection,
    run_id: str,
    f: ItemFilter,
    *,
    after: int = -1,
    before: int | None = None,
    limit: int = 50,
) -> list[ItemListRow]:
    """Up to ``limit`` items of ``run_id`` matching ``f``, in suite order: those after index
    ``after``, or (``before`` given) the last ones before index ``before`` (keyset paging:
    every page costs the same however deep)."""
    clause, args = _filter_sql(f)
    backwards = before is not None
    bound = "i.idx < ?" if backwards else "i.idx > ?"
    order = "DESC" if backwards else "ASC"
    rows = conn.execute(
        "SELECT i.idx, i.item_id, i.kind, i.category, i.language, i.item_json, t.status, "
        "(SELECT group_concat(flag, ',') FROM flags g WHERE g.run_id=i.run_id "
        "AND g.item_id=i.item_id) FROM items i LEFT JOIN transcripts t ON t.run_id=i.run_id "
        f"AND t.item_id=i.item_id WHERE i.run_id=? AND {bound}{clause} "
        f"ORDER BY i.idx {order} LIMIT ?",
        (run_id, before if backwards else after, *args, limit),
    ).fetchall()
    if backwards:
        rows.reverse()
    return [
        ItemListRow(
            int(idx),
            str(item_id),
            str(kind),
            str(cat),
            str(lang),
            Item.model_validate_json(blob),
            status,
            tuple(sorted(flags.split(","))) if flags else (),
        )
        for idx, item_id, kind, cat, lang, blob, status, flags in rows
    ]
