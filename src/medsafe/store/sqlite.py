"""The results store: one SQLite file in WAL mode, one writer thread, many readers.

Every thread (and the event loop) reads through its own connection; all writes go through the
single :class:`StoreWriter` thread, which batches them into short transactions. This is what
keeps "database is locked" away under any concurrency.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsafe.errors import StoreError
from medsafe.schema import Item, RunSpec, Score, Transcript, Usage
from medsafe.store.migrations import is_read_only, migrate
from medsafe.store.pg import connect_pg, engine, is_store_url, redacted
from medsafe.store.schema_sql import NO_TURN

if TYPE_CHECKING:
    from medsafe.store.run_import import RunImport


def now_iso() -> str:
    """UTC timestamp, ISO 8601, seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (and create if needed) a store database with the settings medsafe relies on.

    A read-only file keeps its journal mode (switching to WAL would write to it). A
    ``postgresql://`` URL opens a PostgreSQL store (:mod:`medsafe.store.pg`).
    """
    if is_store_url(path):
        return connect_pg(path)
    conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=True)
    try:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if not is_read_only(exc):
                raise
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
    except BaseException:
        conn.close()
        raise
    return conn


def _can_read(path: Path) -> bool:
    """Whether this process may read ``path`` (SQLite reports only "unable to open")."""
    return os.access(path, os.R_OK)


def _open_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    if is_store_url(path):
        return StoreError(f"{redacted(path)}: not a medsafe store ({exc})")
    if is_read_only(exc):
        return StoreError(
            f"{path}: cannot read the store: permission denied ({exc}); a store in WAL mode "
            f"needs write access to its folder (for {path.name}-shm) even to be read"
        )
    if path.exists() and not _can_read(path):
        return StoreError(f"{path}: cannot read the store: permission denied ({exc})")
    return StoreError(f"{path}: not a medsafe store ({exc})")


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: its spec, provenance and bookkeeping."""

    spec: RunSpec
    created: str
    updated: str
    n_items: int
    provenance: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.spec.run_id


@dataclass(frozen=True)
class CachedAnswer:
    """A stored successful model answer, keyed by request hash."""

    text: str
    usage: Usage
    finish_reason: str | None


