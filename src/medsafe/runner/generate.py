"""The generation phase: stream pending items to a backend, stream transcripts to the store."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path

from medsafe.models.base import Backend, ChatRequest
from medsafe.runner.progress import Counters, live_progress
from medsafe.runner.retry import RetryPolicy, call_with_retries
from medsafe.schema import CallRecord, Item, Message, RunSpec, Transcript, request_hash
from medsafe.store.sqlite import Store
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
) -> GenerationStats:
    """Answer every item of ``spec.run_id`` that has no ``ok`` transcript yet.

    Items stream from the store in suite order; at most ``concurrency`` requests are in flight
    (capped by the backend's own limit); an answer already in the request cache is reused
    without asking the model. Each finished item is queued to the single store writer.
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
    queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=concurrency * 4)

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            sent = request_messages(item, spec)
            key = request_hash(spec.model, sent, spec.params)
            hit = reader.cached(key)
            if hit is not None:
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
            writer.put_transcript(_transcript(spec, item, sent, call))
            counters.done += 1
            counters.tokens += call.usage.prompt_tokens + call.usage.completion_tokens
            if call.status == "failed":
                counters.failed += 1

    try:
        async with live_progress("generate", counters, enabled=show_progress):
            tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
            try:
                for item in reader.iter_items(spec.run_id, pending_only=True):
                    await queue.put(item)
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
