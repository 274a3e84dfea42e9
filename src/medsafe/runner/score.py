"""The scoring phase: read transcripts from the store, write scores. Never generates.

Every judged response is also checked for injection attempts (``suspected_injection``) and
jury disagreements are flagged for review; judge backends are closed when the pass ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medsafe.judges.review import close_scorers, write_review_flags
from medsafe.runner.progress import Counters, live_progress
from medsafe.schema import Item, Score, Transcript
from medsafe.scoring import Scorer, stamp
from medsafe.store.queries import count_unscored, unscored_pairs
from medsafe.store.sqlite import Store
from medsafe.store.writer import StoreWriter


@dataclass(frozen=True)
class ScoringStats:
    """What one scoring pass did."""

    scored: int
    failed: int


async def score_run(
    run_id: str,
    store_path: Path,
    scorers: Sequence[Scorer],
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> ScoringStats:
    """Apply each scorer to every transcript it has not scored yet (resumable)."""
    reader = Store(store_path)
    pending = {s.name: count_unscored(reader, run_id, s.name) for s in scorers}
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
                for item, transcript in unscored_pairs(reader, run_id, scorer.name):
                    counters.done += 1
                    if not scorer.applies_to(item):
                        continue
                    batch.append((item, transcript))
                    if len(batch) >= batch_size:
                        results = await _score_batch(scorer, batch)
                        write_review_flags(writer, run_id, scorer, batch, results)
                        batch.clear()
                        scored, failed = _write(writer, run_id, results, scored, failed, counters)
                if batch:
                    results = await _score_batch(scorer, batch)
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


async def _score_batch(scorer: Scorer, batch: list[tuple[Item, Transcript]]) -> list[list[Score]]:
    scores = await scorer.score_many([i for i, _ in batch], [t for _, t in batch])
    return [stamp(scorer, one) for one in scores]
