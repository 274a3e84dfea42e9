"""Flags for human review raised while scoring: ``suspected_injection`` and judge disagreement.

``suspected_injection`` is raised for every judged response, whichever judge runs (the guardian
included): any scorer that is not an inline, model-free one (``mcq``) counts as a judge unless it
says otherwise with a ``judged`` attribute. ``judge_disagreement:SCORER`` is raised when a jury's
judges differ by more than the scorer's threshold on some unit. A scorer may raise its own flags
by listing their names in a score's ``extra["review_flags"]`` (the guardian's
``language_mismatch`` and ``uncertain:guardian``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medsafe.judges.injection import FLAG, flag_detail, transcript_injections
from medsafe.judges.jury import JURY
from medsafe.schema import Item, Score, Transcript
from medsafe.scoring import Scorer
from medsafe.store.writer import StoreWriter

DISAGREEMENT = "judge_disagreement"


def is_judged(scorer: Scorer) -> bool:
    """Whether ``scorer`` judges free text (so its inputs are checked for injection)."""
    return scorer.judged


def review_flags(
    scorer: Scorer, item: Item, transcript: Transcript, scores: Sequence[Score]
) -> dict[str, Any]:
    """The flags one scorer's pass raises on one transcript (empty when none)."""
    flags: dict[str, Any] = {}
    if is_judged(scorer) and transcript.status == "ok":
        hits = transcript_injections(transcript.messages, item.messages)
        if hits:
            flags[FLAG] = flag_detail(hits)
    for name in sorted({f for s in scores for f in s.extra.get("review_flags", ())}):
        # flags a scorer raises itself, e.g. the guardian's language_mismatch, uncertain:guardian
        flags[name] = {"turns": [s.turn for s in scores if name in s.extra.get("review_flags", ())]}
    split = [s for s in scores if s.judge == JURY and s.extra.get("disagreement")]
    if split:
        flags[f"{DISAGREEMENT}:{scorer.name}"] = {
            "turns": [s.turn for s in split],
            "judges": [s.extra.get("judges") for s in split],
            "threshold": split[0].extra.get("threshold"),
        }
    return flags


def write_review_flags(
    writer: StoreWriter,
    run_id: str,
    scorer: Scorer,
    batch: Sequence[tuple[Item, Transcript]],
    results: Sequence[Sequence[Score]],
) -> None:
    """Store the review flags of one scored batch."""
    for (item, transcript), scores in zip(batch, results, strict=True):
        flags = review_flags(scorer, item, transcript, scores)
        if flags:
            writer.put_flags(run_id, item.id, flags)


async def close_scorers(scorers: Sequence[Scorer]) -> None:
    """Close the judge backends of every scorer that has them."""
    for scorer in scorers:
        await scorer.aclose()
