"""Expert reviews of ``medsafe curate``: the round's review file (``medsafe-review/1``) or a
review task in the store (the workbench), read back as :class:`Review` objects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsafe.authoring.curate_model import CurateOptions, Review, Round, question_of
from medsafe.authoring.rubric import Rubric
from medsafe.errors import SuiteError
from medsafe.review.files import FORMAT as REVIEW_FORMAT
from medsafe.schema import Item


def review_file_lines(
    options: CurateOptions, rnd_no: int, pending: Sequence[tuple[Item, Round]]
) -> list[dict[str, Any]]:
    schema = options.rubric.label_schema()
    head = {
        "type": "task",
        "format": REVIEW_FORMAT,
        "task_id": f"curate-r{rnd_no}",
        "run_id": "",
        "sample": "curate",
        "seed": 0,
        "k": len(options.experts),
        "margin": options.margin,
        "reviewers": list(options.experts),
        "required": True,
        "label_schema": schema.model_dump(mode="json"),
    }
    lines: list[dict[str, Any]] = [head]
    for position, (item, rnd) in enumerate(pending):
        question, answer = question_of(item)
        lines.append(
            {
                "type": "unit",
                "item_id": item.id,
                "position": position,
                "language": item.language,
                "assigned": list(options.experts),
                "messages": [
                    {"role": "user", "content": f"{question}\n\nKey: {answer}"},
                    {"role": "assistant", "content": rnd.rationale},
                ],
            }
        )
    return lines


def read_labels(
    path: Path, rubric: Rubric, experts: Sequence[str]
) -> tuple[dict[tuple[str, str], Review], dict[str, Review]]:
    """(item, reviewer) -> expert review, and item -> adjudication, from a review file."""
    schema = rubric.label_schema()
    labels: dict[tuple[str, str], Review] = {}
    adjudications: dict[str, Review] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"not JSON ({exc.msg})", path=path, line=n) from None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind not in ("label", "adjudication"):
            continue
        who = obj.get("reviewer" if kind == "label" else "adjudicator")
        item_id = obj.get("item_id")
        if not isinstance(who, str) or not isinstance(item_id, str):
            raise SuiteError("needs item_id and reviewer (or adjudicator)", path=path, line=n)
        if kind == "label" and who not in experts:
            raise SuiteError(
                f"{who!r} is not an expert of this curation", path=path, line=n, field="reviewer"
            )
        try:
            values = schema.check({str(k): str(v) for k, v in dict(obj.get("values", {})).items()})
        except (ValueError, TypeError) as exc:
            raise SuiteError(str(exc), path=path, line=n, field="values") from None
        edit = obj.get("edit")
        review = Review(
            reviewer=who,
            kind="expert" if kind == "label" else "adjudicator",
            scores={k: int(v) for k, v in values.items()},
            feedback=str(obj.get("rationale") or ""),
            edit=edit.strip() if isinstance(edit, str) and edit.strip() else None,
        )
        if kind == "label":
            labels[(item_id, who)] = review
        else:
            adjudications[item_id] = review
    return labels, adjudications


def write_review_file(
    options: CurateOptions, rnd_no: int, pending: Sequence[tuple[Item, Round]], path: Path
) -> None:
    """The round's review file, unless it exists (experts append to it); SuiteError when an
    existing file's units are not this round's (another suite, or rationales that changed)."""
    lines = review_file_lines(options, rnd_no, pending)
    if path.exists():
        units = {
            (obj.get("item_id"), json.dumps(obj.get("messages"), ensure_ascii=False))
            for obj in (json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip())
            if isinstance(obj, dict) and obj.get("type") == "unit"
        }
        wanted = {
            (x["item_id"], json.dumps(x["messages"], ensure_ascii=False))
            for x in lines
            if x["type"] == "unit"
        }
        if units != wanted:
            raise SuiteError(
                "its units are not this round's items and rationales (another suite or "
                "writer?); use another -o folder or remove the file",
                path=path,
            )
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    tmp.replace(path)


def workbench_labels(
    options: CurateOptions, run_id: str, rnd_no: int, pending: Sequence[tuple[Item, Round]]
) -> tuple[str, dict[tuple[str, str], Review], dict[str, Review]]:
    """The round's review task on its rationale run (created the first time), its labels by
    (item, reviewer) and adjudications by item: experts label in the workbench
    (``medsafe serve``) or with ``medsafe review label``."""
    from medsafe.review.tasks import ReviewError, adjudications_of, create_task, get_task
    from medsafe.review.tasks import labels_of as task_labels
    from medsafe.store.sqlite import Store

    task_id = f"curate-{run_id.rsplit('-', 1)[-1]}"
    units = [f"{item.id}~r{rnd_no}" for item, _ in pending]
    with Store(options.db) as store:
        conn = store.connection
        try:
            get_task(conn, task_id)
        except ReviewError:
            create_task(conn, run_id=run_id, sample="ids:" + ",".join(units),
                        schema=options.rubric.label_schema(), reviewers=options.experts,
                        actor="medsafe curate", k=len(options.experts), margin=options.margin,
                        required=False, task_id=task_id)  # fmt: skip

        def review(label: Any, kind: Any) -> Review:
            scores = {k: int(float(v)) for k, v in label.values.items()}
            return Review(reviewer=label.by, kind=kind, scores=scores, feedback=label.rationale)

        labels = {
            (lab.item_id.rsplit("~", 1)[0], lab.by): review(lab, "expert")
            for lab in task_labels(conn, task_id)
        }
        adjudications = {
            unit.rsplit("~", 1)[0]: review(adj, "adjudicator")
            for unit, adj in adjudications_of(conn, task_id).items()
        }
    return task_id, labels, adjudications
