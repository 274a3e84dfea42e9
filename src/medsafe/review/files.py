"""The review file (JSONL, format ``medsafe-review/1``): a task, its units and its labels, so
that a task can be labelled without the server and imported back.

One JSON object per line, each with ``"type"``:

- ``task`` (first line): ``format``, and the task spec (``task_id``, ``run_id``, ``sample``,
  ``seed``, ``k``, ``margin``, ``reviewers``, ``required``, ``label_schema``); a blinded file
  (written ``for`` one reviewer) leaves out ``run_id``, ``sample`` and ``seed``;
- ``unit``: ``item_id``, ``position``, ``language``, ``messages`` (the conversation, roles
  ``user``/``assistant``) and ``assigned`` (its reviewers; a blinded file: only hers);
- ``label``: ``item_id``, ``reviewer``, ``values`` (field -> choice key), ``rationale``,
  ``created`` (optional);
- ``adjudication``: ``item_id``, ``adjudicator``, ``values``, ``rationale``, ``created``.

Importing a file adds its ``label`` and ``adjudication`` lines to the stored task (the task line
must name a stored task; units and labels already stored as they are in the file are skipped),
through the same checks as the web pages: assignment, schema, adjudicator not a reviewer. When
several lines give the same person's label of the same unit, the last one counts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medsafe.errors import SuiteError
from medsafe.review.tasks import (
    Label,
    ReviewError,
    adjudicate,
    adjudications_of,
    assigned_units,
    assignees,
    get_task,
    labels_of,
    submit_label,
    unit_ids,
    unit_view,
)

FORMAT = "medsafe-review/1"


def _label(lab: Label) -> dict[str, Any]:
    return {"item_id": lab.item_id, "values": lab.values, "rationale": lab.rationale,
            "created": lab.created}  # fmt: skip


def export_lines(
    conn: sqlite3.Connection, task_id: str, *, reviewer: str | None = None
) -> Iterator[dict[str, Any]]:
    """The review file's objects for a task; blinded to one ``reviewer`` when given (her
    units, her labels, no run, sample or other reviewers)."""
    task = get_task(conn, task_id)
    head: dict[str, Any] = {"type": "task", "format": FORMAT, **task.model_dump(mode="json")}
    if reviewer is not None:
        for key in ("run_id", "sample", "seed", "reviewers"):
            head.pop(key)
        head["for"] = reviewer
    yield head
    units = unit_ids(conn, task_id) if reviewer is None else assigned_units(conn, task_id, reviewer)
    for item_id in units:
        view = unit_view(conn, task, item_id)
        yield {
            "type": "unit",
            "item_id": item_id,
            "position": view.position,
            "language": view.language,
            "messages": [m.model_dump() for m in view.messages],
            "assigned": [reviewer] if reviewer else assignees(conn, task_id, item_id),
        }
    for lab in labels_of(conn, task_id):
        if reviewer is None or lab.by == reviewer:
            yield {"type": "label", "reviewer": lab.by, **_label(lab)}
    if reviewer is None:
        for adj in adjudications_of(conn, task_id).values():
            yield {"type": "adjudication", "adjudicator": adj.by, **_label(adj)}


def write_file(
    conn: sqlite3.Connection, task_id: str, out: Path, reviewer: str | None = None
) -> int:
    """Write the review file atomically (a temporary file renamed); returns its line count."""
    lines = [
        json.dumps(o, ensure_ascii=False, sort_keys=True)
        for o in export_lines(conn, task_id, reviewer=reviewer)
    ]
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out)
    return len(lines)


def _str(obj: dict[str, Any], key: str, path: Path, line: int, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise SuiteError("missing or not a string", path=path, line=line, field=key)
    return value


def _values(obj: dict[str, Any], path: Path, line: int) -> dict[str, str]:
    values = obj.get("values")
    if not isinstance(values, dict) or not all(
        isinstance(v, str | int | float) for v in values.values()
    ):
        raise SuiteError(
            "must be an object of field -> choice", path=path, line=line, field="values"
        )
    return {str(k): _key(v) for k, v in values.items()}


def _key(value: str | float) -> str:
    """A choice key as written: a number 3 or 3.0 is the key "3"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def import_file(conn: sqlite3.Connection, path: Path) -> dict[str, int]:
    """Add the file's labels and adjudications to its stored task; returns counts
    (``labels``, ``adjudications``, ``unchanged``). Errors name the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"cannot read ({exc.strerror})", path=path) from None
    task_id: str | None = None
    task_line = 0
    counts = {"labels": 0, "adjudications": 0, "unchanged": 0}
    pending: list[tuple[int, dict[str, Any]]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"not JSON ({exc.msg})", path=path, line=n) from None
        if not isinstance(obj, dict):
            raise SuiteError("expected a JSON object", path=path, line=n)
        kind = obj.get("type")
        if kind == "task":
            if obj.get("format") != FORMAT:
                raise SuiteError(f"expected {FORMAT!r}", path=path, line=n, field="format")
            task_id, task_line = _str(obj, "task_id", path, n), n
        elif kind in ("label", "adjudication"):
            pending.append((n, obj))
        elif kind != "unit":
            raise SuiteError(
                "expected task, unit, label or adjudication", path=path, line=n, field="type"
            )
    if task_id is None:
        raise SuiteError('no task line (the first line must have "type": "task")', path=path)
    try:
        task = get_task(conn, task_id)
    except ReviewError as exc:
        raise SuiteError(str(exc), path=path, line=task_line, field="task_id") from None
    last: dict[tuple[object, ...], tuple[int, dict[str, Any]]] = {}
    for n, obj in pending:  # a later line for the same unit and person replaces an earlier one
        last[(obj["type"], obj.get("item_id"), obj.get("reviewer"), obj.get("adjudicator"))] = (
            n,
            obj,
        )
    for n, obj in sorted(last.values(), key=lambda x: x[0]):
        item_id = _str(obj, "item_id", path, n)
        values = _values(obj, path, n)
        rationale = _str(obj, "rationale", path, n, "")
        created = obj.get("created") if isinstance(obj.get("created"), str) else None
        try:
            if obj["type"] == "label":
                who = _str(obj, "reviewer", path, n)
                stored = {
                    (lab.by, lab.item_id): lab for lab in labels_of(conn, task.task_id, item_id)
                }
                same = stored.get((who, item_id))
                if same is not None and same.values == values and same.rationale == rationale:
                    counts["unchanged"] += 1
                    continue
                submit_label(conn, task.task_id, item_id, who, values, rationale, created=created)
                counts["labels"] += 1
            else:
                who = _str(obj, "adjudicator", path, n)
                done = adjudications_of(conn, task.task_id).get(item_id)
                if done is not None and done.values == values and done.by == who:
                    counts["unchanged"] += 1
                    continue
                adjudicate(conn, task.task_id, item_id, who, values, rationale, created=created)
                counts["adjudications"] += 1
        except ReviewError as exc:
            raise SuiteError(str(exc), path=path, line=n) from None
    return counts
