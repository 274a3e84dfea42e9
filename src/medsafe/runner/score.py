"""The scoring phase: read transcripts from the store, write scores. Never generates.

Every judged response is also checked for injection attempts (``suspected_injection``) and
jury disagreements are flagged for review; judge backends are closed when the pass ends.

A judged scorer's items are scored concurrently and each item's scores are written as soon as
that item is done; every judge reply enters the store's request cache (committed before it is
used), so a killed pass resumes without asking any answered judge call again, and a rescore
of an unchanged judge asks nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medsafe.judges.base import JudgedScorer
from medsafe.judges.review import close_scorers, write_review_flags
from medsafe.runner.progress import Counters, live_progress
from medsafe.schema import CallRecord, Item, Score, Transcript
from medsafe.scoring import Scorer, stamp
from medsafe.store.queries import count_unscored, unscored_pairs
from medsafe.store.sqlite import Store
from medsafe.store.writer import StoreWriter


@dataclass(frozen=True)
class ScoringStats:
    """What one scoring pass did."""

    scored: int
    failed: int


@dataclass
class _Tally:
    scored: int = 0
    failed: int = 0


@dataclass(frozen=True)
class StoreReplyCache:
    """Judge replies in the store's request cache: read through ``reader``, kept by ``writer``."""

    reader: Store
    writer: StoreWriter

    def lookup(self, key: str) -> str | None:
        """The stored reply to exactly this request, or None."""
        hit = self.reader.cached(key)
        return hit.text if hit is not None else None

    async def keep(self, key: str, model: str, record: CallRecord) -> None:
        """Store a successful reply and wait until it is committed."""
        assert record.text is not None
        self.writer.put_cached(key, model, record.text, record.usage, record.finish_reason)
        await self.writer.committed()


async def score_run(
    run_id: str,
    store_path: Path,
    scorers: Sequence[Scorer],
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    announce: Callable[[str], None] | None = None,
) -> ScoringStats:
    """Apply each scorer to every transcript it has not scored yet (resumable).

    Judged scorers write each item as it completes; others (the guardian's batched embeddings)
    score ``batch_size`` items at a time. With ``announce`` (a rescore), a judged scorer whose
    calls are not all cached (another judge model or prompt) is announced with how many calls
    it will ask, before it asks any.
    """
    reader = Store(store_path)
    pending = {s.name: count_unscored(reader, run_id, s.name) for s in scorers}
    if not any(pending.values()):  # e.g. only inline scorers, which scored during generation
        reader.close()
        await close_scorers(scorers)
        return ScoringStats(scored=0, failed=0)
    writer = StoreWriter(store_path)
    cache = StoreReplyCache(reader, writer)
    tally = _Tally()
    try:
        for scorer in scorers:
            counters = Counters(total=pending[scorer.name])
            pairs = unscored_pairs(reader, run_id, scorer.name)
            if isinstance(scorer, JudgedScorer):
                for client in scorer.judges:
                    client.cache = cache
                if announce is not None and pending[scorer.name]:
                    calls = await uncached_calls(
                        scorer, unscored_pairs(reader, run_id, scorer.name)
                    )
                    if calls:
                        announce(
                            f"rescore: {scorer.name} judge model or prompt changed; "
                            f"{calls} judge call(s) will be asked"
                        )
            async with live_progress(f"score {scorer.name}", counters, enabled=show_progress):
                if isinstance(scorer, JudgedScorer):
                    await _score_each(scorer, pairs, writer, run_id, counters, tally)
                else:
                    await _score_batches(scorer, pairs, writer, run_id, counters, tally, batch_size)
            writer.flush()
    finally:
        await close_scorers(scorers)
        writer.close()
        reader.close()
    return ScoringStats(scored=tally.scored, failed=tally.failed)


async def uncached_calls(scorer: JudgedScorer, pairs: Iterable[tuple[Item, Transcript]]) -> int:
    """How many distinct judge calls scoring ``pairs`` would ask (first attempts not cached).

    A dry pass: the judges answer from the cache or ask nothing; nothing is stored.
    """
    planned: set[str] = set()
    for client in scorer.judges:
        client.planned = planned
    try:
        for item, transcript in pairs:
            if scorer.applies_to(item):
                await scorer.score(item, transcript)
    finally:
        for client in scorer.judges:
            client.planned = None
    return len(planned)


async def _score_each(
    scorer: JudgedScorer,
    pairs: Iterable[tuple[Item, Transcript]],
    writer: StoreWriter,
    run_id: str,
    counters: Counters,
    tally: _Tally,
) -> None:
    """Score up to ``scorer.concurrency`` items at once, each written as soon as it is done."""

    async def one(item: Item, transcript: Transcript) -> None:
        scores = stamp(scorer, await scorer.score(item, transcript))
        write_review_flags(writer, run_id, scorer, [(item, transcript)], [scores])
        _write(writer, run_id, [scores], tally, counters)

    limit = max(1, scorer.concurrency)
    running: set[asyncio.Task[None]] = set()
    try:
        for item, transcript in pairs:
            counters.done += 1
            if not scorer.applies_to(item):
                continue
            if len(running) >= limit:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            running.add(asyncio.create_task(one(item, transcript)))
        await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _score_batches(
    scorer: Scorer,
    pairs: Iterable[tuple[Item, Transcript]],
    writer: StoreWriter,
    run_id: str,
    counters: Counters,
    tally: _Tally,
    batch_size: int,
) -> None:
    """Score ``batch_size`` items at a time with the scorer's own ``score_many``."""
    batch: list[tuple[Item, Transcript]] = []
    for item, transcript in pairs:
        counters.done += 1
        if not scorer.applies_to(item):
            continue
        batch.append((item, transcript))
        if len(batch) >= batch_size:
            await _score_batch(scorer, batch, writer, run_id, counters, tally)
            batch.clear()
    if batch:
        await _score_batch(scorer, batch, writer, run_id, counters, tally)


async def _score_batch(
    scorer: Scorer,
    batch: list[tuple[Item, Transcript]],
    writer: StoreWriter,
    run_id: str,
    counters: Counters,
    tally: _Tally,
) -> None:
    scores = await scorer.score_many([i for i, _ in batch], [t for _, t in batch])
    results = [stamp(scorer, one) for one in scores]
    write_review_flags(writer, run_id, scorer, batch, results)
    _write(writer, run_id, results, tally, counters)


def _write(
    writer: StoreWriter,
    run_id: str,
    results: list[list[Score]],
    tally: _Tally,
    counters: Counters,
) -> None:
    for scores in results:
        writer.put_scores(run_id, scores)
        tally.scored += len(scores)
        bad = sum(1 for s in scores if s.status == "failed")
        tally.failed += bad
        counters.failed += bad
