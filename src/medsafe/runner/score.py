"""The scoring phase: read transcripts from the store, write scores. Never generates.

Every judged response is also checked for injection attempts (``suspected_injection``) and
jury disagreements are flagged for review; judge backends are closed when the pass ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from medsafe.judges.review import close_scorers, write_review_flags
from medsafe.runner.progress import Counters, live_progress
from medsafe.schema import Item, Score, Transcript
from medsafe.scorers.base import Scorer
from medsafe.store.sqlite import Store
from medsafe.store.writer import StoreWriter


@runtime_checkable
class BatchScorer(Protocol):
    """A scorer that is faster on many transcripts at once (e.g. embedding-based)."""

    async def score_many(
        self, items: Sequence[Item], transcripts: Sequence[Transcript]
    ) -> list[list[Score]]:
        """Scores for each (item, transcript) pair, in order."""
        ...


@dataclass(frozen=True)
class ScoringStats:
    """What one scoring pass did."""

    scored: int
    failed: int


def pending_pairs(
    store: Store, run_id: str, scorer_name: str, *, chunk: int = 500
) -> Iterator[tuple[Item, Transcript]]:
    """Transcripts of ``run_id`` that ``scorer_name`` has not scored yet, in suite order."""
    sql = (
        "SELECT i.idx, i.item_json, t.transcript_json FROM items i JOIN transcripts t "
        "ON t.run_id=i.run_id AND t.item_id=i.item_id "
        "WHERE i.run_id=? AND i.idx>? AND NOT EXISTS (SELECT 1 FROM scores s "
        "WHERE s.run_id=i.run_id AND s.item_id=i.item_id AND s.scorer=?) "
        "ORDER BY i.idx LIMIT ?"
    )
    last = -1
    while True:
        rows = store.connection.execute(sql, (run_id, last, scorer_name, chunk)).fetchall()
        if not rows:
            return
        for _idx, item_blob, transcript_blob in rows:
            yield (
                Item.model_validate_json(item_blob),
                Transcript.model_validate_json(transcript_blob),
            )
        last = rows[-1][0]


def count_pending(store: Store, run_id: str, scorer_name: str) -> int:
    """How many transcripts ``scorer_name`` still has to score."""
    row = store.connection.execute(
        "SELECT COUNT(*) FROM transcripts t WHERE t.run_id=? AND NOT EXISTS (SELECT 1 FROM "
        "scores s WHERE s.run_id=t.run_id AND s.item_id=t.item_id AND s.scorer=?)",
        (run_id, scorer_name),
    ).fetchone()
    return int(row[0])


async def score_run(
    run_id: str,
    store_path: Path,
    scorers: Sequence[Scorer],
    *,
    concurrency: int = 8,
    batch_size: int = 64,
    show_progress: bool = False,
) -> ScoringStats:
    """Apply each scorer to every transcript it has not scored yet (resumable)."""
    reader = Store(store_path)
    pending = {s.name: count_pending(reader, run_id, s.name) for s in scorers}
    if not any(pending.values()):  # e.g. only inline scorers, which scored during generation
        reader.close()
        await close_scorers(scorers)
        return ScoringStats(scored=0, failed=0)
    writer = StoreWriter(store_path)
    scored = failed = 0
    try:
        for scorer in scorers:
            counters = Counters(total=pending[scorer.name])
            async with live_progress(f"score {scorer.name}", counters, enabled=show_progress):
                batch: list[tuple[Item, Transcript]] = []
                for item, transcript in pending_pairs(reader, run_id, scorer.name):
                    counters.done += 1
                    if not scorer.applies_to(item):
                        continue
                    batch.append((item, transcript))
                    if len(batch) >= batch_size:
                        results = await _score_batch(scorer, batch, concurrency)
                        write_review_flags(writer, run_id, scorer, batch, results)
                        batch.clear()
                        scored, failed = _write(writer, run_id, results, scored, failed, counters)
                if batch:
                    results = await _score_batch(scorer, batch, concurrency)
                    write_review_flags(writer, run_id, scorer, batch, results)
                    scored, failed = _write(writer, run_id, results, scored, failed, counters)
            writer.flush()
    finally:
        await close_scorers(scorers)
        writer.close()
        reader.close()
    return ScoringStats(scored=scored, failed=failed)


def _write(
    writer: StoreWriter,
    run_id: str,
    results: list[list[Score]],
    scored: int,
    failed: int,
    counters: Counters,
) -> tuple[int, int]:
    for scores in results:
        writer.put_scores(run_id, scores)
        scored += len(scores)
        bad = sum(1 for s in scores if s.status == "failed")
        failed += bad
        counters.failed += bad
    return scored, failed


async def _score_batch(
    scorer: Scorer, batch: list[tuple[Item, Transcript]], concurrency: int
) -> list[list[Score]]:
    if isinstance(scorer, BatchScorer):
        return await scorer.score_many([i for i, _ in batch], [t for _, t in batch])
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: Item, transcript: Transcript) -> list[Score]:
        async with semaphore:
            return await scorer.score(item, transcript)

    return list(await asyncio.gather(*(one(i, t) for i, t in batch)))
