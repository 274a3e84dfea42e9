"""A small stored run with transcripts, scores and dialogue turns, for the audit, manifest and
governance tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from medsafe.schema import CallRecord, Item, ModelParams, Score, Transcript, Usage
from medsafe.store import StoreWriter
from tests.conftest import create_run, make_mcq, make_spec


def transcript(run_id: str, item: Item, answer: str = "A") -> Transcript:
    """An ``ok`` transcript answering ``answer``."""
    call = CallRecord(
        request_hash=f"{run_id}/{item.id}",
        status="ok",
        text=f"The answer is {answer}.",
        latency_s=0.25,
        usage=Usage(prompt_tokens=12, completion_tokens=5),
    )
    return Transcript(
        run_id=run_id,
        item_id=item.id,
        model="openai/test",
        params=ModelParams(),
        messages=item.messages,
        calls=(call,),
        status="ok",
    )


def score(item: Item, value: float, judge: str = "") -> Score:
    """An mcq score of ``value``."""
    return Score(item_id=item.id, scorer="mcq", scorer_version="3", judge=judge, value=value)


def turn_row(run_id: str, item: Item, seq: int, reply: str) -> tuple[object, ...]:
    """A ``dialogue_turns`` row."""
    record = {"target": {"request_hash": f"t{seq}", "status": "ok", "text": reply}}
    return (run_id, item.id, seq, seq + 1, "turn", f"user {seq}", reply, json.dumps(record))


def write_run(
    db: Path,
    run_id: str = "run1",
    n: int = 4,
    *,
    order: Sequence[int] | None = None,
    model: str = "openai/test",
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> list[Item]:
    """Store run ``run_id`` with ``n`` items, a transcript, a score and a dialogue turn each,
    written in ``order`` (item indexes; default ascending)."""
    items = [make_mcq(i) for i in range(n)]
    create_run(db, make_spec(run_id, model, base_url, api_key_env=api_key_env), items)
    writer = StoreWriter(db)
    for i in order if order is not None else range(n):
        item = items[i]
        writer.put_transcript(transcript(run_id, item))
        writer.put_scores(run_id, [score(item, float(i % 2))])
        writer.upsert("dialogue_turns", [turn_row(run_id, item, 0, f"reply {i}")])
    writer.close()
    return items
