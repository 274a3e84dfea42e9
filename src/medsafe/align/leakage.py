"""The leakage guard: never train on evaluation items, nor on near-copies of them.

* An **evaluation item** is one whose ``metadata.split`` is ``test`` (the MedSafetyBench loader
  marks its ``test/`` split so) or whose id or suite belongs to a suite named with
  ``--eval-suite``. Training data built from one is refused (:class:`LeakageError`, exit 2,
  naming the items) unless ``allow_leak``.
* A training prompt that is a **near-duplicate** of an evaluation prompt is dropped and listed.
  The comparison is :func:`medsafe.authoring.dedup.near_duplicates` (MinHash of character
  3-grams, ``datasketch``, then optionally multilingual-e5 cosine for paraphrases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from medsafe.errors import MedsafeError
from medsafe.schema import Item

TEST_SPLIT = "test"
SHOWN = 10


class LeakageError(MedsafeError):
    """Training data would contain evaluation items."""


@dataclass(frozen=True)
class EvalSet:
    """What must not be trained on: item ids, suite names and prompts."""

    ids: frozenset[str] = frozenset()
    suites: frozenset[str] = frozenset()
    prompts: tuple[str, ...] = ()
    prompt_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, items: Sequence[Item], suites: Sequence[str] = ()) -> EvalSet:
        """The evaluation set made of ``items`` (from suites named ``suites``)."""
        return cls(
            ids=frozenset(i.id for i in items),
            suites=frozenset(suites),
            prompts=tuple(prompt_of(i) for i in items),
            prompt_ids=tuple(i.id for i in items),
        )


@dataclass(frozen=True)
class Dropped:
    """A training item dropped as a near-duplicate of an evaluation item."""

    item_id: str
    eval_item_id: str
    reason: str


def prompt_of(item: Item) -> str:
    """The item's last user message (its prompt), or its question."""
    users = [m.content for m in item.messages if m.role == "user"]
    return users[-1] if users else (item.question or "")


def is_evaluation(item: Item, evals: EvalSet) -> bool:
    """Whether ``item`` is itself an evaluation item."""
    return (
        item.metadata.get("split") == TEST_SPLIT
        or item.id in evals.ids
        or item.suite in evals.suites
    )


def refuse_evaluation_items(items: Sequence[Item], evals: EvalSet, allow_leak: bool) -> list[str]:
    """The ids of evaluation items among ``items``; raises unless ``allow_leak``."""
    leaked = sorted({i.id for i in items if is_evaluation(i, evals)})
    if leaked and not allow_leak:
        shown = ", ".join(leaked[:SHOWN]) + (
            f" and {len(leaked) - SHOWN} more" if len(leaked) > SHOWN else ""
        )
        raise LeakageError(
            f"{len(leaked)} evaluation item(s) (split 'test' or in --eval-suite) would become "
            f"training data: {shown}; train on another split, or pass --allow-leak"
        )
    return leaked


def near_duplicates_of_eval(
    items: Sequence[Item],
    evals: EvalSet,
    *,
    threshold: float,
    paraphrase_threshold: float | None,
) -> list[Dropped]:
    """The items whose prompt near-duplicates an evaluation prompt (each listed once)."""
    if not items or not evals.prompts:
        return []
    from medsafe.authoring.dedup import near_duplicates

    pairs = near_duplicates(
        [prompt_of(i) for i in items],
        list(evals.prompts),
        threshold=threshold,
        paraphrase_threshold=paraphrase_threshold,
    )
    return [
        Dropped(items[p.index].id, evals.prompt_ids[p.other], p.reason())
        for p in pairs
        if p.in_existing
    ]
