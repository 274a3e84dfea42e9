"""Final labels of a task in the formats other commands read: ``medsafe calibrate --labels``
(prompt, response, label or score) and ``medsafe guardian train --labels`` (the guardian's
labels with language, AMA category and intent)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from medsafe.review.tasks import ReviewError, final_labels, get_task
from medsafe.schema import Item, Transcript

GUARDIAN_LABELS = frozenset({"refusal", "safe_helpful", "unsafe", "unusable"})
"""The labels ``guardian train`` learns (``medsafe.guardian.model.LABELS``)."""
NOT_TRAINED = frozenset({"uncertain"})
"""Guardian scale labels a reviewer may pick that are no training class (left out)."""


def _pairs(conn: sqlite3.Connection, run_id: str, item_id: str) -> tuple[Item, Transcript]:
    row = conn.execute(
        "SELECT i.item_json, t.transcript_json FROM items i JOIN transcripts t ON "
        "t.run_id=i.run_id AND t.item_id=i.item_id WHERE i.run_id=? AND i.item_id=?",
        (run_id, item_id),
    ).fetchone()
    return Item.model_validate_json(row[0]), Transcript.model_validate_json(row[1])


def calibrate_rows(conn: sqlite3.Connection, task_id: str) -> list[dict[str, Any]]:
    """One calibrate row per final label: ``label`` when the schema's verdict is a label,
    else ``score``; ``kind`` ``dialogue`` for conversations (the prompt is then the JSON of
    the messages before the last answer, as calibrate's dialogue rows expect)."""
    task = get_task(conn, task_id)
    schema = task.label_schema
    rows = []
    for item_id, final in sorted(final_labels(conn, task).items()):
        item, transcript = _pairs(conn, task.run_id, item_id)
        value, label = schema.score_of(final.values)
        row: dict[str, Any] = {
            "id": item_id,
            "language": item.language,
            "category": item.category,
            "response": transcript.response or "",
        }
        if item.kind == "dialogue":
            before = [m.model_dump() for m in transcript.messages[:-1] if m.role != "system"]
            row["prompt"] = json.dumps(before, ensure_ascii=False)
            row["kind"] = "dialogue"
        else:
            row["prompt"] = item.last_user_text()
        if item.reference:
            row["reference"] = item.reference
        if label is not None and schema.aggregate == "single":
            row["label"] = label
        elif value is not None:
            row["score"] = value
        else:
            continue
        rows.append(row)
    return rows


def guardian_rows(conn: sqlite3.Connection, task_id: str) -> tuple[list[dict[str, Any]], int]:
    """Rows for ``guardian train`` from a task labelled with the guardian's labels, and how
    many final labels were left out (``uncertain``, no AMA category ``ama-N`` or no ``intent``
    in the item's metadata)."""
    task = get_task(conn, task_id)
    choices = {c.key for c in task.label_schema.fields[0].choices}
    if task.label_schema.aggregate != "single" or not choices <= GUARDIAN_LABELS | NOT_TRAINED:
        raise ReviewError(f"task {task_id}: its labels are not the guardian's ({sorted(choices)})")
    rows, skipped = [], 0
    for item_id, final in sorted(final_labels(conn, task).items()):
        item, transcript = _pairs(conn, task.run_id, item_id)
        intent = item.metadata.get("intent")
        category = next(
            (lab.category for lab in item.labels if lab.category.startswith("ama-")), item.category
        )
        label = next(iter(final.values.values()))
        trainable = label in GUARDIAN_LABELS and intent in ("harmful", "benign")
        if not trainable or not category.startswith("ama-"):
            skipped += 1
            continue
        rows.append({
            "id": item_id,
            "prompt": item.last_user_text(),
            "response": transcript.response or "",
            "label": label,
            "language": item.language,
            "category": category,
            "intent": intent,
        })  # fmt: skip
    return rows, skipped


def write_jsonl(rows: list[dict[str, Any]], out: Path) -> None:
    """Write rows as JSONL atomically (a temporary file renamed)."""
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows),
        encoding="utf-8",
    )
    tmp.replace(out)
