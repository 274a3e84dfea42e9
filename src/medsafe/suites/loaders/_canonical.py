"""The canonical record (one JSONL object, CSV row or Parquet row) and how it becomes an Item.

See docs/formats.md for the field list. ``build_item`` takes an already-renamed record (column
mapping applied), checks every field and raises :class:`SuiteError` naming file, line and field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from medsafe.errors import SuiteError
from medsafe.schema import (
    LANGUAGES,
    OPTION_LETTERS,
    Item,
    ItemKind,
    Language,
    Message,
    RubricCriterion,
    TaxonomyLabel,
)
from medsafe.suites.base import ColumnMapping
from medsafe.suites.loaders import _media
from medsafe.suites.prompting import mcq_messages
from medsafe.taxonomy import framework_of

TEXT_FIELDS = (
    "id", "question", "answer", "prompt", "category", "language", "reference", "kind",
    "source", "license", "seed", "strategy", "system",
)  # fmt: skip
JSON_FIELDS = ("options", "messages", "labels", "metadata", "rubric", "attachments")
INT_FIELDS = ("turns",)
CANONICAL_FIELDS = TEXT_FIELDS + JSON_FIELDS + INT_FIELDS
"""Every canonical field; option columns ``A``..``H`` come on top in tables."""

ITEM_KINDS: tuple[str, ...] = get_args(ItemKind)
SUPPORTED_KINDS = ITEM_KINDS
_JSON_NAMES: dict[type, str] = {dict: "object", list: "array"}


class Where:
    """The place a record came from, to raise located errors."""

    def __init__(self, path: Path, line: int) -> None:
        self.path = path
        self.line = line

    def error(self, message: str, field: str | None = None) -> SuiteError:
        """A :class:`SuiteError` at this place."""
        return SuiteError(message, path=self.path, line=self.line, field=field)


def rename(
    record: Mapping[str, Any], mapping: ColumnMapping, fields: tuple[str, ...]
) -> dict[str, Any]:
    """Apply a column mapping: canonical ``fields`` are read from their mapped source keys; every
    other key of ``record`` is kept under its own name (it ends up in ``metadata``)."""
    if not mapping.columns:  # every key keeps its own name
        return dict(record)
    sources = _sources(tuple(sorted(mapping.columns.items())), fields)
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in sources:
            out[sources[key]] = value
        elif key not in out and key not in fields:
            out[key] = value
    return out


@functools.lru_cache(maxsize=64)
def _sources(columns: tuple[tuple[str, str], ...], fields: tuple[str, ...]) -> dict[str, str]:
    """Source key -> canonical field, for one mapping (computed once per file, not per row)."""
    mapping = ColumnMapping(dict(columns))
    return {mapping.source(f): f for f in fields}


def build_item(record: Mapping[str, Any], where: Where) -> Item:
    """Validate one canonical record and turn it into an :class:`Item`."""
    rec = {k: v for k, v in record.items() if not _blank(v)}
    item_id = _text(rec, "id", where, required=True)
    language = _language(rec, where)
    options = _options(rec, where)
    answer = _answer(rec, options, where)
    kind = _kind(rec, options, where)
    attachments = _media.attachments(rec.get("attachments"), where)
    if kind == "image" and not attachments:
        raise where.error("an image item needs at least one attachment", "attachments")
    question = _text(rec, "question", where)
    messages = _conversation(rec, kind, question, options, answer, language, where)
    rubric = _rubric(rec.get("rubric"), where)
    if kind == "rubric" and not rubric:
        raise where.error("a rubric item needs at least one rubric criterion", "rubric")
    category = _text(rec, "category", where) or ""
    fields: dict[str, Any] = {
        "id": item_id,
        "language": language,
        "kind": kind,
        "messages": messages,
        "question": question,
        "options": options,
        "answer": answer,
        "category": category,
        "labels": _labels(rec, category, where),
        "reference": _text(rec, "reference", where),
        "rubric": rubric,
        "seed": _text(rec, "seed", where),
        "strategy": _text(rec, "strategy", where),
        "turns": _turns(rec, where),
        "source": _text(rec, "source", where),
        "license": _text(rec, "license", where),
        "attachments": attachments,
        "metadata": _metadata(rec, where),
    }
    if kind == "detection":
        fields["metadata"] = _media.detection_metadata(fields["metadata"], where)
    removed = _media.deidentification_note(attachments, where)
    if removed:
        fields["metadata"] = {**fields["metadata"], "dicom_header_removed": removed}
    return validate_item(fields, where)


def _conversation(
    rec: Mapping[str, Any],
    kind: ItemKind,
    question: str | None,
    options: dict[str, str],
    answer: str | None,
    language: Language,
    where: Where,
) -> tuple[Message, ...]:
    """The messages to send: rendered from question + options for an MCQ, else the prompt or
    messages given; the optional ``system`` text goes first."""
    messages = _messages(rec, where)
    if kind == "mcq":
        if not options:
            raise where.error("an MCQ item needs options (A-H)", "options")
        if answer is None:
            raise where.error("an MCQ item needs an answer (e.g. 'B' or 'ACD')", "answer")
        if question is not None and messages:
            raise where.error("give either question or prompt/messages, not both", "question")
        if question is not None:
            messages = mcq_messages(question, options, language, multi=len(answer) > 1)
        elif not messages:
            raise where.error("an MCQ item needs a question (or a prompt)", "question")
    elif not messages and kind != "dialogue":
        raise where.error(f"a {kind} item needs a prompt or messages", "prompt")
    elif not messages and "seed" not in rec:
        raise where.error("a dialogue item needs a seed, a prompt or messages", "seed")
    system = _text(rec, "system", where)
    if system is not None:
        messages = (Message(role="system", content=system), *messages)
    return messages


def validate_item(fields: Mapping[str, Any], where: Where) -> Item:
    """``Item.model_validate`` with pydantic errors turned into a located SuiteError."""
    try:
        return Item.model_validate(dict(fields))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise where.error(first["msg"], field) from None


def labels_for(category: str) -> tuple[TaxonomyLabel, ...]:
    """The taxonomy label implied by a category that is a registered category id."""
    framework = framework_of(category)
    return (TaxonomyLabel(framework=framework, category=category),) if framework else ()


def parse_answer(value: str, options: Mapping[str, str], where: Where, field: str) -> str:
    """Normalise ``"B"``, ``"ACD"``, ``"A,C,D"`` or ``"A、C"`` to sorted letters that are all among
    ``options``."""
    letters = "".join(ch for ch in value.upper() if ch not in " ,，、;；/|")
    if not letters or any(ch not in OPTION_LETTERS for ch in letters):
        raise where.error(f"answer must be option letters A-H, got {value!r}", field)
    missing = sorted(set(letters) - set(options))
    if missing:
        have = "".join(sorted(options)) or "none"
        raise where.error(
            f"answer letter(s) {''.join(missing)} not among the item's options ({have})", field
        )
    return "".join(sorted(set(letters)))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(rec: Mapping[str, Any], name: str, where: Where, required: bool = False) -> str | None:
    value = rec.get(name)
    if value is None:
        if required:
            raise where.error(f"missing required field {name!r}", name)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise where.error(f"expected text, got {type(value).__name__}", name)
    return str(value).strip() if name in ("id", "language", "kind", "answer") else str(value)


def _json(
    rec: Mapping[str, Any], name: str, where: Where, expected: type | tuple[type, ...]
) -> Any:
    """A structured field: given natively (JSONL, Parquet) or as JSON text (CSV)."""
    value = rec.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise where.error(f"not valid JSON: {exc.msg}", name) from None
    if not isinstance(value, expected):
        wanted = " or ".join(
            _JSON_NAMES[t] for t in (expected if isinstance(expected, tuple) else (expected,))
        )
        raise where.error(f"expected a JSON {wanted}, got {type(value).__name__}", name)
    return value


def _language(rec: Mapping[str, Any], where: Where) -> Language:
    value = (_text(rec, "language", where) or "en").lower()
    for language in LANGUAGES:
        if value == language:
            return language
    raise where.error(f"unknown language {value!r} (expected one of: zh, ja, en)", "language")


def _options(rec: Mapping[str, Any], where: Where) -> dict[str, str]:
    raw = rec.get("options")
    options: dict[str, str] = {}
    if raw is not None:
        value = _json(rec, "options", where, (dict, list))
        pairs = (
            value.items() if isinstance(value, dict) else zip(OPTION_LETTERS, value, strict=False)
        )
        if isinstance(value, list) and len(value) > len(OPTION_LETTERS):
            raise where.error("at most 8 options (A-H)", "options")
        for letter, text in pairs:
            key = str(letter).strip().upper()
            if key not in OPTION_LETTERS or len(key) != 1:
                raise where.error(f"option letters must be A-H, got {letter!r}", "options")
            if not _blank(text):
                options[key] = str(text)
    for letter in OPTION_LETTERS:
        cell = rec.get(letter)
        if cell is not None:
            if raw is not None:
                raise where.error("give options either as an object or as columns A-H", letter)
            options[letter] = str(cell)
    return dict(sorted(options.items()))


def _answer(rec: Mapping[str, Any], options: dict[str, str], where: Where) -> str | None:
    value = _text(rec, "answer", where)
    if value is None:
        return None
    return parse_answer(value, options, where, "answer")


def _kind(rec: Mapping[str, Any], options: dict[str, str], where: Where) -> ItemKind:
    value = _text(rec, "kind", where)
    if value is None:
        if rec.get("rubric") is not None:
            return "rubric"
        return "mcq" if options else "open"
    for kind in get_args(ItemKind):
        if value == kind:
            return kind  # type: ignore[no-any-return]
    raise where.error(
        f"unknown kind {value!r} (expected one of: {', '.join(SUPPORTED_KINDS)})", "kind"
    )


def _messages(rec: Mapping[str, Any], where: Where) -> tuple[Message, ...]:
    prompt = _text(rec, "prompt", where)
    raw = _json(rec, "messages", where, list)
    if prompt is not None and raw is not None:
        raise where.error("give either prompt or messages, not both", "messages")
    if prompt is not None:
        return (Message(role="user", content=prompt),)
    if raw is None:
        return ()
    if not raw:
        raise where.error("messages is empty", "messages")
    messages = []
    for i, entry in enumerate(raw):
        field = f"messages[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"role", "content"}:
            raise where.error("each message must be an object with role and content", field)
        if entry["role"] not in ("system", "user", "assistant"):
            raise where.error(f"unknown role {entry['role']!r}", f"{field}.role")
        if not isinstance(entry["content"], str):
            raise where.error("content must be text", f"{field}.content")
        messages.append(Message(role=entry["role"], content=entry["content"]))
    return tuple(messages)


def _labels(rec: Mapping[str, Any], category: str, where: Where) -> tuple[TaxonomyLabel, ...]:
    raw = _json(rec, "labels", where, list) or []
    labels: list[TaxonomyLabel] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) != {"framework", "category"}:
            raise where.error("each label must be {framework, category}", f"labels[{i}]")
        labels.append(
            TaxonomyLabel(framework=str(entry["framework"]), category=str(entry["category"]))
        )
    for label in labels_for(category):
        if label not in labels:
            labels.append(label)
    return tuple(labels)


def _rubric(raw: Any, where: Where) -> tuple[RubricCriterion, ...]:
    """Rubric criteria ``[{criterion, points, tags}]`` (also used by the HealthBench loader)."""
    if raw is None:
        return ()
    value = _json({"rubric": raw}, "rubric", where, list)
    criteria = []
    for i, entry in enumerate(value):
        field = f"rubric[{i}]"
        if not isinstance(entry, dict) or "criterion" not in entry or "points" not in entry:
            raise where.error("each rubric entry needs criterion and points", field)
        points = entry["points"]
        if isinstance(points, bool) or not isinstance(points, int | float):
            raise where.error(f"points must be a number, got {points!r}", f"{field}.points")
        tags = entry.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise where.error("tags must be a list of strings", f"{field}.tags")
        criteria.append(
            RubricCriterion(
                criterion=str(entry["criterion"]), points=float(points), tags=tuple(tags)
            )
        )
    return tuple(criteria)


def _turns(rec: Mapping[str, Any], where: Where) -> int | None:
    value = rec.get("turns")
    if value is None:
        return None
    try:
        turns = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        turns = None
    if turns is None or turns < 1 or (isinstance(value, float) and value != turns):
        raise where.error(f"turns must be a whole number >= 1, got {value!r}", "turns")
    return turns


def _metadata(rec: Mapping[str, Any], where: Where) -> dict[str, Any]:
    metadata = dict(_json(rec, "metadata", where, dict) or {})
    for key, value in rec.items():
        if key not in CANONICAL_FIELDS and key not in OPTION_LETTERS:
            metadata.setdefault(key, value)
    return metadata
