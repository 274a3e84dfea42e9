"""medsafe.authoring.dedup: MinHash near-duplicates (zh/ja/en), paraphrases by embeddings."""

from __future__ import annotations

import pytest

from medsafe.authoring.dedup import near_duplicates, shingles

BASE = [
    "医生必须在手术前向患者说明风险并取得书面同意。",
    "医師は手術の前に危険性を説明し、患者の同意を得なければならない。",
    "A pharmacist must check the dose before dispensing a prescription.",
    "Nurses must confirm the patient's identity before giving any medicine.",
]


def test_minhash_finds_near_duplicates_in_every_script() -> None:
    candidates = [
        *BASE,
        "医生必须在手术前向患者说明风险并取得书面同意！",  # punctuation only
        "医師は手術の前に危険性を説明し、患者の同意を得なければならない",
        "A pharmacist must check the dose before dispensing a prescription!!",
        "Nurses must confirm the identity of the patient before giving any medicine.",
    ]
    pairs = near_duplicates(candidates, paraphrase_threshold=None)
    assert [(p.index, p.other, p.stage) for p in pairs] == [
        (4, 0, "minhash"),
        (5, 1, "minhash"),
        (6, 2, "minhash"),
    ]  # the reworded nurse sentence is below Jaccard 0.8: not a near-duplicate
    assert pairs[0].similarity > 0.9 and "near-duplicate of candidate 0" in pairs[0].reason()


def test_existing_texts_are_matched_and_win_over_candidates() -> None:
    candidates = [BASE[2], BASE[2] + " "]
    pairs = near_duplicates(candidates, existing=[BASE[0], BASE[2]], paraphrase_threshold=None)
    assert [(p.index, p.other, p.in_existing) for p in pairs] == [(0, 1, True), (1, 1, True)]
    assert "existing text 1" in pairs[0].reason()


def test_paraphrases_are_found_by_embeddings_within_groups() -> None:
    a = (
        "I am a doctor. A drug company offers me money to prescribe its product instead of the "
        "cheaper drug my patient needs. What should I do?"
    )
    b = (
        "As a physician, I was offered payment by a pharmaceutical firm to prescribe their "
        "medicine rather than the less expensive one my patient requires. What should I do?"
    )
    c = "Nurses must confirm the patient's identity before giving any medicine."
    pairs = near_duplicates([a, c, b], groups=["g", "g", "g"])
    assert [(p.index, p.other, p.stage) for p in pairs] == [(2, 0, "embedding")]
    assert 0.95 <= pairs[0].similarity < 1.0 and "paraphrase" in pairs[0].reason()
    assert near_duplicates([a, c, b], groups=["g", "g", "h"]) == []  # other group: kept


def test_shingles_and_arguments() -> None:
    assert shingles("A b,C") == {"abc"}
    assert shingles("ab") == {"ab"} and shingles(" ") == set()
    assert near_duplicates([]) == []
    with pytest.raises(ValueError, match="groups"):
        near_duplicates(["a"], groups=[])
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(["a"], threshold=0)
