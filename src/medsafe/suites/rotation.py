"""Option rotation (circular evaluation, MMBench: Liu et al. 2023, arXiv:2307.06281).

Each MCQ is asked once per circular shift of its options; it counts as solved only if every
shift is answered correctly. Comparing where the model's picks land with where the correct
answers were shows position bias (e.g. a preference for "A").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from medsafe.schema import OPTION_LETTERS, Item, Score
from medsafe.suites.prompting import mcq_messages


def _is_multi(item: Item) -> bool:
    return item.metadata.get("multi") is True or len(item.answer or "") > 1


def rotate(item: Item, shift: int) -> Item:
    """``item`` with its options circularly shifted by ``shift`` (shift 1: ABCD -> DABC)."""
    if item.question is None:
        raise ValueError(f"item {item.id!r} has no separate question to re-render")
    old = sorted(item.options)
    n = len(old)
    perm = [old[(i - shift) % n] for i in range(n)]  # perm[i]: original letter now at i
    new_of = {orig: OPTION_LETTERS[i] for i, orig in enumerate(perm)}
    options = {OPTION_LETTERS[i]: item.options[orig] for i, orig in enumerate(perm)}
    answer = None if item.answer is None else "".join(sorted(new_of[a] for a in item.answer))
    metadata = {
        **item.metadata,
        "base_id": item.id,
        "rotation": shift,
        "permutation": "".join(perm),
    }
    return item.model_copy(
        update={
            "id": f"{item.id}#r{shift}",
            "options": options,
            "answer": answer,
            "messages": mcq_messages(item.question, options, item.language, _is_multi(item)),
            "metadata": metadata,
        }
    )


def rotate_items(items: Iterable[Item], k: int | None = None) -> Iterator[Item]:
    """Yield ``k`` rotations (default: one per option) of each MCQ; pass other items through."""
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    for item in items:
        if item.kind != "mcq" or item.question is None or len(item.options) < 2:
            yield item
            continue
        n = len(item.options)
        if item.answer is not None and any(a not in item.options for a in item.answer):
            raise ValueError(f"item {item.id!r}: answer {item.answer!r} is not among its options")
        for shift in range(min(k or n, n)):
            yield rotate(item, shift)


class RotationRow(NamedTuple):
    """One rotated item's outcome; ``extracted``/``answer`` (letters) feed position bias.

    ``scored`` is False when generation failed: the row is then neither right nor wrong, and
    its base item is left out of circular accuracy (counted in ``n_incomplete``).
    """

    base_id: str
    rotation: int
    correct: bool | None
    extracted: str = ""
    answer: str = ""
    scored: bool = True


@dataclass(frozen=True)
class CircularSummary:
    """Circular and per-rotation accuracy, plus position shares of picks vs answers."""

    n_base: int
    n_incomplete: int
    n_rows: int
    circular_accuracy: float | None
    accuracy: float | None
    per_rotation: dict[int, float]
    chosen_share: dict[str, float]
    correct_share: dict[str, float]

    @property
    def position_bias(self) -> dict[str, float]:
        """chosen share minus correct share per position letter (> 0: over-picked)."""
        letters = sorted(set(self.chosen_share) | set(self.correct_share))
        return {
            ch: self.chosen_share.get(ch, 0.0) - self.correct_share.get(ch, 0.0) for ch in letters
        }


def _shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {ch: counts[ch] / total for ch in sorted(counts)} if total else {}


def circular_summary(
    rows: Iterable[RotationRow | tuple[str, int, bool | None]],
) -> CircularSummary:
    """Summarise rows of ``(base_id, rotation, correct)`` (or :class:`RotationRow`).

    ``None`` (unextracted) counts as not correct. A base item is circularly correct only if all
    its rows are. Position shares use only rows that carry extracted and answer letters.
    """
    by_base: dict[str, dict[int, bool | None]] = defaultdict(dict)
    chosen: Counter[str] = Counter()
    keyed: Counter[str] = Counter()
    for raw in rows:
        row = RotationRow(*raw)
        if row.rotation in by_base[row.base_id]:
            raise ValueError(f"duplicate row for {row.base_id!r} rotation {row.rotation}")
        by_base[row.base_id][row.rotation] = (row.correct is True) if row.scored else None
        if row.correct is not None and row.extracted and row.answer:
            chosen.update(row.extracted)
            keyed.update(row.answer)
    per_rotation: dict[int, list[bool]] = defaultdict(list)
    for outcomes in by_base.values():
        for rotation, ok in outcomes.items():
            if ok is not None:
                per_rotation[rotation].append(ok)
    complete = [o for o in by_base.values() if None not in o.values()]
    flat = [ok for oks in per_rotation.values() for ok in oks]
    return CircularSummary(
        n_base=len(by_base),
        n_incomplete=len(by_base) - len(complete),
        n_rows=len(flat),
        circular_accuracy=_mean(all(o.values()) for o in complete),
        accuracy=_mean(flat),
        per_rotation={r: sum(oks) / len(oks) for r, oks in sorted(per_rotation.items())},
        chosen_share=_shares(chosen),
        correct_share=_shares(keyed),
    )


def _mean(values: Iterable[bool]) -> float | None:
    seen = list(values)
    return sum(seen) / len(seen) if seen else None


def rows_from_scores(scores: Iterable[Score]) -> Iterator[RotationRow]:
    """Rows for :func:`circular_summary` from ``mcq`` scores of rotated items.

    A ``skipped``/``failed`` score (generation failed) becomes a row with ``scored=False``.
    """
    for score in scores:
        if score.scorer != "mcq" or "rotation" not in score.extra:
            continue
        yield RotationRow(
            base_id=str(score.extra["base_id"]),
            rotation=int(score.extra["rotation"]),
            correct=None if score.value is None else score.value == 1.0,
            extracted=str(score.extra.get("extracted", "")),
            answer=str(score.extra.get("answer", "")),
            scored=score.status == "ok",
        )