class Store:
    """Reads (and run creation) on a store file; use one instance per thread.

    Opening migrates an older store to the current schema (see :mod:`medsafe.store.migrations`).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._conn = connect(path)
        except sqlite3.DatabaseError as exc:
            raise _open_error(self.path, exc) from exc
        try:
            migrate(self._conn, redacted(path))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise _open_error(self.path, exc) from exc
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw read connection (for SQL aggregation in statistics and reports)."""
        return self._conn

    # -- runs -----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord | None:
        """The stored run, or None."""
        row = self._conn.execute(
            "SELECT spec_json, created, updated, n_items, provenance_json FROM runs WHERE run_id=?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        return RunRecord(
            spec=RunSpec.model_validate_json(row[0]),
            created=row[1],
            updated=row[2],
            n_items=int(row[3]),
            provenance=json.loads(row[4]),
        )

    def require_run(self, run_id: str) -> RunRecord:
        """The stored run, or a StoreError listing the runs this store has."""
        record = self.get_run(run_id)
        if record is None:
            known = [r for (r,) in self._conn.execute("SELECT run_id FROM runs ORDER BY created")]
            listing = ", ".join(known[-10:]) or "none"
            raise StoreError(f"{self.path}: no run {run_id!r} (runs: {listing})")
        return record

    def list_runs(self) -> list[RunRecord]:
        """Every run in the store, oldest first."""
        ids = [r for (r,) in self._conn.execute("SELECT run_id FROM runs ORDER BY created")]
        return [self.require_run(run_id) for run_id in ids]

    def begin_import(self, spec: RunSpec, provenance: dict[str, Any]) -> RunImport:
        """Start importing a new run (one open transaction; see :class:`RunImport`).

        Raises StoreError if the run id is taken.
        """
        from medsafe.store.run_import import RunImport

        return RunImport(self._conn, spec, provenance, now_iso(), where=str(self.path))

    def create_run(
        self, spec: RunSpec, items: Iterable[Item], provenance: dict[str, Any]
    ) -> RunSpec:
        """Store a new run and all its items in one transaction; nothing is kept on error.

        Returns the spec as stored, with ``suite_hash`` computed from the items. Raises
        SuiteError from the item iterator (bad input), on a duplicate item id or an empty suite,
        and StoreError if the run id is taken.
        """
        importing = self.begin_import(spec, provenance)
        try:
            for item in items:
                importing.add(item)
        except BaseException:
            importing.abort()
            raise
        return importing.commit()

    def update_spec(self, spec: RunSpec) -> None:
        """Replace a run's stored spec (e.g. after adding scorers on a rescore)."""
        self._conn.execute(
            "UPDATE runs SET spec_json=?, updated=? WHERE run_id=?",
            (spec.model_dump_json(), now_iso(), spec.run_id),
        )

    # -- items and transcripts --------------------------------------------------------------
    def iter_items(
        self, run_id: str, *, pending_only: bool = False, after: int = -1, chunk: int = 1000
    ) -> Iterator[Item]:
        """Items in suite order; with ``pending_only``, those without an ``ok`` transcript;
        only those whose 0-based index is greater than ``after``.

        Streams in chunks (keyset pagination) so memory stays flat however big the run.
        """
        sql = "SELECT i.idx, i.item_json FROM items i "
        if pending_only:
            sql += (
                "LEFT JOIN transcripts t ON t.run_id=i.run_id AND t.item_id=i.item_id "
                "AND t.status='ok' WHERE t.item_id IS NULL AND "
            )
        else:
            sql += "WHERE "
        sql += "i.run_id=? AND i.idx>? ORDER BY i.idx LIMIT ?"
        last = after
        while True:
            rows = self._conn.execute(sql, (run_id, last, chunk)).fetchall()
            if not rows:
                return
            for _idx, blob in rows:
                yield Item.model_validate_json(blob)
            last = rows[-1][0]

    def iter_transcripts(
        self, run_id: str, *, chunk: int = 1000
    ) -> Iterator[tuple[Item, Transcript]]:
        """(item, transcript) pairs in suite order, for items that have a transcript."""
        return iter_pairs(self._conn, run_id, chunk=chunk)

    def cached(self, request_hash: str) -> CachedAnswer | None:
        """A stored successful answer to exactly this request, if any."""
        row = self._conn.execute(
            "SELECT text, usage_json, finish_reason FROM cache WHERE request_hash=?",
            (request_hash,),
        ).fetchone()
        if row is None:
            return None
        return CachedAnswer(row[0], Usage.model_validate_json(row[1]), row[2])

    def cached_many(self, request_hashes: Sequence[str]) -> dict[str, CachedAnswer]:
        """Stored answers for any of ``request_hashes`` (one query per 500 hashes)."""
        found: dict[str, CachedAnswer] = {}
        for start in range(0, len(request_hashes), 500):
            chunk = request_hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                "SELECT request_hash, text, usage_json, finish_reason FROM cache "
                f"WHERE request_hash IN ({marks})",
                tuple(chunk),
            )
            for key, text, usage, finish in rows:
                found[key] = CachedAnswer(text, Usage.model_validate_json(usage), finish)
        return found

    def status_counts(self, run_id: str) -> dict[str, int]:
        """``{"n": items, "ok": ..., "failed": ..., "pending": ...}`` for a run."""
        n = self._conn.execute("SELECT COUNT(*) FROM items WHERE run_id=?", (run_id,)).fetchone()
        counts = dict(
            self._conn.execute(
                "SELECT status, COUNT(*) FROM transcripts WHERE run_id=? GROUP BY status",
                (run_id,),
            ).fetchall()
        )
        ok, failed = int(counts.get("ok", 0)), int(counts.get("failed", 0))
        total = int(n[0])
        return {"n": total, "ok": ok, "failed": failed, "pending": total - ok - failed}

    def delete_scores(self, run_id: str, scorer_names: Sequence[str]) -> None:
        """Drop a run's scores from the named scorers (before a rescore); the final human
        labels of review tasks (judge ``human``) stay: a rescore asks no person."""
        self._conn.executemany(
            "DELETE FROM scores WHERE run_id=? AND (scorer=? OR scorer LIKE ?) AND judge<>'human'",
            [(run_id, name, f"{name}.%") for name in scorer_names],
        )

    def delete_run(
        self,
        run_id: str,
        before_commit: Callable[[sqlite3.Connection, dict[str, int]], None] | None = None,
    ) -> dict[str, int]:
        """Delete run ``run_id`` and all it stored, in one transaction; returns the rows removed
        per table. Cached answers go too, except those another run's calls also used.
        ``before_commit`` runs inside the transaction with the counts (the audit entry)."""
        self.require_run(run_id)
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if is_read_only(exc):
                raise StoreError(
                    f"{self.path}: cannot delete run {run_id!r}: permission denied ({exc})"
                ) from exc
            raise
        try:
            mine = _request_hashes(conn, "=", run_id)
            others = _request_hashes(conn, "<>", run_id)
            purge = sorted(mine - others)
            removed = {"cache": 0}
            for start in range(0, len(purge), 500):
                chunk = purge[start : start + 500]
                marks = ",".join("?" * len(chunk))
                cur = conn.execute(f"DELETE FROM cache WHERE request_hash IN ({marks})", chunk)
                removed["cache"] += cur.rowcount
            for table in ("dialogue_turns", "flags", "scores", "transcripts", "items", "runs"):
                cur = conn.execute(f"DELETE FROM {table} WHERE run_id=?", (run_id,))
                removed[table] = cur.rowcount
            if before_commit is not None:
                before_commit(conn, removed)
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if is_read_only(exc):
                raise StoreError(
                    f"{self.path}: cannot delete run {run_id!r}: permission denied ({exc})"
                ) from exc
            raise
        return removed

    def vacuum(self) -> None:
        """Rewrite the file so that deleted rows leave no bytes behind; StoreError on failure."""
        try:
            if engine(self._conn) == "postgresql":
                self._conn.execute("VACUUM FULL")  # returns the space to the system
                return
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: compacting the store failed ({exc})") from exc

    def scores_for(self, run_id: str, item_id: str) -> list[Score]:
        """Every score of one item."""
        rows = self._conn.execute(
            "SELECT score_json FROM scores WHERE run_id=? AND item_id=? "
            "ORDER BY scorer, judge, turn",
            (run_id, item_id),
        ).fetchall()
        return [Score.model_validate_json(blob) for (blob,) in rows]


