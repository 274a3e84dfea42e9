"""Export a run, one record per item, as JSONL or Parquet (streamed in chunks).

Record fields: ``run_id, item_id, idx, kind, category, language, source, license`` (the
item's, null when it has none), ``model, status`` (ok | failed | pending), ``error, prompt``
(the last user message), ``response`` (the last answer), ``turns``
(every message exchanged, ``{role, content}``: the whole conversation of a dialogue; the item's
own messages while it has no transcript), ``flags`` (list of names), ``scores`` (list of
``{scorer, judge, value, label, status, turn, error, rationale, raw}``: ``raw`` is the judge's
raw reply when kept), and for MCQ items ``extracted`` (sorted letters, "" when none) and
``correct`` (true / false / null when unextracted or failed).

Output paths follow :mod:`medsafe.outputs`: ``-`` is standard output (JSONL only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from medsafe.outputs import open_text, staged, stderr_note
from medsafe.store.queries import StoredScore, item_flags, item_messages, item_rows, item_scores
from medsafe.store.sqlite import Store


def _score_record(score: StoredScore) -> dict[str, Any]:
    """A score as exported; ``judge`` is "" for none, as in :class:`medsafe.schema.Score`."""
    return {
        "scorer": score.scorer,
        "judge": score.judge or "",
        "value": score.value,
        "label": score.label,
        "status": score.status,
        "turn": score.turn,
        "error": score.error,
        "rationale": score.rationale,
        "raw": score.raw,
    }


def iter_records(store: Store, run_id: str, *, chunk: int = 500) -> Iterator[dict[str, Any]]:
    """One export record per item, in suite order, memory flat in the run's size."""
    record = store.require_run(run_id)
    last = -1
    while True:
        rows = item_rows(store, run_id, after=last, chunk=chunk)
        if not rows:
            return
        ids = [row.item_id for row in rows]
        scores = item_scores(store, run_id, ids)
        flags = item_flags(store, run_id, ids)
        exchanged = item_messages(store, run_id, ids)
        for row in rows:
            item = row.item
            scored = scores.get(row.item_id, [])
            out: dict[str, Any] = {
                "run_id": run_id,
                "item_id": row.item_id,
                "idx": row.idx,
                "kind": item.kind,
                "category": item.category,
                "language": item.language,
                "source": item.source,
                "license": item.license,
                "model": record.spec.model,
                "status": row.status or "pending",
                "error": row.error,
                "prompt": item.last_user_text(),
                "response": row.response,
                "turns": [
                    {"role": m.role, "content": m.content}
                    for m in exchanged.get(row.item_id) or item.messages
                ],
                "flags": flags.get(row.item_id, []),
                "scores": [_score_record(s) for s in scored],
            }
            if item.kind == "mcq":
                mcq = next((s for s in scored if s.scorer == "mcq"), None)
                out["answer"] = item.answer
                out["extracted"] = (mcq.extra.get("extracted") if mcq else None) or ""
                label = (mcq.label if mcq else None) or ""
                out["correct"] = {"correct": True, "incorrect": False}.get(label)
            yield out
        last = rows[-1].idx


def write_jsonl(store: Store, run_id: str, handle: TextIO) -> int:
    """Write the run's records to ``handle``, one JSON object a line; returns the count."""
    count = 0
    for rec in iter_records(store, run_id):
        handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
        count += 1
    return count


def export_jsonl(
    store: Store, run_id: str, path: Path, *, notify: Callable[[str], None] = stderr_note
) -> int:
    """Write the run as JSONL to ``path`` (see :mod:`medsafe.outputs`); returns the count."""
    with open_text(path, notify) as handle:
        return write_jsonl(store, run_id, handle)


def _arrow_schema() -> Any:
    import pyarrow as pa

    score = pa.struct(
        [
            ("scorer", pa.string()),
            ("judge", pa.string()),
            ("value", pa.float64()),
            ("label", pa.string()),
            ("status", pa.string()),
            ("turn", pa.int64()),
            ("error", pa.string()),
            ("rationale", pa.string()),
            ("raw", pa.string()),
        ]
    )
    turn = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("run_id", pa.string()),
            ("item_id", pa.string()),
            ("idx", pa.int64()),
            ("kind", pa.string()),
            ("category", pa.string()),
            ("language", pa.string()),
            ("source", pa.string()),
            ("license", pa.string()),
            ("model", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("prompt", pa.string()),
            ("response", pa.string()),
            ("turns", pa.list_(turn)),
            ("flags", pa.list_(pa.string())),
            ("scores", pa.list_(score)),
            ("answer", pa.string()),
            ("extracted", pa.string()),
            ("correct", pa.bool_()),
        ]
    )


def export_parquet(
    store: Store,
    run_id: str,
    path: Path,
    *,
    batch: int = 2000,
    notify: Callable[[str], None] = stderr_note,
) -> int:
    """Write the run as Parquet in row groups of ``batch`` records (see :mod:`medsafe.outputs`);
    returns the record count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    names = schema.names
    count = 0
    with staged(path, notify) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        buffer: list[dict[str, Any]] = []
        for rec in iter_records(store, run_id):
            buffer.append({k: rec.get(k) for k in names})
            if len(buffer) >= batch:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                count += len(buffer)
                buffer.clear()
        if buffer:
            writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
            count += len(buffer)
    return count
