"""Canonical JSONL: one item object per line (fields in docs/formats.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from medsafe.schema import Item
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import CANONICAL_FIELDS, Where, build_item, rename
from medsafe.suites.loaders._io import UniqueIds, require_items, text_lines

SUFFIXES = (".jsonl", ".ndjson")


class JsonlLoader:
    """Reads canonical JSONL files (``.jsonl`` / ``.ndjson``)."""

    name = "jsonl"
    description = "canonical medsafe items, one JSON object per line"

    def sniff(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in SUFFIXES

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        ids = UniqueIds()
        count = 0
        for line, record in json_records(path):
            where = Where(path, line)
            item = build_item(rename(record, mapping, CANONICAL_FIELDS), where)
            ids.add(item.id, path, line)
            count += 1
            yield item
        require_items(count, path)


def json_records(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """``(line, object)`` for each non-blank line; a line that is not a JSON object is an error."""
    for line, text in text_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Where(path, line).error(
                f"not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if not isinstance(record, dict):
            raise Where(path, line).error(f"expected a JSON object, got {type(record).__name__}")
        yield line, record


loaders.register(JsonlLoader.name)(JsonlLoader())
