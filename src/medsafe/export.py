"""Export a run, one record per item, as JSONL or Parquet (streamed in chunks).

Record fields: ``run_id, item_id, idx, kind, category, language, model, status`` (ok | failed |
pending), ``error, prompt, response, flags`` (list of names), ``scores`` (list of ``{scorer,
judge, value, label, status, turn, error}``), and for MCQ items ``extracted`` (sorted letters,
"" when none) and ``correct`` (true / false / null when unextracted or failed).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medsafe.schema import Item
from medsafe.store.schema_sql import NO_TURN
from medsafe.store.sqlite import Store

_ROWS_SQL = """
SELECT i.idx, i.item_id, i.item_json, t.status, t.error, t.response
FROM items i LEFT JOIN transcripts t ON t.run_id = i.run_id AND t.item_id = i.item_id
WHERE i.run_id = ? AND i.idx > ? ORDER BY i.idx LIMIT ?
"""


def _scores_for(store: Store, run_id: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    marks = ",".join("?" * len(ids))
    rows = store.connection.execute(
        f"SELECT item_id, scorer, judge, value, label, status, turn, error, score_json "
        f"FROM scores WHERE run_id=? AND item_id IN ({marks}) ORDER BY scorer, judge, turn",
        (run_id, *ids),
    )
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item_id, scorer, judge, value, label, status, turn, error, blob in rows:
        extra = json.loads(blob).get("extra", {})
        out[item_id].append(
            {
                "scorer": scorer,
                "judge": judge,
                "value": value,
                "label": label,
                "status": status,
                "turn": None if turn == NO_TURN else turn,
                "error": error,
                "extra": extra,
            }
        )
    return out


def _flags_for(store: Store, run_id: str, ids: list[str]) -> dict[str, list[str]]:
    marks = ",".join("?" * len(ids))
    rows = store.connection.execute(
        f"SELECT item_id, flag FROM flags WHERE run_id=? AND item_id IN ({marks}) ORDER BY flag",
        (run_id, *ids),
    )
    out: dict[str, list[str]] = defaultdict(list)
    for item_id, flag in rows:
        out[item_id].append(flag)
    return out


def iter_records(store: Store, run_id: str, *, chunk: int = 500) -> Iterator[dict[str, Any]]:
    """One export record per item, in suite order, memory flat in the run's size."""
    record = store.require_run(run_id)
    last = -1
    while True:
        rows = store.connection.execute(_ROWS_SQL, (run_id, last, chunk)).fetchall()
        if not rows:
            return
        ids = [row[1] for row in rows]
        scores = _scores_for(store, run_id, ids)
        flags = _flags_for(store, run_id, ids)
        for idx, item_id, item_blob, status, error, response in rows:
            item = Item.model_validate_json(item_blob)
            item_scores = scores.get(item_id, [])
            out: dict[str, Any] = {
                "run_id": run_id,
                "item_id": item_id,
                "idx": idx,
                "kind": item.kind,
                "category": item.category,
                "language": item.language,
                "model": record.spec.model,
                "status": status or "pending",
                "error": error,
                "prompt": item.last_user_text(),
                "response": response,
                "flags": flags.get(item_id, []),
                "scores": [{k: v for k, v in s.items() if k != "extra"} for s in item_scores],
            }
            if item.kind == "mcq":
                mcq = next((s for s in item_scores if s["scorer"] == "mcq"), None)
                out["answer"] = item.answer
                out["extracted"] = (mcq or {}).get("extra", {}).get("extracted", "") or ""
                label = (mcq or {}).get("label")
                out["correct"] = {"correct": True, "incorrect": False}.get(label or "")
            yield out
        last = rows[-1][0]


def export_jsonl(store: Store, run_id: str, path: Path) -> int:
    """Write the run as JSONL (written to a temp file, then renamed); returns the record count."""
    tmp = path.with_name(path.name + ".part")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for rec in iter_records(store, run_id):
            handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


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
        ]
    )
    return pa.schema(
        [
            ("run_id", pa.string()),
            ("item_id", pa.string()),
            ("idx", pa.int64()),
            ("kind", pa.string()),
            ("category", pa.string()),
            ("language", pa.string()),
            ("model", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("prompt", pa.string()),
            ("response", pa.string()),
            ("flags", pa.list_(pa.string())),
            ("scores", pa.list_(score)),
            ("answer", pa.string()),
            ("extracted", pa.string()),
            ("correct", pa.bool_()),
        ]
    )


def export_parquet(store: Store, run_id: str, path: Path, *, batch: int = 2000) -> int:
    """Write the run as Parquet in row groups of ``batch`` records; returns the record count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    names = schema.names
    tmp = path.with_name(path.name + ".part")
    count = 0
    with pq.ParquetWriter(tmp, schema) as writer:
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
    tmp.replace(path)
    return count
