"""The store's single writer: a thread that owns the only write connection.

Producers (runner workers, scorers) enqueue operations without blocking; the writer drains the
queue into transactions of whatever arrives within ``linger_s`` of the first operation (up to
``batch`` operations each), so that a busy run commits a few times a second rather than once
per answer. A crash loses at most the last uncommitted batch (``linger_s`` of work), never
corrupts the store, and nothing that was committed is ever asked of a model again (the answer
journal, :mod:`medsafe.store.journal`, keeps that last batch too).

While a new run's suite is still being imported, :meth:`StoreWriter.hold` keeps operations back
(the run does not exist yet); :meth:`StoreWriter.release` queues them once it does, and
:meth:`StoreWriter.discard` drops them if the import fails (keeping only request-cache rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsafe.schema import Score, Transcript, Usage
from medsafe.store.batching import ClearScores, Op, Sql, Upsert, execute_batch
from medsafe.store.sqlite import connect, now_iso, score_row


class _Barrier:
    def __init__(self) -> None:
        self.done = threading.Event()


class _LoopEvent(threading.Event):
    """A barrier's event that also resolves an asyncio future, in its loop, when set."""

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        super().__init__()
        self._loop = loop
        self._future = future

    def set(self) -> None:
        super().set()
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(_resolve, self._future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_STOP = object()
TABLES = frozenset({"transcripts", "cache", "scores", "flags", "dialogue_turns"})
"""Tables the writer upserts into (``upsert`` refuses any other name)."""


def _is_cache_write(op: Op) -> bool:
    return isinstance(op, Upsert) and op.table == "cache"


def _cache_rows(transcript: Transcript) -> list[tuple[Any, ...]]:
    """The ``cache`` rows of a transcript's fresh (not cached) successful calls."""
    stamp = now_iso()
    return [
        (
            c.request_hash,
            transcript.model,
            c.text,
            c.usage.model_dump_json(),
            c.finish_reason,
            stamp,
        )
        for c in transcript.calls
        if c.status == "ok" and not c.cached and c.text is not None
    ]


class StoreWriter:
    """Serialises every write to one store file through one thread."""

    def __init__(self, path: Path | str, *, batch: int = 2000, linger_s: float = 0.1) -> None:
        self.path = Path(path)
        self._batch = batch
        self._linger_s = linger_s
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._held: list[Op] | None = None
        self._wake = threading.Event()
        self._backlog = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="medsafe-store-writer", daemon=True)
        self._thread.start()

    # -- producer side --------------------------------------------------------------------
    def put_transcript(self, transcript: Transcript, blob: str | None = None) -> None:
        """Store (or replace) a transcript; an ``ok`` answer also enters the request cache.

        ``blob`` is the transcript's ``model_dump_json(exclude_defaults=True)`` if the caller
        has it already (the journal does)."""
        self._check()
        response = transcript.response if transcript.status == "ok" else None
        prompt_tokens = sum(c.usage.prompt_tokens for c in transcript.calls)
        completion_tokens = sum(c.usage.completion_tokens for c in transcript.calls)
        latency = sum(c.latency_s for c in transcript.calls)
        # A new answer makes any earlier verdict on this item stale.
        self._put(ClearScores([(transcript.run_id, transcript.item_id)]))
        self._put(
            Upsert(
                "transcripts",
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
                        blob or transcript.model_dump_json(exclude_defaults=True),
                    )
                ],
            )
        )
        rows = _cache_rows(transcript)
        if rows:
            self._put(Upsert("cache", rows))

    def put_cache(self, transcripts: Sequence[Transcript]) -> None:
        """Store only the request-cache rows of ``transcripts``' fresh answers."""
        self._check()
        rows = [row for transcript in transcripts for row in _cache_rows(transcript)]
        if rows:
            self._put(Upsert("cache", rows))

    def put_cached(
        self,
        request_hash: str,
        model: str,
        text: str,
        usage: Usage,
        finish_reason: str | None,
    ) -> None:
        """Store one successful model reply in the request cache (a judge's, for instance)."""
        self._check()
        row = (request_hash, model, text, usage.model_dump_json(), finish_reason, now_iso())
        self._put(Upsert("cache", [row]))

    def put_scores(self, run_id: str, scores: Sequence[Score]) -> None:
        """Store (or replace) scores."""
        self._check()
        if scores:
            self._put(Upsert("scores", [score_row(run_id, s) for s in scores]))

    def put_flags(self, run_id: str, item_id: str, flags: dict[str, Any]) -> None:
        """Store flags (e.g. ``suspected_injection``) with a JSON detail each."""
        self._check()
        if flags:
            self._put(
                Upsert(
                    "flags",
                    [
                        (run_id, item_id, name, json.dumps(detail, ensure_ascii=False))
                        for name, detail in flags.items()
                    ],
                )
            )

    def upsert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Store (or replace) whole rows of one of the writer's :data:`TABLES`."""
        self._check()
        if table not in TABLES:
            raise ValueError(f"the store writer does not write table {table!r}")
        if rows:
            self._put(Upsert(table, rows))

    def execute(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Queue an arbitrary write (used by maintenance commands); it runs in queue order."""
        self._check()
        self._put(Sql(sql, rows))

    def _put(self, op: Op) -> None:
        if self._held is not None:
            self._held.append(op)
        else:
            self._queue.put(op)

    def hold(self) -> None:
        """Keep every following write back (in memory) until :meth:`release` or :meth:`discard`."""
        if self._held is None:
            self._held = []

    @property
    def holding(self) -> bool:
        """Whether writes are being held back."""
        return self._held is not None

    def release(self) -> None:
        """Queue the writes held back, in order, and stop holding."""
        held, self._held = self._held or [], None
        for op in held:
            self._queue.put(op)

    def discard(self) -> int:
        """Drop the writes held back except request-cache rows (answers stay reusable).

        Returns how many operations were dropped.
        """
        held, self._held = self._held or [], None
        kept = [op for op in held if _is_cache_write(op)]
        for op in kept:
            self._queue.put(op)
        return len(held) - len(kept)

    def flush(self) -> None:
        """Block until everything queued so far is committed."""
        barrier = _Barrier()
        self._queue.put(barrier)
        self._wake.set()
        while not barrier.done.wait(0.5):
            if not self._thread.is_alive():
                break
        self._check()

    async def committed(self) -> None:
        """Wait, without blocking the event loop, until everything queued so far is committed.

        The writer commits at once rather than after its linger: someone is waiting.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        barrier = _Barrier()
        barrier.done = _LoopEvent(loop, future)
        self._queue.put(barrier)
        self._wake.set()
        while not future.done() and self._thread.is_alive():
            await asyncio.wait({future}, timeout=0.5)
        self._check()

    def close(self) -> None:
        """Commit what is queued and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
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

    def _gather(self) -> list[object]:
        """The next batch: the first operation, then everything queued ``linger_s`` later.

        The writer sleeps through the linger (one wake-up per batch, not one per operation);
        :meth:`flush` and :meth:`close` cut it short, since someone is waiting on them, and
        there is none while a backlog of full batches remains.
        """
        ops = [self._queue.get()]
        if isinstance(ops[0], Sql | Upsert | ClearScores) and not self._backlog:
            self._wake.wait(self._linger_s)
        self._wake.clear()
        while len(ops) < self._batch:
            try:
                ops.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._backlog = len(ops) >= self._batch  # more is waiting: no linger next time
        return ops

    def _drain(self, conn: sqlite3.Connection) -> None:
        while True:
            ops = self._gather()
            stop = False
            barriers: list[_Barrier] = []
            writes: list[Op] = []
            for op in ops:
                if isinstance(op, _Barrier):
                    barriers.append(op)
                elif isinstance(op, Sql | Upsert | ClearScores):
                    writes.append(op)
                elif op is _STOP:
                    stop = True
            conn.execute("BEGIN IMMEDIATE")
            try:
                execute_batch(conn, writes)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            for barrier in barriers:
                barrier.done.set()
            if stop:
                return