def request_hashes_of(conn: sqlite3.Connection, run_id: str) -> set[str]:
    """Request hashes of every model and judge call run ``run_id`` rests on."""
    return _request_hashes(conn, "=", run_id)


def _request_hashes(conn: sqlite3.Connection, op: str, run_id: str) -> set[str]:
    """Request hashes of the model calls of run ``run_id`` (``op`` '='), or of every other run
    (``op`` '<>'): transcripts' ``calls``, dialogue exchanges' target and attacker calls, and
    the judge calls a score rests on (its ``extra.request_hashes``)."""
    if engine(conn) == "postgresql":
        rows = conn.execute(
            "SELECT c.value ->> 'request_hash' FROM transcripts t, jsonb_array_elements("
            f"t.transcript_json::jsonb -> 'calls') c WHERE t.run_id {op} ? "
            "UNION SELECT d.record_json::jsonb #>> '{target,request_hash}' FROM dialogue_turns d "
            f"WHERE d.run_id {op} ? "
            "UNION SELECT d.record_json::jsonb #>> '{attacker,request_hash}' FROM dialogue_turns d "
            f"WHERE d.run_id {op} ? "
            "UNION SELECT h.value FROM scores s, jsonb_array_elements_text("
            "s.score_json::jsonb #> '{extra,request_hashes}') h "
            f"WHERE s.run_id {op} ? AND strpos(s.score_json, 'request_hashes') > 0",
            (run_id, run_id, run_id, run_id),
        ).fetchall()
        return {str(h) for (h,) in rows if h is not None}
    rows = conn.execute(
        "SELECT json_extract(c.value, '$.request_hash') FROM transcripts t, "
        f"json_each(t.transcript_json, '$.calls') c WHERE t.run_id {op} ? "
        "UNION SELECT json_extract(d.record_json, '$.target.request_hash') FROM dialogue_turns d "
        f"WHERE d.run_id {op} ? "
        "UNION SELECT json_extract(d.record_json, '$.attacker.request_hash') FROM dialogue_turns d "
        f"WHERE d.run_id {op} ? "
        "UNION SELECT h.value FROM scores s, json_each(s.score_json, '$.extra.request_hashes') h "
        f"WHERE s.run_id {op} ? AND instr(s.score_json, 'request_hashes')",
        (run_id, run_id, run_id, run_id),
    ).fetchall()
    return {str(h) for (h,) in rows if h is not None}


def iter_pairs(
    conn: sqlite3.Connection, run_id: str, *, unscored_by: str | None = None, chunk: int = 1000
) -> Iterator[tuple[Item, Transcript]]:
    """(item, transcript) pairs in suite order, ``chunk`` rows per query (keyset paging);
    with ``unscored_by``, only those that scorer has not scored yet."""
    unscored = (
        " AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.run_id=i.run_id "
        "AND s.item_id=i.item_id AND s.scorer=?)"
        if unscored_by is not None
        else ""
    )
    sql = (
        "SELECT i.idx, i.item_json, t.transcript_json FROM items i JOIN transcripts t "
        f"ON t.run_id=i.run_id AND t.item_id=i.item_id WHERE i.run_id=? AND i.idx>?{unscored} "
        "ORDER BY i.idx LIMIT ?"
    )
    extra = () if unscored_by is None else (unscored_by,)
    last = -1
    while True:
        rows = conn.execute(sql, (run_id, last, *extra, chunk)).fetchall()
        if not rows:
            return
        for _idx, item_blob, transcript_blob in rows:
            yield (
                Item.model_validate_json(item_blob),
                Transcript.model_validate_json(transcript_blob),
            )
        last = rows[-1][0]


def score_row(run_id: str, score: Score) -> tuple[Any, ...]:
    """The ``scores`` table row of a score."""
    return (
        run_id,
        score.item_id,
        score.scorer,
        score.judge,
        NO_TURN if score.turn is None else score.turn,
        score.value,
        score.label,
        score.status,
        score.error,
        score.model_dump_json(exclude_defaults=True),
    )
