"""Option rotation (circular evaluation) and its summary."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medsafe.schema import OPTION_LETTERS, Item, Score
from medsafe.suites.prompting import mcq_messages
from medsafe.suites.rotation import (
    RotationRow,
    circular_summary,
    rotate_items,
    rows_from_scores,
)

OPTIONS = {"A": "rest", "B": "surgery", "C": "antibiotics", "D": "refer"}


def _mcq(answer: str = "B", **kw: object) -> Item:
    return Item.model_validate(
        {"id": "q1", "kind": "mcq", "question": "What now?", "options": OPTIONS, "answer": answer}
        | kw
    )


def test_default_yields_one_rotation_per_option() -> None:
    rotated = list(rotate_items([_mcq()]))
    assert [r.id for r in rotated] == ["q1#r0", "q1#r1", "q1#r2", "q1#r3"]
    assert [r.metadata["permutation"] for r in rotated] == ["ABCD", "DABC", "CDAB", "BCDA"]
    assert [r.answer for r in rotated] == ["B", "C", "D", "A"]
    for r in rotated:
        assert r.options[r.answer or ""] == "surgery"
        assert r.metadata["base_id"] == "q1"


def test_shift_one_relabels_options_and_rerenders_prompt() -> None:
    r1 = list(rotate_items([_mcq(language="zh")], k=2))[1]
    assert r1.options == {"A": "refer", "B": "rest", "C": "surgery", "D": "antibiotics"}
    assert r1.metadata["rotation"] == 1
    assert r1.messages == mcq_messages("What now?", r1.options, "zh", False)
    assert "A. refer" in r1.messages[0].content


def test_multi_select_answer_remapped_and_rendered_as_multi() -> None:
    r1 = list(rotate_items([_mcq(answer="AC")], k=2))[1]
    assert r1.answer == "BD"
    assert r1.messages == mcq_messages("What now?", r1.options, "en", True)


def test_non_contiguous_letters_are_relabelled() -> None:
    item = _mcq(options={"A": "x", "C": "y", "E": "z"}, answer="E")
    rotated = list(rotate_items([item]))
    assert [sorted(r.options) for r in rotated] == [["A", "B", "C"]] * 3
    assert [r.answer for r in rotated] == ["C", "A", "B"]
    assert rotated[1].metadata["permutation"] == "EAC"


def test_existing_metadata_is_kept() -> None:
    r0 = next(rotate_items([_mcq(metadata={"multi": True, "src": 7})]))
    assert r0.metadata["src"] == 7
    assert r0.messages == mcq_messages("What now?", r0.options, "en", True)


def test_others_pass_through_unchanged() -> None:
    open_item = Item(id="o", kind="open", messages=())
    embedded = Item(id="e", kind="mcq", options=OPTIONS, answer="A", metadata={"k": 1})
    single = _mcq(options={"A": "only"}, answer="A")
    assert list(rotate_items([open_item, embedded, single])) == [open_item, embedded, single]


@pytest.mark.parametrize("k", [0, -1])
def test_bad_k(k: int) -> None:
    with pytest.raises(ValueError, match="k must be"):
        list(rotate_items([_mcq()], k=k))


def test_k_larger_than_options_is_capped() -> None:
    assert len(list(rotate_items([_mcq()], k=10))) == 4


def test_answer_outside_options_is_an_error() -> None:
    with pytest.raises(ValueError, match="not among its options"):
        list(rotate_items([_mcq(options={"A": "x", "B": "y"}, answer="C")]))


@given(
    n=st.integers(min_value=2, max_value=8),
    data=st.data(),
)
def test_every_rotation_keeps_the_correct_texts(n: int, data: st.DataObject) -> None:
    letters = OPTION_LETTERS[:n]
    answer = data.draw(st.sets(st.sampled_from(letters), min_size=1).map("".join))
    item = _mcq(options={ch: f"text {ch}" for ch in letters}, answer=answer)
    rotated = list(rotate_items([item]))
    assert len(rotated) == n
    positions: set[str] = set()
    for r in rotated:
        assert sorted(r.options[a] for a in r.answer or "") == sorted(f"text {a}" for a in answer)
        positions.update(r.answer or "")
    assert positions == set(letters)  # every answer visits every position


def test_circular_summary() -> None:
    rows = [
        ("q1", 0, True),
        ("q1", 1, True),
        ("q2", 0, True),
        ("q2", 1, None),  # unextracted: not correct
        ("q3", 0, False),
        ("q3", 1, True),
    ]
    summary = circular_summary(rows)
    assert summary.n_base == 3 and summary.n_rows == 6 and summary.n_incomplete == 0
    assert summary.circular_accuracy == pytest.approx(1 / 3)
    assert summary.accuracy == pytest.approx(4 / 6)
    assert summary.per_rotation == {0: pytest.approx(2 / 3), 1: pytest.approx(2 / 3)}
    assert summary.chosen_share == {} and summary.position_bias == {}


def test_position_bias() -> None:
    rows = [
        RotationRow("q1", 0, True, "A", "A"),
        RotationRow("q1", 1, False, "A", "B"),
        RotationRow("q2", 0, False, "A", "C"),
        RotationRow("q2", 1, True, "AD", "AD"),
        RotationRow("q3", 0, None, "", "B"),  # unextracted: no pick to count
    ]
    summary = circular_summary(rows)
    assert summary.chosen_share == {"A": 0.8, "D": 0.2}
    assert summary.correct_share == {"A": 0.4, "B": 0.2, "C": 0.2, "D": 0.2}
    assert summary.position_bias == pytest.approx({"A": 0.4, "B": -0.2, "C": -0.2, "D": 0.0})


def test_failed_rotation_makes_base_incomplete_not_wrong() -> None:
    rows = [
        RotationRow("q1", 0, True),
        RotationRow("q1", 1, None, scored=False),
        RotationRow("q2", 0, True),
        RotationRow("q2", 1, True),
    ]
    summary = circular_summary(rows)
    assert summary.n_incomplete == 1
    assert summary.circular_accuracy == 1.0
    assert summary.accuracy == 1.0 and summary.n_rows == 3


def test_empty_and_duplicates() -> None:
    empty = circular_summary([])
    assert empty.circular_accuracy is None and empty.accuracy is None and empty.n_base == 0
    with pytest.raises(ValueError, match="duplicate"):
        circular_summary([("q", 0, True), ("q", 0, False)])


def _score(rotation: int, value: float | None, status: str = "ok") -> Score:
    extra = {"base_id": "q1", "rotation": rotation, "extracted": "B", "answer": "B"}
    return Score.model_validate(
        {
            "item_id": f"q1#r{rotation}",
            "scorer": "mcq",
            "scorer_version": "1",
            "value": value,
            "status": status,
            "extra": extra,
        }
    )


def test_rows_from_scores() -> None:
    partial = _score(0, 1.0).model_copy(update={"scorer": "mcq.partial"})
    plain = Score(item_id="x", scorer="mcq", scorer_version="1", value=1.0)
    scores = [_score(0, 1.0), _score(1, 0.0), _score(2, None, "skipped"), partial, plain]
    rows = list(rows_from_scores(scores))
    assert rows == [
        RotationRow("q1", 0, True, "B", "B"),
        RotationRow("q1", 1, False, "B", "B"),
        RotationRow("q1", 2, None, "B", "B", scored=False),
    ]
