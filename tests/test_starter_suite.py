"""Checks on the bundled starter suite (src/medsafe/suites/data/starter.jsonl)."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from typing import Any

import pytest

from medsafe.schema import Item, Message

LANGUAGES = ("zh", "ja", "en")
CATEGORIES = tuple(f"ama-{n}" for n in range(1, 10))
ID_PATTERN = re.compile(r"^starter-(zh|ja|en)-(mcq|open)-\d{3}$")
MCQ_KEYS = {"id", "question", "options", "answer", "category", "language", "source", "license"}
OPEN_KEYS = {
    "id",
    "prompt",
    "category",
    "language",
    "reference",
    "metadata",
    "source",
    "license",
}

Record = dict[str, Any]


def _load() -> list[Record]:
    path = resources.files("medsafe").joinpath("suites", "data", "starter.jsonl")
    records: list[Record] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"blank line {number}"
        record = json.loads(line)
        assert isinstance(record, dict), f"line {number} is not an object"
        records.append(record)
    return records


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return _load()


def _is_mcq(record: Record) -> bool:
    return "options" in record


def test_file_parses_and_is_large_enough(records: list[Record]) -> None:
    assert len(records) >= 150


def test_fields_are_canonical(records: list[Record]) -> None:
    for record in records:
        expected = MCQ_KEYS if _is_mcq(record) else OPEN_KEYS
        assert set(record) == expected, record["id"]
        assert record["source"] == "medsafe starter suite"
        assert record["license"] == "CC-BY-4.0"
        assert record["language"] in LANGUAGES
        assert record["category"] in CATEGORIES


def test_ids_are_unique_and_well_formed(records: list[Record]) -> None:
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids))
    for record in records:
        match = ID_PATTERN.match(record["id"])
        assert match is not None, record["id"]
        assert match.group(1) == record["language"]
        assert match.group(2) == ("mcq" if _is_mcq(record) else "open")


def test_each_language_is_covered(records: list[Record]) -> None:
    per_language = Counter(record["language"] for record in records)
    for language in LANGUAGES:
        assert per_language[language] >= 40, language
        categories = {r["category"] for r in records if r["language"] == language}
        assert categories == set(CATEGORIES), language


def test_mcq_answers_are_among_options(records: list[Record]) -> None:
    sizes: set[str] = set()
    for record in (r for r in records if _is_mcq(r)):
        options: dict[str, str] = record["options"]
        assert 4 <= len(options) <= 5, record["id"]
        assert "".join(sorted(options)) == "ABCDE"[: len(options)], record["id"]
        assert all(text.strip() for text in options.values()), record["id"]
        assert len(set(options.values())) == len(options), record["id"]
        answer: str = record["answer"]
        assert answer == "".join(sorted(set(answer))), record["id"]
        assert answer and set(answer) <= set(options), record["id"]
        assert len(answer) <= 3, record["id"]
        sizes.add("single" if len(answer) == 1 else "multi")
    assert sizes == {"single", "multi"}


def test_single_select_answers_are_spread(records: list[Record]) -> None:
    for language in LANGUAGES:
        letters = Counter(
            r["answer"]
            for r in records
            if _is_mcq(r) and r["language"] == language and len(r["answer"]) == 1
        )
        assert set("ABCD") <= set(letters), language
        assert max(letters.values()) <= 2 * min(letters[ch] for ch in "ABCD"), language


def test_open_items_have_intent(records: list[Record]) -> None:
    for language in LANGUAGES:
        intents = Counter(
            r["metadata"]["intent"] for r in records if not _is_mcq(r) and r["language"] == language
        )
        assert set(intents) == {"harmful", "benign"}, language
    for record in (r for r in records if not _is_mcq(r)):
        assert record["prompt"].strip(), record["id"]
        assert record["reference"].strip(), record["id"]


def test_no_text_is_duplicated(records: list[Record]) -> None:
    texts = [r["question"] if _is_mcq(r) else r["prompt"] for r in records]
    normalised = [" ".join(text.split()).lower() for text in texts]
    duplicates = [text for text, count in Counter(normalised).items() if count > 1]
    assert not duplicates


def test_records_validate_as_items(records: list[Record]) -> None:
    for record in records:
        if _is_mcq(record):
            item = Item(kind="mcq", suite="starter", **record)
            assert item.answer == record["answer"]
        else:
            fields = {k: v for k, v in record.items() if k != "prompt"}
            message = Message(role="user", content=record["prompt"])
            item = Item(kind="open", suite="starter", messages=(message,), **fields)
            assert item.last_user_text() == record["prompt"]
