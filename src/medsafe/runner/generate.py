"""The generation phase: stream pending items to a backend, stream transcripts to the store."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from medsafe.models.base import Backend, ChatRequest
from medsafe.runner.dialogue import dialogue_player
from medsafe.runner.progress import Counters, live_progress
from medsafe.runner.retry import RetryPolicy, call_with_retries
from medsafe.schema import CallRecord, Item, Message, RunSpec, Transcript, request_hash
from medsafe.scorers.base import Scorer
from medsafe.store.sqlite import CachedAnswer, Store
from medsafe.store.writer import StoreWriter


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


def _jobs(reader: Store, spec: RunSpec, chunk: int = 500) -> Iterator[_Job]:
    """Pending items with their request, its cache key, and any cached answer (batched)."""
    batch: list[tuple[Item, tuple[Message, ...], str]] = []

    def flush() -> Iterator[_Job]:
        hits = reader.cached_many([key for _, _, key in batch])
        for item, sent, key in batch:
            yield item, sent, key, hits.get(key)
        batch.clear()

    for item in reader.iter_items(spec.run_id, pending_only=True):
        if item.kind == "dialogue":  # played turn by turn (runner/dialogue.py), never cached whole
            yield item, (), "", None
            continue
        sent = request_messages(item, spec)
        batch.append((item, sent, request_hash(spec.model, sent, spec.params)))
        if len(batch) >= chunk:
            yield from flush()
    yield from flush()


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
) -> GenerationStats:
    """Answer every item of ``spec.run_id`` that has no ``ok`` transcript yet.

    Items stream from the store in suite order; at most ``concurrency`` requests are in flight
    (capped by the backend's own limit); an answer already in the request cache is reused
    without asking the model. Each finished item is queued to the single store writer, with the
    scores of any ``inline_scorers`` (cheap, model-free ones such as ``mcq``). Dialogue items
    are played turn by turn by :class:`~medsafe.runner.dialogue.DialoguePlayer`, with the
    ``attacker`` model writing the user turns when one is given (else the scripted turns).
    """
    reader = Store(store_path)
    writer = StoreWriter(store_path)
    counts = reader.status_counts(spec.run_id)
    counters = Counters(total=counts["n"] - counts["ok"])
    concurrency = max(1, spec.concurrency)
    if backend.max_concurrency is not None:
        concurrency = min(concurrency, backend.max_concurrency)
    policy = RetryPolicy(retries=spec.retries)
    rng = random.Random(seed)
    queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=concurrency * 4)
    player = dialogue_player(spec, backend, reader, writer, policy, rng, attacker)

    async def worker() -> None:
        while (job := await queue.get()) is not None:
            item, sent, key, hit = job
            if item.kind == "dialogue":
                transcript = await player.play(item)
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
            if item.kind != "dialogue":
                transcript = _transcript(spec, item, sent, call)
            writer.put_transcript(transcript)
            for scorer in inline_scorers:
                if scorer.applies_to(item):
                    writer.put_scores(spec.run_id, await scorer.score(item, transcript))
            counters.done += 1
            counters.tokens += sum(
                c.usage.prompt_tokens + c.usage.completion_tokens for c in transcript.calls
            )
            if transcript.status == "failed":
                counters.failed += 1

    try:
        async with live_progress("generate", counters, enabled=show_progress):
            tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
            try:
                for job in _jobs(reader, spec):
                    await queue.put(job)
                for _ in tasks:
                    await queue.put(None)
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
        writer.flush()
    finally:
        writer.close()
        reader.close()
    return GenerationStats(
        attempted=counters.done,
        ok=counters.done - counters.failed,
        failed=counters.failed,
        cached=counters.cached,
        tokens=counters.tokens,
    )
