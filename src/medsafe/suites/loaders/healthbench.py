"""HealthBench JSONL (OpenAI 2025): ``prompt`` (a list of ``{role, content}``), ``rubrics``
(``[{criterion, points, tags}]``), ``prompt_id``, ``example_tags`` -> rubric items.

HealthBench conversations come in many languages; medsafe items are zh, ja or en, so the language
is guessed from the script of the user turns (kana -> ja, Han -> zh, else en) unless a
``language`` field is given. Category: the ``theme:`` example tag without its prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from medsafe.schema import Item
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import Where, build_item, rename
from medsafe.suites.loaders._io import UniqueIds, first_line, require_items
from medsafe.suites.loaders._language import guess_language
from medsafe.suites.loaders.jsonl import SUFFIXES, json_records

FIELDS = ("prompt_id", "prompt", "rubrics", "example_tags", "language")
SOURCE = "HealthBench (OpenAI 2025)"


class HealthBenchLoader:
    """Reads HealthBench-style rubric JSONL."""

    name = "healthbench"
    description = "HealthBench conversations graded by physician-written rubrics"

    def sniff(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() in SUFFIXES):
            return False
        line = first_line(path)
        try:
            record = json.loads(line) if line else None
        except json.JSONDecodeError:
            return False
        return (
            isinstance(record, dict)
            and isinstance(record.get("prompt"), list)
            and "rubrics" in record
        )

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        ids = UniqueIds()
        count = 0
        for line, raw in json_records(path):
            where = Where(path, line)
            item = build_item(_canonical(rename(raw, mapping, FIELDS), where), where)
            ids.add(item.id, path, line)
            count += 1
            yield item
        require_items(count, path)


def _canonical(record: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """Rename HealthBench fields to canonical ones; the rest goes to metadata."""
    for field in ("prompt_id", "prompt", "rubrics"):
        if record.get(field) is None:
            raise where.error(f"missing required field {field!r}", field)
    prompt = record["prompt"]
    if not isinstance(prompt, list):
        raise where.error("prompt must be a list of {role, content} messages", "prompt")
    tags = record.get("example_tags") or []
    if not isinstance(tags, list):
        raise where.error("example_tags must be a list", "example_tags")
    themes = [t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("theme:")]
    language = record.get("language") or guess_language(
        " ".join(
            str(m.get("content", ""))
            for m in prompt
            if isinstance(m, dict) and m.get("role") == "user"
        )
    )
    metadata = {k: v for k, v in record.items() if k not in FIELDS}
    metadata["example_tags"] = tags
    return {
        "id": record["prompt_id"],
        "kind": "rubric",
        "messages": prompt,
        "rubric": record["rubrics"],
        "category": themes[0] if themes else None,
        "language": language,
        "source": SOURCE,
        "metadata": metadata,
    }


loaders.register(HealthBenchLoader.name)(HealthBenchLoader())
