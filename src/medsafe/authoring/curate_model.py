"""The records of ``medsafe curate``: options, rounds, reviews and the items it curates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medsafe.authoring.rubric import Rubric
from medsafe.authoring.stages import ModelTarget
from medsafe.errors import SuiteError
from medsafe.schema import Item

Decision = Literal["accepted", "revise", "unresolved", "waiting"]


class Review(BaseModel):
    """One reviewer's scores of one rationale."""

    model_config = ConfigDict(frozen=True)

    reviewer: str
    kind: Literal["llm", "expert", "adjudicator"]
    scores: dict[str, int] = Field(default_factory=dict)
    feedback: str = ""
    error: str | None = None
    edit: str | None = None


class Round(BaseModel):
    """One round of one item: the rationale, its reviews and what was decided."""

    round: int
    rationale: str
    author: str
    reviews: list[Review] = Field(default_factory=list)
    decision: Decision = "waiting"
    reason: str = ""
    scores: dict[str, float] = Field(default_factory=dict)
    """The deciding scores (reviewers' mean or the adjudicator's)."""


@dataclass(frozen=True)
class CurateOptions:
    """What ``medsafe curate`` was told."""

    suite: str
    writer: ModelTarget
    out: Path
    db: Path
    rubric: Rubric
    judges: tuple[ModelTarget, ...] = ()
    experts: tuple[str, ...] = ()
    adjudicator: ModelTarget | None = None
    k: int | None = None
    """Reviews needed for consensus (default: every reviewer)."""
    margin: float = 1.0
    max_rounds: int = 3
    review_in: Literal["files", "workbench"] = "files"
    suite_rationales: bool = False
    """Round 1 reviews an item's own ``metadata.rationale`` (when it has one) instead of asking
    the writer."""
    """Where experts label: the round's review file, or a review task in the store (the
    workbench, ``medsafe serve``) on the round's rationale run."""
    show_progress: bool = False
    notify: Callable[[str], None] | None = field(default=None, compare=False)


@dataclass
class CurateOutcome:
    """Where curation stands."""

    rounds: dict[str, list[Round]]
    status: dict[str, Decision]
    waiting_on: list[str] = field(default_factory=list)
    """Review files or review tasks still missing expert labels."""

    def counts(self) -> dict[str, int]:
        """Items per status."""
        out: dict[str, int] = {}
        for s in self.status.values():
            out[s] = out.get(s, 0) + 1
        return out


def question_of(item: Item) -> tuple[str, str]:
    """(question shown to the writer and reviewers, answer key)."""
    if item.kind == "mcq" and item.options and item.answer:
        options = "\n".join(f"{k}. {v}" for k, v in sorted(item.options.items()))
        return f"{item.question or item.last_user_text()}\n{options}", item.answer
    if item.reference:
        return item.last_user_text() or (item.question or ""), item.reference
    raise SuiteError(
        "curate needs an answer (an MCQ key or an open item's reference)",
        path=item.suite or None,
        field=f"item {item.id}",
    )


def load_curation_items(suite: str) -> list[Item]:
    """The suite's items, each checked to have a known answer."""
    from medsafe.suites import load_items

    items = load_items(suite)
    for item in items:
        question_of(item)
    if not items:
        raise SuiteError("the suite has no items", path=suite)
    return items
