"""The ``classification`` scorer: which class (disease) a model names for an item.

A classification item (typically ``kind: image``) carries ``metadata.classes`` (the classes a
model may answer) and ``metadata.label`` (the reference class), optionally
``metadata.synonyms`` (``{class: [names]}``) and ``metadata.modality`` (``fundus``, ``oct``...).
The answer is read with the tolerant label parser; exactly one class must be named, otherwise
the answer is ``unparsed`` (counted, never scored). The value is 1 when the class is right.
Per-class sensitivity/specificity/PPV, the confusion matrix, macro-F1, Cohen's kappa and
accuracy by modality are computed by :mod:`medsafe.results.classification`.
"""

from __future__ import annotations

from typing import Any

from medsafe.imaging.labels import parser_for
from medsafe.scale import Scale
from medsafe.schema import Item, Score, Transcript
from medsafe.scoring import BaseScorer, ScorerConfig, register_scorer

NAME = "classification"
VERSION = "1"
SCALE = Scale(
    kind="binary",
    title="Classification accuracy",
    lo=0,
    hi=1,
    labels=("correct", "incorrect", "unparsed"),
    levels=(0.0, 1.0),
    kappa="nominal",
)


def item_classes(item: Item) -> tuple[tuple[str, ...], str]:
    """``(classes, reference)`` of a classification item; ValueError when malformed."""
    classes = item.metadata.get("classes")
    label = item.metadata.get("label")
    if not isinstance(classes, list) or len(classes) < 2:
        raise ValueError("item has no classes (at least two)")
    names = tuple(str(c) for c in classes)
    if label is None or str(label) not in names:
        raise ValueError(f"reference label {label!r} is not among the classes")
    return names, str(label)


class ClassificationScorer(BaseScorer):
    """Reads the one class an answer names and compares it with the reference."""

    name = NAME
    version = VERSION
    scale = SCALE
    inline = True

    def applies_to(self, item: Item) -> bool:
        """Items that declare classes and a reference label."""
        return "classes" in item.metadata and "label" in item.metadata

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """One score: correct (1) / incorrect (0) / unparsed (no value)."""
        if transcript.status == "failed":
            return [_skipped(item, f"generation failed: {transcript.error or 'unknown cause'}")]
        try:
            classes, reference = item_classes(item)
            synonyms = item.metadata.get("synonyms") or {}
            parser = parser_for(classes, synonyms)
        except ValueError as exc:
            return [_skipped(item, str(exc))]
        parsed = parser.parse(transcript.response)
        extra: dict[str, Any] = {
            "classes": list(classes),
            "reference": reference,
            "modality": str(item.metadata.get("modality") or ""),
        }
        if parsed.status == "unparsed" or len(parsed.labels) != 1:
            extra["predicted"] = None
            extra["named"] = sorted(parsed.labels)
            return [_score(item, None, "unparsed", extra)]
        (predicted,) = parsed.labels
        extra["predicted"] = predicted
        right = predicted == reference
        return [_score(item, 1.0 if right else 0.0, "correct" if right else "incorrect", extra)]


def _score(item: Item, value: float | None, label: str, extra: dict[str, Any]) -> Score:
    return Score(
        item_id=item.id, scorer=NAME, scorer_version=VERSION, value=value, label=label, extra=extra
    )


def _skipped(item: Item, error: str) -> Score:
    return Score(
        item_id=item.id, scorer=NAME, scorer_version=VERSION, status="skipped", error=error
    )


@register_scorer(NAME, {NAME: SCALE}, builtin=True)
def create_classification_scorer(config: ScorerConfig) -> ClassificationScorer:
    """Factory for the registry (no options)."""
    return ClassificationScorer()
