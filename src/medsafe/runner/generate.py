"""The generation phase: stream pending items to a backend, stream transcripts to the store."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medsafe.models.base import Backend, ChatRequest
from medsafe.models.retry import RetryPolicy, call_with_retries
from medsafe.runner.progress import Counters, live_progress
from medsafe.schema import CallRecord, Item, Message, RunSpec, Transcript, request_hash
from medsafe.scoring import Scorer, stamp
from medsafe.store.journal import Journal, fold, journal_path
from medsafe.store.run_import import RunImport
from medsafe.store.sqlite import CachedAnswer, Store
from medsafe.store.writer import StoreWriter

if TYPE_CHECKING:
    from medsafe.runner.dialogue import DialoguePlayer


@dataclass(frozen=True)
class GenerationStats:
    """What one generation pass did."""

    attempted: int
    ok: int
    failed: int
    cached: int
    tokens: int


def request_messages(item: Item, spec: RunSpec) -> tuple[Message, ...]:
    """The messages sent for an item: the run's system prompt (if any) then the item's own."""
    system = spec.params.system_prompt
    if system and not any(m.role == "system" for m in item.messages):
        return (Message(role="system", content=system), *item.messages)
    return item.messages


_Job = tuple[Item, tuple[Message, ...], str, CachedAnswer | None]


def _job_batch(reader: Store, spec: RunSpec, items: Sequence[Item]) -> list[_Job]:
    """Jobs for ``items``: each one's request, its cache key and any cached answer."""
    keyed: list[tuple[Item, tuple[Message, ...], str]] = []
    for item in items:
        if item.kind == "dialogue":  # played turn by turn (runner/dialogue.py), never cached whole
            keyed.append((item, (), ""))
            continue
        sent = request_messages(item, spec)
        key = request_hash(spec.model, sent, spec.params, item.attachments)
        keyed.append((item, sent, key))
    hits = reader.cached_many([key for _, _, key in keyed if key])
    return [(item, sent, key, hits.get(key) if key else None) for item, sent, key in keyed]


def _jobs(reader: Store, spec: RunSpec, *, after: int = -1, chunk: int = 64) -> Iterator[_Job]:
    """Pending items (index > ``after``) as jobs, in suite order, in small batches.

    Small batches keep the event loop responsive: a batch is parsed and looked up in the
    cache in one go, while answers to requests in flight wait.
    """
    batch: list[Item] = []
    for item in reader.iter_items(spec.run_id, pending_only=True, after=after):
        batch.append(item)
        if len(batch) >= chunk:
            yield from _job_batch(reader, spec, batch)
            batch.clear()
    yield from _job_batch(reader, spec, batch)


@dataclass
class SuiteImport:
    """A new run's suite, read while the run's first items are already being asked.

    The importer holds the store's write transaction until the whole suite has been read and
    checked; answers that arrive before that are held back by the store writer and stored only
    once the run exists. If the suite turns out to be bad, the run is rolled back and nothing
    of it is stored (answers received stay in the request cache, so the corrected suite does
    not pay for them again).
    """

    items: Iterator[Item]
    importing: RunImport
    slice_s: float = 0.00025
    """Longest stretch of reading before the event loop gets a turn (answers in flight are
    handled there: every await of a request costs it one turn, so keep this short)."""


async def _import_and_dispatch(
    suite: SuiteImport,
    reader: Store,
    spec: RunSpec,
    queue: asyncio.Queue[_Job | None],
    window: int,
) -> int:
    """Read the whole suite into the open import; the first ``window`` items also go straight
    to the workers. Returns the index of the last item dispatched (-1 for none)."""
    importing = suite.importing
    early: list[Item] = []
    turn = time.perf_counter()
    for item in suite.items:
        idx = importing.add(item)
        if idx < window:
            early.append(item)
        if time.perf_counter() - turn >= suite.slice_s:
            if early:
                for job in _job_batch(reader, spec, early):
                    queue.put_nowait(job)  # the queue holds ``window`` jobs: never blocks
                early.clear()
            await asyncio.sleep(0)
            turn = time.perf_counter()
    for job in _job_batch(reader, spec, early):
        queue.put_nowait(job)
    return min(importing.count, window) - 1


async def _import_suite(
    suite: SuiteImport,
    reader: Store,
    spec: RunSpec,
    queue: asyncio.Queue[_Job | None],
    window: int,
    writer: StoreWriter,
) -> int:
    """Import ``suite`` while its first items are asked; commit it, or roll it all back."""
    writer.hold()
    try:
        dispatched = await _import_and_dispatch(suite, reader, spec, queue, window)
        suite.importing.commit()
    except BaseException:
        suite.importing.abort()  # the writer keeps holding: generate() discards what it holds
        raise
    writer.release()
    return dispatched


def _transcript(
    spec: RunSpec, item: Item, sent: tuple[Message, ...], call: CallRecord
) -> Transcript:
    messages = sent
    if call.status == "ok" and call.text is not None:
        messages = (*sent, Message(role="assistant", content=call.text))
    return Transcript(
        run_id=spec.run_id,
        item_id=item.id,
        model=spec.model,
        params=spec.params,
        messages=messages,
        calls=(call,),
        status=call.status,
        error=call.error,
    )


