"""The ``mcq`` scorer: exact-match accuracy plus partial credit for multi-select items.

For each item it writes two scores: ``mcq`` (1.0 exact / 0.0 wrong / None unextracted) and
``mcq.partial`` (see :func:`partial_credit`). A failed generation is ``skipped``, never wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from medsafe.scale import Scale
from medsafe.schema import OPTION_LETTERS, Item, Score, Transcript
from medsafe.scorers.extract import Extraction, extract_letters
from medsafe.scoring import BaseScorer, ScorerConfig, register_scorer

NAME = "mcq"
PARTIAL = "mcq.partial"
VERSION = "3"
"""2: adds the ``restated option`` rule (a reply that is one option, restated); 3: Japanese
answer labels (解答/最終回答), 選択肢X, letters listed with 、, and short conclusions ("So: C")."""
SCALE = Scale(
    kind="binary",
    title="MCQ accuracy",
    lo=0,
    hi=1,
    labels=("correct", "incorrect", "unextracted"),
    levels=(0.0, 1.0),
    null_value=0.0,
    kappa="nominal",
)
"""Correct = 1; an unextracted answer (no value) counts as 0, as in ``accuracy``."""
PARTIAL_SCALE = Scale(
    kind="continuous",
    title="MCQ partial credit",
    lo=0,
    hi=1,
    null_value=0.0,
)


def partial_credit(chosen: str, answer: str) -> float:
    """1 if exact; |chosen|/|answer| if chosen is a non-empty strict subset; else 0.

    Any wrong letter gives 0. For a single-letter answer this equals exact-match accuracy.
    """
    picked, key = set(chosen), set(answer)
    if not key:
        raise ValueError("answer must be non-empty")
    if picked == key:
        return 1.0
    if picked and picked < key:
        return len(picked) / len(key)
    return 0.0


class MCQScorer(BaseScorer):
    """Extracts the chosen letters from the reply and compares them with the answer key."""

    name = NAME
    version = VERSION
    scale = SCALE
    extra_scales: ClassVar[Mapping[str, Scale]] = {PARTIAL: PARTIAL_SCALE}
    inline = True
    """Cheap and model-free: the runner scores each answer as soon as it arrives."""

    def applies_to(self, item: Item) -> bool:
        """MCQ items only."""
        return item.kind == "mcq"

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """Two scores (exact, partial) for an ok transcript; one skipped score otherwise."""
        if transcript.status == "failed":
            cause = transcript.error or "unknown cause"
            return [_skipped(item, f"generation failed: {cause}")]
        if item.answer is None:
            return [_skipped(item, "item has no answer key")]
        allowed = "".join(sorted(item.options)) or OPTION_LETTERS
        found = extract_letters(transcript.response or "", allowed, item.options)
        exact, partial, label = _grade(found, item.answer)
        extra: dict[str, Any] = {
            "extracted": found.letters,
            "partial": partial,
            "reason": found.reason,
            "answer": item.answer,
        }
        extra.update(_rotation_info(item))
        common: dict[str, Any] = {"item_id": item.id, "scorer_version": VERSION, "label": label}
        return [
            Score(scorer=NAME, value=exact, extra=extra, **common),
            Score(scorer=PARTIAL, value=partial, extra=dict(extra), **common),
        ]


def _rotation_info(item: Item) -> dict[str, Any]:
    if "rotation" not in item.metadata:
        return {}
    return {"base_id": item.metadata.get("base_id", item.id), "rotation": item.metadata["rotation"]}


def _skipped(item: Item, error: str) -> Score:
    return Score(
        item_id=item.id,
        scorer=NAME,
        scorer_version=VERSION,
        status="skipped",
        error=error,
        extra=_rotation_info(item),
    )


def _grade(found: Extraction, answer: str) -> tuple[float | None, float | None, str]:
    if found.status == "unextracted":
        return None, None, "unextracted"
    exact = 1.0 if set(found.letters) == set(answer) else 0.0
    return exact, partial_credit(found.letters, answer), "correct" if exact else "incorrect"


@register_scorer(NAME, {NAME: SCALE, PARTIAL: PARTIAL_SCALE}, builtin=True)
def create_mcq_scorer(config: ScorerConfig) -> MCQScorer:
    """Factory for the registry (the ``mcq`` scorer takes no options)."""
    return MCQScorer()
