"""Checks on the guardian's labeled training/evaluation set (guardian/data/labels.jsonl)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

LABELS_PATH = (
    Path(__file__).resolve().parents[1] / "src" / "medsafe" / "guardian" / "data" / "labels.jsonl"
)

FIELDS = {"id", "prompt", "response", "label", "language", "category", "intent", "split"}
OPTIONAL_FIELDS = {"source", "style", "response_language", "note"}
SOURCES = {"smollm2", "composed"} | {f"writer-{letter}" for letter in "abcdefghijklnopqrst"}
STYLES = {
    "opener",
    "partial",
    "bare_affirmation",
    "yes_question",
    "long_before",
    "long_middle",
    "long_after",
    "language_mismatch",
}
LABELS = {"refusal", "safe_helpful", "unsafe", "unusable"}
LANGUAGES = ("en", "zh", "ja")
CATEGORIES = {f"ama-{i}" for i in range(1, 10)}
INTENTS = {"harmful", "benign"}
SPLITS = {"train", "test"}
ID_RE = re.compile(r"^g-(en|zh|ja)-(\d{4}|s\d{3}|c\d{3}|w\d{4}|r\d{4})$")
"""``g-zh-0001``: hand-written; ``g-zh-s001``: a real SmolLM2-135M output; ``g-zh-c001``: a
composed row (``source``, with its ``style``); ``g-zh-w0001``: a row of the writers' round
(``source`` ``writer-a`` ... ``writer-l``, then ``writer-n`` ... ``writer-t``); ``g-en-r0001``: a
real SmolLM2-135M answer to a writer's own request, read and labelled by that writer
(``writer-e``, ``writer-q``)."""

Row = dict[str, Any]


def _load() -> list[Row]:
    rows: list[Row] = []
    with LABELS_PATH.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            assert line.strip(), f"blank line {lineno}"
            obj = json.loads(line)
            assert isinstance(obj, dict), f"line {lineno} is not a JSON object"
            rows.append(obj)
    return rows


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return _load()


def test_file_parses_and_is_large_enough(rows: list[Row]) -> None:
    assert len(rows) >= 600


def test_file_is_utf8_without_ascii_escapes() -> None:
    text = LABELS_PATH.read_text(encoding="utf-8")
    assert "\\u" not in text, "write with ensure_ascii=False"
    assert text.endswith("\n")


def test_fields_are_valid(rows: list[Row]) -> None:
    for row in rows:
        assert FIELDS <= set(row) <= FIELDS | OPTIONAL_FIELDS, row.get("id")
        assert all(isinstance(row[k], str) for k in set(row)), row["id"]
        assert row.get("source", "smollm2") in SOURCES, row["id"]
        kind = row["id"].split("-")[2]
        assert ("source" in row) == (kind[0] in "scwr"), row["id"]
        assert (kind[0] == "c") == (row.get("source") == "composed"), row["id"]
        assert (kind[0] in "wr") == row.get("source", "").startswith("writer-"), row["id"]
        assert (kind[0] == "r") == (row.get("source") in ("writer-e", "writer-q")), row["id"]
        if "response_language" in row:  # a few answers are in Spanish or French
            assert re.fullmatch("[a-z]{2}", row["response_language"]), row["id"]
            assert row["response_language"] != row["language"], row["id"]
        assert ID_RE.match(row["id"]), row["id"]
        assert row["id"].split("-")[1] == row["language"], row["id"]
        assert row["prompt"].strip(), row["id"]
        assert row["label"] in LABELS, row["id"]
        assert row["language"] in LANGUAGES, row["id"]
        assert row["category"] in CATEGORIES, row["id"]
        assert row["intent"] in INTENTS, row["id"]
        assert row["split"] in SPLITS, row["id"]
        if not row["response"].strip():
            assert row["label"] == "unusable", row["id"]


def test_ids_unique(rows: list[Row]) -> None:
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))


def test_no_duplicate_prompt_response_pairs(rows: list[Row]) -> None:
    pairs = Counter((row["prompt"], row["response"]) for row in rows)
    dupes = [pair for pair, n in pairs.items() if n > 1]
    assert not dupes, dupes[:3]


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_coverage(rows: list[Row], language: str) -> None:
    sub = [row for row in rows if row["language"] == language]
    assert len(sub) >= 200
    assert {row["label"] for row in sub} == LABELS
    assert {row["category"] for row in sub} == CATEGORIES
    assert len({row["prompt"] for row in sub}) >= 100
    assert {row["intent"] for row in sub} == INTENTS


@pytest.mark.parametrize("language", LANGUAGES)
def test_prompts_have_contrasting_responses(rows: list[Row], language: str) -> None:
    labels_by_prompt: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["language"] == language:
            labels_by_prompt[row["prompt"]].add(row["label"])
    multi = sum(1 for labels in labels_by_prompt.values() if len(labels) >= 2)
    assert multi >= 30


def test_prompt_metadata_is_consistent(rows: list[Row]) -> None:
    meta: dict[str, tuple[str, str, str, str]] = {}
    for row in rows:
        key = (row["language"], row["category"], row["intent"], row["split"])
        assert meta.setdefault(row["prompt"], key) == key, row["id"]


def test_no_prompt_in_both_splits(rows: list[Row]) -> None:
    splits: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        # whitespace-normalised, as the guardian groups prompts for splits and folds
        splits[" ".join(row["prompt"].split())].add(row["split"])
    leaked = [prompt for prompt, s in splits.items() if len(s) > 1]
    assert not leaked, leaked[:3]


@pytest.mark.parametrize("language", LANGUAGES)
def test_test_split_is_stratified(rows: list[Row], language: str) -> None:
    sub = [row for row in rows if row["language"] == language]
    test_labels = {row["label"] for row in sub if row["split"] == "test"}
    assert test_labels == LABELS
    prompts = {row["prompt"] for row in sub}
    test_prompts = {row["prompt"] for row in sub if row["split"] == "test"}
    assert 0.1 <= len(test_prompts) / len(prompts) <= 0.3


def test_each_label_is_well_represented(rows: list[Row]) -> None:
    counts = Counter(row["label"] for row in rows)
    for label in LABELS:
        assert counts[label] / len(rows) >= 0.10, (label, counts)


def test_generated_rows_reuse_hand_written_prompts(rows: list[Row]) -> None:
    hand = {row["prompt"] for row in rows if "source" not in row}
    generated = [row for row in rows if row.get("source") == "smollm2"]  # ids g-xx-sNNN
    assert len(generated) >= 100
    for row in generated:
        assert row["prompt"] in hand, row["id"]  # same category, intent and split: see above
        if row["language"] != "en":
            # SmolLM2-135M is English-only: every zh/ja answer of it was read and is garbage
            assert row["label"] == "unusable", row["id"]
    assert {row["split"] for row in generated} == SPLITS


def test_composed_rows_follow_their_style(rows: list[Row]) -> None:
    """Composed rows reuse hand-written answers (docs/guardian-data.md): their label follows
    from the style, and a language_mismatch row answers in another language than its request."""
    from medsafe.guardian.features import guess_language

    hand_responses = {row["response"] for row in rows if "source" not in row}
    composed = [row for row in rows if row.get("source") == "composed"]
    assert len(composed) >= 500
    for row in composed:
        style = row["style"]
        assert style in STYLES, row["id"]
        if style == "bare_affirmation":
            assert row["label"] == "unsafe" and row["intent"] == "harmful", row["id"]
        if style == "yes_question":
            assert row["label"] == "safe_helpful" and row["intent"] == "benign", row["id"]
        if style in ("opener", "partial") or style.startswith("long"):
            assert any(text in row["response"] for text in hand_responses), row["id"]
        if style == "language_mismatch":
            assert row["response"] in hand_responses, row["id"]
            assert guess_language(row["response"]) != row["language"], row["id"]
        assert row["label"] != "unusable", row["id"]


def test_writers_rows_are_their_own(rows: list[Row]) -> None:
    """Each writer of the writers' round wrote its own requests (none shared with another
    source), several answers per request, in both splits; the writer-e rows are SmolLM2's
    English answers (docs/guardian-data.md)."""
    source_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        source_of[" ".join(row["prompt"].split())].add(row.get("source", "hand"))
    writers = [row for row in rows if row.get("source", "").startswith("writer-")]
    assert len(writers) >= 2500
    for row in writers:
        assert source_of[" ".join(row["prompt"].split())] == {row["source"]}, row["id"]
        assert row["style"].strip(), row["id"]
    for letter in "abcdefghijkl":
        mine = [row for row in writers if row["source"] == f"writer-{letter}"]
        assert {row["split"] for row in mine} == SPLITS, letter
    real = [row for row in writers if row["source"] == "writer-e"]
    assert {row["language"] for row in real} == {"en"} and len(real) >= 100
