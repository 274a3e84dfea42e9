"""The ``mcq`` scorer: exact and partial scores, skips, registry and rotation metadata."""

from __future__ import annotations

from typing import Any

import pytest

from medsafe.schema import Item, ItemKind, Message, ModelParams, Transcript
from medsafe.scorers.mcq import MCQScorer, partial_credit
from medsafe.scoring import Scorer, ScorerConfig, create_scorer

OPTIONS = {"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"}


def _item(answer: str | None = "B", **kw: Any) -> Item:
    return Item(id="q1", kind="mcq", question="Q?", options=OPTIONS, answer=answer, **kw)


def _transcript(reply: str | None, status: str = "ok", error: str | None = None) -> Transcript:
    messages = [Message(role="user", content="Q?")]
    if reply is not None:
        messages.append(Message(role="assistant", content=reply))
    return Transcript.model_validate(
        {
            "run_id": "r",
            "item_id": "q1",
            "model": "m",
            "params": ModelParams(),
            "messages": messages,
            "status": status,
            "error": error,
        }
    )


def test_registered_and_protocol() -> None:
    scorer = create_scorer(ScorerConfig(name="mcq"))
    assert isinstance(scorer, MCQScorer) and isinstance(scorer, Scorer)
    assert (scorer.name, scorer.version) == ("mcq", "3")


@pytest.mark.parametrize(("kind", "applies"), [("mcq", True), ("open", False)])
def test_applies_to(kind: ItemKind, applies: bool) -> None:
    assert MCQScorer().applies_to(Item(id="x", kind=kind)) is applies


@pytest.mark.parametrize(
    ("answer", "reply", "value", "partial", "label", "extracted"),
    [
        ("B", "Answer: B", 1.0, 1.0, "correct", "B"),
        ("B", "答案：C", 0.0, 0.0, "incorrect", "C"),
        ("ACD", "正解：A・C・D", 1.0, 1.0, "correct", "ACD"),
        ("ACD", "Answer: AC", 0.0, 2 / 3, "incorrect", "AC"),
        ("ACD", "Answer: A", 0.0, 1 / 3, "incorrect", "A"),
        ("ACD", "Answer: ABC", 0.0, 0.0, "incorrect", "ABC"),
        ("ACD", "Answer: ABCDE", 0.0, 0.0, "incorrect", "ABCDE"),
        ("B", "I can't answer this.", None, None, "unextracted", ""),
        ("B", "Answer: F", None, None, "unextracted", ""),
    ],
)
async def test_scores(
    answer: str,
    reply: str,
    value: float | None,
    partial: float | None,
    label: str,
    extracted: str,
) -> None:
    exact_score, partial_score = await MCQScorer().score(_item(answer), _transcript(reply))
    assert (exact_score.scorer, partial_score.scorer) == ("mcq", "mcq.partial")
    assert exact_score.value == value
    assert MCQScorer().scales()["mcq"].kind == "binary"
    if partial is None:
        assert partial_score.value is None
    else:
        assert partial_score.value == pytest.approx(partial)
    assert exact_score.label == partial_score.label == label
    assert exact_score.status == partial_score.status == "ok"
    assert exact_score.extra["extracted"] == extracted
    assert exact_score.extra["partial"] == partial_score.value
    assert exact_score.item_id == "q1" and exact_score.scorer_version == "3"


async def test_reason_is_recorded() -> None:
    scores = await MCQScorer().score(_item(), _transcript("Answer: F"))
    assert scores[0].extra["reason"] == "letter outside options F"


async def test_failed_generation_is_skipped_not_wrong() -> None:
    scores = await MCQScorer().score(_item(), _transcript(None, "failed", "timeout after 3 tries"))
    assert len(scores) == 1
    assert scores[0].status == "skipped" and scores[0].value is None
    assert scores[0].error == "generation failed: timeout after 3 tries"


async def test_item_without_answer_is_skipped() -> None:
    scores = await MCQScorer().score(_item(answer=None), _transcript("Answer: B"))
    assert [s.status for s in scores] == ["skipped"]


async def test_missing_reply_is_unextracted() -> None:
    scores = await MCQScorer().score(_item(), _transcript(None))
    assert scores[0].label == "unextracted" and scores[0].extra["reason"] == "empty response"


async def test_options_limit_allowed_letters() -> None:
    item = Item(id="q", kind="mcq", options={"A": "x", "B": "y"}, answer="A")
    scores = await MCQScorer().score(item, _transcript("Answer: C"))
    assert scores[0].label == "unextracted"


async def test_rotation_metadata_is_copied() -> None:
    item = _item(metadata={"base_id": "q0", "rotation": 2, "permutation": "DEABC"})
    scores = await MCQScorer().score(item, _transcript("Answer: B"))
    for score in scores:
        assert score.extra["base_id"] == "q0" and score.extra["rotation"] == 2
    plain = await MCQScorer().score(_item(), _transcript("Answer: B"))
    assert "rotation" not in plain[0].extra and "base_id" not in plain[0].extra


@pytest.mark.parametrize(
    ("chosen", "answer", "expected"),
    [("A", "A", 1.0), ("B", "A", 0.0), ("AB", "ABCD", 0.5), ("AE", "ABCD", 0.0), ("", "AB", 0.0)],
)
def test_partial_credit(chosen: str, answer: str, expected: float) -> None:
    assert partial_credit(chosen, answer) == expected


def test_partial_credit_needs_answer() -> None:
    with pytest.raises(ValueError, match="answer"):
        partial_credit("A", "")
