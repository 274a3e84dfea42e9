"""CMB, the Chinese Medical Benchmark (Wang et al. 2024): a JSON array of objects with
``exam_type, exam_class, exam_subject, question, answer, question_type, option``
(``option``: letter -> text) -> zh MCQ items.

The question stem goes through :func:`~medsafe.suites.prompting.mcq_messages`; ``question_type``
多项选择题 (or a multi-letter answer) makes it a multiple-answer question. ``answer`` may be absent
(CMB's test split hides it); such items can be run but not scored. Ids: ``id`` if present, else
``cmb/{n}`` (1-based position). Category: ``exam_subject`` (else ``exam_class``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medsafe.errors import SuiteError
from medsafe.schema import Item
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import Where, parse_answer, rename, validate_item
from medsafe.suites.loaders._io import UniqueIds, read_text, require_items
from medsafe.suites.prompting import mcq_messages

FIELDS = (
    "id", "exam_type", "exam_class", "exam_subject", "question", "answer", "question_type",
    "option",
)  # fmt: skip
SOURCE = "CMB (Wang et al. 2024)"
_SNIFF_BYTES = 65536


class CmbLoader:
    """Reads CMB JSON arrays."""

    name = "cmb"
    description = "CMB Chinese medical exam questions (JSON array with exam_* fields)"

    def sniff(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() == ".json"):
            return False
        try:
            with path.open(encoding="utf-8-sig") as handle:
                head = handle.read(_SNIFF_BYTES).lstrip()
            first, _ = (
                json.JSONDecoder().raw_decode(head[1:].lstrip()) if head[:1] == "[" else (None, 0)
            )
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        return isinstance(first, dict) and "question" in first and "option" in first

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        ids = UniqueIds()
        count = 0
        for line, raw in _array_objects(path):
            count += 1
            where = Where(path, line)
            item = _item(rename(raw, mapping, FIELDS), count, where)
            ids.add(item.id, path, line)
            yield item
        require_items(count, path)


def _array_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` for each element of a top-level JSON array."""
    text = read_text(path)
    decoder = json.JSONDecoder()

    counted = [0, 1]  # [position, line at that position]: counting moves forward only

    def line_of(pos: int) -> int:
        start, line = counted
        line += text.count("\n", start, pos) if pos >= start else -text.count("\n", pos, start)
        counted[:] = [pos, line]
        return line

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = skip(0)
    if pos == len(text):
        raise SuiteError("file is empty", path=path)
    if text[pos] != "[":
        raise SuiteError("expected a JSON array of question objects", path=path, line=line_of(pos))
    pos = skip(pos + 1)
    while pos < len(text) and text[pos] != "]":
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise SuiteError(
                f"not valid JSON: {exc.msg}", path=path, line=line_of(exc.pos)
            ) from None
        if not isinstance(value, dict):
            raise SuiteError("expected a JSON object", path=path, line=line_of(pos))
        yield line_of(pos), value
        pos = skip(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip(pos + 1)
        elif pos < len(text) and text[pos] != "]":
            raise SuiteError("expected ',' or ']' between objects", path=path, line=line_of(pos))
    if pos >= len(text):
        raise SuiteError("JSON array is not closed with ']'", path=path, line=line_of(pos))


def _item(record: dict[str, Any], position: int, where: Where) -> Item:
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise where.error("missing required field 'question'", "question")
    raw_options = record.get("option")
    if not isinstance(raw_options, dict) or not raw_options:
        raise where.error("option must be an object of letter -> text", "option")
    options = {str(k).strip().upper(): str(v).strip() for k, v in raw_options.items()}
    options = {k: v for k, v in sorted(options.items()) if v}
    raw_answer = record.get("answer")
    answer = None
    if raw_answer is not None and str(raw_answer).strip():
        answer = parse_answer(str(raw_answer), options, where, "answer")
    question_type = str(record.get("question_type") or "")
    multi = "多" in question_type or (answer is not None and len(answer) > 1)
    known = {k: record.get(k) for k in ("exam_type", "exam_class", "exam_subject")}
    extra = {k: v for k, v in record.items() if k not in FIELDS}
    messages = mcq_messages(question, options, "zh", multi)
    fields = {
        "id": str(record.get("id") or f"cmb/{position}"),
        "language": "zh",
        "kind": "mcq",
        "messages": messages,
        "question": question,
        "options": options,
        "answer": answer,
        "category": str(known["exam_subject"] or known["exam_class"] or ""),
        "source": SOURCE,
        "metadata": {
            **{k: v for k, v in known.items() if v},
            "question_type": question_type,
            **extra,
        },
    }
    return validate_item(fields, where)


loaders.register(CmbLoader.name)(CmbLoader())
