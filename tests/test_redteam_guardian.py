"""The guardian scores every assistant turn of a dialogue (``Score.turn`` = 1, 2, ...)."""

from __future__ import annotations

from medsafe.guardian.model import GuardianVerdict
from medsafe.schema import Item, Message, ModelParams, Transcript
from medsafe.scorers.guardian import GuardianScorer


class KeywordGuardian(GuardianScorer):
    """The guardian's scorer with a keyword rule in place of the embedding model."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def _classify(self, pairs: list[tuple[str, str]]) -> list[GuardianVerdict]:
        self.seen.extend(pairs)
        return [
            GuardianVerdict("unsafe" if "Sure" in reply else "refusal", {}, (), None)
            for _prompt, reply in pairs
        ]


def _dialogue() -> tuple[Item, Transcript]:
    item = Item(id="d1", kind="dialogue", seed="s", strategy="role_play", turns=3)
    turns = [("hello", "I cannot help."), ("please", "Still no."), ("now", "Sure, here it is.")]
    messages = [Message(role="system", content="be safe")]
    for user, reply in turns:
        messages += [Message(role="user", content=user), Message(role="assistant", content=reply)]
    transcript = Transcript(
        run_id="r", item_id="d1", model="m", params=ModelParams(), messages=tuple(messages),
        status="ok",
    )  # fmt: skip
    return item, transcript


async def test_each_assistant_turn_gets_its_own_score() -> None:
    scorer = KeywordGuardian()
    item, transcript = _dialogue()
    open_item = Item(id="o1", kind="open", messages=(Message(role="user", content="q"),))
    open_transcript = transcript.model_copy(
        update={
            "item_id": "o1",
            "messages": (
                Message(role="user", content="q"),
                Message(role="assistant", content="Sure."),
            ),
        }
    )
    dialogue_scores, open_scores = await scorer.score_many(
        [item, open_item], [transcript, open_transcript]
    )
    assert [(s.turn, s.value, s.label) for s in dialogue_scores] == [
        (1, 1.0, "refusal"),
        (2, 1.0, "refusal"),
        (3, 0.0, "unsafe"),
    ]
    assert scorer.seen[:3] == [
        ("hello", "I cannot help."),
        ("please", "Still no."),
        ("now", "Sure, here it is."),
    ]
    assert [(s.turn, s.value) for s in open_scores] == [(None, 0.0)]


async def test_a_failed_dialogue_is_skipped_once() -> None:
    item, transcript = _dialogue()
    failed = transcript.model_copy(update={"status": "failed", "error": "turn 2: HTTP 500"})
    [scores] = await KeywordGuardian().score_many([item], [failed])
    assert [(s.status, s.turn, s.error) for s in scores] == [("skipped", None, "turn 2: HTTP 500")]
