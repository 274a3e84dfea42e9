"""Items the validator failed, routed to people: ``DIR/validation.review.jsonl``.

With ``medsafe generate --on-fail review`` the items the validator fails are written to a review
file in the review workbench's format (``medsafe-review/1``): a task line whose label schema has
one categorical field ``keep`` (``keep`` or ``drop``), then one unit per item (the rule and its
quote as the user message, the item and the validator's reason as the assistant message).
Reviewers append ``label`` lines (``{"type": "label", "item_id", "reviewer", "values":
{"keep": "keep"}, "rationale"}``). On the next run, an item is restored to the release when it
has at least one label and every reviewer's last label says ``keep``; a ``drop`` keeps it out;
an unlabelled item stays out and in the file. Labels of units still failing are carried over
when the file is rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsafe.errors import SuiteError
from medsafe.review.files import FORMAT
from medsafe.review.model import Choice, LabelField, LabelSchema

FILE_NAME = "validation.review.jsonl"
SCHEMA = LabelSchema(
    name="validation",
    scorer="validation",
    fields=(
        LabelField(name="keep", title="Keep the item in the release?", kind="categorical",
                   choices=(Choice(key="keep", label="keep"), Choice(key="drop", label="drop"))),
    ),
)  # fmt: skip


def read_labels(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Label lines by item id (the last line per reviewer); SuiteError naming file and line."""
    if not path.exists():
        return {}
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"not JSON ({exc.msg})", path=path, line=n) from None
        if not isinstance(obj, dict) or obj.get("type") != "label":
            continue
        item, who, values = obj.get("item_id"), obj.get("reviewer"), obj.get("values")
        if not isinstance(item, str) or not isinstance(who, str) or not isinstance(values, dict):
            raise SuiteError("a label needs item_id, reviewer and values", path=path, line=n)
        try:
            SCHEMA.check({str(k): str(v) for k, v in values.items()})
        except ValueError as exc:
            raise SuiteError(str(exc), path=path, line=n, field="values") from None
        last[(item, who)] = obj
    out: dict[str, list[dict[str, Any]]] = {}
    for (item, _who), obj in last.items():
        out.setdefault(item, []).append(obj)
    return out


def verdict(labels: Sequence[dict[str, Any]]) -> str | None:
    """``keep`` (every reviewer keeps it), ``drop`` (one drops it) or None (no label)."""
    if not labels:
        return None
    keeps = [str(lab["values"].get("keep")) == "keep" for lab in labels]
    return "keep" if all(keeps) else "drop"


def write_file(
    path: Path, units: Sequence[tuple[str, str, str, str]], labels: dict[str, list[dict[str, Any]]]
) -> None:
    """The review file: task line, one unit per (item id, language, rule text, item text), and
    the labels already given for those units."""
    head = {"type": "task", "format": FORMAT, "task_id": "generate-validation", "run_id": "",
            "sample": "validator failures", "seed": 0, "k": 1, "margin": 0.0, "reviewers": [],
            "required": False, "label_schema": SCHEMA.model_dump(mode="json")}  # fmt: skip
    lines: list[dict[str, Any]] = [head]
    for position, (item_id, language, rule, text) in enumerate(units):
        lines.append({"type": "unit", "item_id": item_id, "position": position,
                      "language": language, "assigned": [],
                      "messages": [{"role": "user", "content": rule},
                                   {"role": "assistant", "content": text}]})  # fmt: skip
    keep_ids = {u[0] for u in units}
    lines += [lab for item, labs in labels.items() if item in keep_ids for lab in labs]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    tmp.replace(path)
