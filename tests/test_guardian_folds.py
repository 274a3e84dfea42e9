"""Cross-validation folds of guardian training: whole writers held out, or prompts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsafe.errors import SuiteError
from medsafe.guardian.train import MIN_HANDS, LabeledRow, _folds, load_labels

LABELS = ("refusal", "safe_helpful", "unsafe", "unusable")


def _row(i: int, source: str | None) -> LabeledRow:
    return LabeledRow(
        id=f"r{i}",
        prompt=f"prompt {i // 2}",
        response=f"answer {i}",
        label=LABELS[i % 4],
        language="en",
        category="ama-1",
        intent="harmful",
        split="train",
        source=source,
    )


def test_hand_joins_unsourced_and_derived_rows() -> None:
    assert _row(0, None).hand == ""
    assert _row(0, "smollm2").hand == "" and _row(0, "composed").hand == ""
    assert _row(0, "writer-b").hand == "writer-b"


def test_folds_hold_out_whole_writers() -> None:
    sources = [None, "writer-a", "writer-b", "writer-c", "composed"]
    rows = [_row(i, sources[i % 5]) for i in range(100)]
    hands = [r.hand for r in rows]
    x = np.zeros((len(rows), 2))
    folds = _folds(x, [r.label for r in rows], [r.group for r in rows], 0, hands)
    assert len(folds) == 4  # four hands: "", writer-a, writer-b, writer-c
    for train_idx, test_idx in folds:
        held = {hands[i] for i in test_idx}
        assert held.isdisjoint({hands[i] for i in train_idx})
    assert sorted(i for _, test_idx in folds for i in test_idx) == list(range(len(rows)))


def test_folds_group_prompts_below_min_hands() -> None:
    rows = [_row(i, "writer-a" if i % 2 else None) for i in range(100)]
    hands = [r.hand for r in rows]
    assert len(set(hands)) < MIN_HANDS
    x = np.zeros((len(rows), 2))
    folds = _folds(x, [r.label for r in rows], [r.group for r in rows], 0, hands)
    assert len(folds) == 5
    for train_idx, test_idx in folds:
        assert {rows[i].group for i in test_idx}.isdisjoint({rows[i].group for i in train_idx})
        assert {hands[i] for i in test_idx} == {"", "writer-a"}  # writers straddle folds


def test_source_must_be_a_string(tmp_path: Path) -> None:
    row = {
        "id": "a",
        "prompt": "p",
        "response": "r",
        "label": "refusal",
        "language": "en",
        "category": "ama-1",
        "intent": "harmful",
        "source": 3,
    }
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError) as err:
        load_labels(path)
    assert err.value.line == 1 and err.value.field == "source"
    path.write_text(json.dumps(row | {"source": "writer-a"}) + "\n", encoding="utf-8")
    assert load_labels(path)[0].hand == "writer-a"