async def generate(
    spec: RunSpec,
    store_path: Path,
    backend: Backend,
    *,
    show_progress: bool = False,
    seed: int = 0,
    inline_scorers: Sequence[Scorer] = (),
    attacker: Backend | None = None,
    suite: SuiteImport | None = None,
) -> GenerationStats:
    """Answer every item of ``spec.run_id`` that has no ``ok`` transcript yet.

    Items stream from the store in suite order; at most ``concurrency`` requests are in flight
    (capped by the backend's own limit); an answer already in the request cache is reused
    without asking the model. Each finished item is queued to the single store writer, with the
    scores of any ``inline_scorers`` (cheap, model-free ones such as ``mcq``). Dialogue items
    are played turn by turn by :class:`~medsafe.runner.dialogue.DialoguePlayer`, with the
    ``attacker`` model writing the user turns when one is given (else the scripted turns).

    Each fresh answer is also appended to the run's journal (:mod:`medsafe.store.journal`) as
    it arrives; a journal left by a killed process is folded into the store first.

    For a new run, ``suite`` is the import in progress: generation starts on its first items
    while the rest is read, and the run is committed (or, on bad input, rolled back with
    nothing of it stored) before any later item is asked.
    """
    reader = Store(store_path)
    writer = StoreWriter(store_path)
    journal_file = journal_path(store_path, spec.run_id)
    try:
        if journal_file.exists():  # answers a killed process received but had not committed
            fold(journal_file, reader.connection, writer, spec.run_id, run_exists=suite is None)
        journal = Journal(journal_file)
    except BaseException:
        writer.close()
        reader.close()
        raise
    counts = reader.status_counts(spec.run_id)
    counters = Counters(total=counts["n"] - counts["ok"])
    concurrency = max(1, spec.concurrency)
    if backend.max_concurrency is not None:
        concurrency = min(concurrency, backend.max_concurrency)
    policy = RetryPolicy(retries=spec.retries)
    rng = random.Random(seed)
    window = concurrency * 8
    queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=window)
    players: list[DialoguePlayer] = []
    stopped: list[BaseException] = []

    def stop_dispatch(task: asyncio.Task[None]) -> None:
        """A worker that stopped on an error (no executor left to ask, a store failure) stops
        the dispatching too: the queue is emptied so that a put waiting on it returns."""
        if not task.cancelled() and (error := task.exception()) is not None:
            stopped.append(error)
            while not queue.empty():
                queue.get_nowait()  # still pending in the store: a resume asks them

    def player() -> DialoguePlayer:
        """The run's dialogue player, made (and its module imported) on the first dialogue."""
        if not players:
            from medsafe.runner.dialogue import dialogue_player

            players.append(dialogue_player(spec, backend, reader, writer, policy, rng, attacker))
        return players[0]

    async def worker() -> None:
        while (job := await queue.get()) is not None:
            item, sent, key, hit = job
            if item.kind == "dialogue":
                transcript = await player().play(item)
                counters.cached += sum(c.cached for c in transcript.calls)
            elif hit is not None:
                call = CallRecord(
                    request_hash=key,
                    status="ok",
                    text=hit.text,
                    usage=hit.usage,
                    finish_reason=hit.finish_reason,
                    cached=True,
                    latency_s=0.0,
                )
                counters.cached += 1
            else:
                request = ChatRequest(messages=sent, params=spec.params, item=item)
                call = await call_with_retries(
                    backend, request, key, timeout_s=spec.timeout_s, policy=policy, rng=rng
                )
            blob = None
            if item.kind != "dialogue":
                transcript = _transcript(spec, item, sent, call)
                if hit is None and transcript.status == "ok":
                    blob = journal.append(transcript)  # survives a kill before the writer commits
            writer.put_transcript(transcript, blob)
            for scorer in inline_scorers:
                if scorer.applies_to(item):
                    writer.put_scores(
                        spec.run_id, stamp(scorer, await scorer.score(item, transcript))
                    )
            counters.done += 1
            counters.tokens += sum(
                c.usage.prompt_tokens + c.usage.completion_tokens for c in transcript.calls
            )
            if transcript.status == "failed":
                counters.failed += 1

    try:
        async with live_progress("generate", counters, enabled=show_progress):
            tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
            for task in tasks:
                task.add_done_callback(stop_dispatch)
            try:
                dispatched = -1
                if suite is not None:
                    dispatched = await _import_suite(suite, reader, spec, queue, window, writer)
                    counters.total = suite.importing.count
                for job in _jobs(reader, spec, after=dispatched):
                    if stopped:
                        break
                    await queue.put(job)
                if not stopped:
                    for _ in tasks:
                        await queue.put(None)
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                if writer.holding:  # the import failed: nothing of the run may be stored
                    await asyncio.gather(*tasks, return_exceptions=True)
                    writer.discard()
        writer.flush()
        journal.delete()  # everything it holds is committed
    finally:
        journal.close()
        writer.close()
        reader.close()
    return GenerationStats(
        attempted=counters.done,
        ok=counters.done - counters.failed,
        failed=counters.failed,
        cached=counters.cached,
        tokens=counters.tokens,
    )
