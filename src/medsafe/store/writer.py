"""The store's single writer: a thread that owns the only write connection.

Producers (runner workers, scorers) enqueue operations without blocking; the writer drains the
queue into short transactions (whatever is queued, up to ``batch`` operations each). A crash
loses at most the last uncommitted batch, never corrupts the store, and nothing that was
committed is ever asked of a model again.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsafe.schema import Score, Transcript
from medsafe.store.sqlite import connect, now_iso, score_row


@dataclass(frozen=True, slots=True)
class _Sql:
    sql: str
    rows: Sequence[tuple[Any, ...]]


class _Barrier:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class StoreWriter:
    """Serialises every write to one store file through one thread."""

    def __init__(self, path: Path | str, *, batch: int = 500) -> None:
        self.path = Path(path)
        self._batch = batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="medsafe-store-writer", daemon=True)
        self._thread.start()

    # -- producer side --------------------------------------------------------------------
    def put_transcript(self, transcript: Transcript) -> None:
        """Store (or replace) a transcript; an ``ok`` answer also enters the request cache."""
        self._check()
        response = transcript.response if transcript.status == "ok" else None
        prompt_tokens = sum(c.usage.prompt_tokens for c in transcript.calls)
        completion_tokens = sum(c.usage.completion_tokens for c in transcript.calls)
        latency = sum(c.latency_s for c in transcript.calls)
        # A new answer makes any earlier verdict on this item stale.
        self._queue.put(
            _Sql(
                "DELETE FROM scores WHERE run_id=? AND item_id=?",
                [(transcript.run_id, transcript.item_id)],
            )
        )
        self._queue.put(
            _Sql(
                "INSERT OR REPLACE INTO transcripts VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        transcript.run_id,
                        transcript.item_id,
                        transcript.status,
                        transcript.error,
                        response,
                        latency,
                        prompt_tokens,
                        completion_tokens,
                        transcript.model_dump_json(exclude_defaults=True),
                    )
                ],
            )
        )
        fresh = [
            c for c in transcript.calls if c.status == "ok" and not c.cached and c.text is not None
        ]
        if fresh:
            stamp = now_iso()
            self._queue.put(
                _Sql(
                    "INSERT OR REPLACE INTO cache VALUES (?,?,?,?,?,?)",
                    [
                        (
                            c.request_hash,
                            transcript.model,
                            c.text,
                            c.usage.model_dump_json(),
                            c.finish_reason,
                            stamp,
                        )
                        for c in fresh
                    ],
                )
            )

    def put_scores(self, run_id: str, scores: Sequence[Score]) -> None:
        """Store (or replace) scores."""
        self._check()
        if scores:
            self._queue.put(
                _Sql(
                    "INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [score_row(run_id, s) for s in scores],
                )
            )

    def put_flags(self, run_id: str, item_id: str, flags: dict[str, Any]) -> None:
        """Store flags (e.g. ``suspected_injection``) with a JSON detail each."""
        self._check()
        if flags:
            self._queue.put(
                _Sql(
                    "INSERT OR REPLACE INTO flags VALUES (?,?,?,?)",
                    [
                        (run_id, item_id, name, json.dumps(detail, ensure_ascii=False))
                        for name, detail in flags.items()
                    ],
                )
            )

    def execute(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Queue an arbitrary write (used by maintenance commands)."""
        self._check()
        self._queue.put(_Sql(sql, rows))

    def flush(self) -> None:
        """Block until everything queued so far is committed."""
        barrier = _Barrier()
        self._queue.put(barrier)
        while not barrier.done.wait(0.5):
            if not self._thread.is_alive():
                break
        self._check()

    def close(self) -> None:
        """Commit what is queued and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._check()

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"store writer for {self.path} failed: {self._error}") from (
                self._error
            )

    # -- writer thread --------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            conn = connect(self.path)
        except BaseException as exc:  # pragma: no cover - surfaced through _check
            self._error = exc
            return
        try:
            self._drain(conn)
        except BaseException as exc:
            self._error = exc
        finally:
            conn.close()

    def _drain(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self._queue.get()
            ops = [first]
            while len(ops) < self._batch:
                try:
                    ops.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = False
            barriers: list[_Barrier] = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    if isinstance(op, _Sql):
                        conn.executemany(op.sql, op.rows)
                    elif isinstance(op, _Barrier):
                        barriers.append(op)
                    elif op is _STOP:
                        stop = True
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            for barrier in barriers:
                barrier.done.set()
            if stop:
                return
