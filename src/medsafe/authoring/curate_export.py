"""Write what ``medsafe curate`` decided.

- ``history.jsonl`` -- every item, accepted or not, with every round (rationale, author, each
  review with reviewer, kind, scores, feedback, edit; the decision and why);
- ``curated.jsonl`` and ``curated.parquet`` -- the accepted items only, one record each:
  ``id, question, options, answer, rationale, rubric_scores, rounds, reviewers, provenance``
  (``rounds``: the full history; ``provenance``: suite, writer, judges, experts, adjudicator,
  rubric name and SHA-256, language, how it was decided). The Parquet file loads with
  ``datasets.load_dataset("parquet", data_files=...)`` (``options`` as a list of
  ``{letter, text}``, ``rubric_scores`` as a list of ``{criterion, score}``, ``rounds`` and
  ``provenance`` as JSON text).

Files are written under temporary names and renamed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsafe.authoring.curate_model import CurateOptions, CurateOutcome
from medsafe.authoring.curate_model import load_curation_items as _items
from medsafe.schema import Item


def _record(item: Item, options: CurateOptions, outcome: CurateOutcome) -> dict[str, Any]:
    rounds = outcome.rounds[item.id]
    last = rounds[-1]
    return {
        "id": item.id,
        "question": item.question or item.last_user_text(),
        "options": dict(sorted(item.options.items())),
        "answer": item.answer or item.reference or "",
        "rationale": last.rationale,
        "rubric_scores": last.scores,
        "rounds": [r.model_dump(mode="json") for r in rounds],
        "reviewers": sorted({rv.reviewer for rv in last.reviews if rv.error is None}),
        "provenance": {
            "suite": options.suite,
            "item_id": item.id,
            "language": item.language,
            "writer": options.writer.spec,
            "judges": [j.spec for j in options.judges],
            "experts": list(options.experts),
            "adjudicator": options.adjudicator.spec if options.adjudicator else None,
            "rubric": options.rubric.name,
            "rubric_sha256": options.rubric.digest(),
            "decision": last.reason,
            "source": item.source,
            "license": item.license,
        },
    }


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_outputs(options: CurateOptions, outcome: CurateOutcome) -> dict[str, Path]:
    """Write history (always) and the verified dataset (accepted items); returns the paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = options.out
    items = _items(options.suite)
    records = [_record(item, options, outcome) for item in items if outcome.rounds[item.id]]
    history = [
        {"id": r["id"], "status": outcome.status[r["id"]], "rounds": r["rounds"]} for r in records
    ]
    _atomic(
        out / "history.jsonl", "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in history)
    )
    accepted = [r for r in records if outcome.status[r["id"]] == "accepted"]
    _atomic(
        out / "curated.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in accepted)
    )
    table = pa.Table.from_pylist([_flat_for_parquet(r) for r in accepted], schema=_schema())
    tmp = out / ".curated.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(out / "curated.parquet")
    return {
        "history": out / "history.jsonl",
        "jsonl": out / "curated.jsonl",
        "parquet": out / "curated.parquet",
    }


def _flat_for_parquet(record: dict[str, Any]) -> dict[str, Any]:
    """Options and scores become lists of structs (HF ``datasets`` has no map type); the
    nested history and provenance are JSON text."""
    return {
        "id": record["id"],
        "question": record["question"],
        "options": [{"letter": k, "text": v} for k, v in record["options"].items()],
        "answer": record["answer"],
        "rationale": record["rationale"],
        "rubric_scores": [
            {"criterion": k, "score": float(v)} for k, v in record["rubric_scores"].items()
        ],
        "rounds": json.dumps(record["rounds"], ensure_ascii=False),
        "reviewers": record["reviewers"],
        "provenance": json.dumps(record["provenance"], ensure_ascii=False),
    }


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("question", pa.string()),
            ("options", pa.list_(pa.struct([("letter", pa.string()), ("text", pa.string())]))),
            ("answer", pa.string()),
            ("rationale", pa.string()),
            (
                "rubric_scores",
                pa.list_(pa.struct([("criterion", pa.string()), ("score", pa.float64())])),
            ),
            ("rounds", pa.string()),
            ("reviewers", pa.list_(pa.string())),
            ("provenance", pa.string()),
        ]
    )
