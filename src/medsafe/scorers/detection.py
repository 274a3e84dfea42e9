"""The ``detection`` scorer: multi-label error/criterion detection against a declared label set.

A detection item carries ``metadata.label_set`` (the labels a model may report) and
``metadata.expected`` (those present; ``[]`` = no problem), optionally ``metadata.synonyms``
(``{label: [names]}``), ``metadata.locations`` (``{label: "findings"|"impression"}``) and
``metadata.cluster`` (the image or report several items share; default: the report id, the
first attachment, else the item id). Each answer is parsed by
:class:`medsafe.imaging.labels.LabelParser`; the score's value is exact match (1/0), and the
extras carry both label sets, which the results layer turns into per-label P/R/F1, micro- and
macro-F1 with cluster bootstrap intervals (:mod:`medsafe.results.detection`). An unparsed
answer is an ok score with no value and the label ``unparsed``: counted, never scored.
"""

from __future__ import annotations

from typing import Any

from medsafe.imaging.labels import parser_for
from medsafe.scale import Scale
from medsafe.schema import Item, Score, Transcript
from medsafe.scoring import BaseScorer, ScorerConfig, register_scorer

NAME = "detection"
VERSION = "1"
SCALE = Scale(
    kind="binary",
    title="Detection exact match",
    lo=0,
    hi=1,
    labels=("exact", "mismatch", "unparsed"),
    levels=(0.0, 1.0),
    kappa="nominal",
)
"""1 when the predicted label set equals the reference set; unparsed answers have no value."""
CONFIRMED = "detection.confirmed"
CONFIRMED_SCALE = Scale(
    kind="continuous",
    title="Additional discoveries confirmed",
    lo=0,
    hi=1,
)
"""Reviewers' verdicts on the labels a model flagged beyond the reference (``medsafe qc
discoveries``): per item, the share of its flagged labels confirmed (judge ``human``)."""


def cluster_of(item: Item) -> str:
    """The unit a detection item belongs to (its image or report), for clustered intervals."""
    meta = item.metadata
    for name in ("cluster", "report_id", "image"):
        value = meta.get(name)
        if isinstance(value, str | int) and str(value):
            return str(value)
    if item.attachments:
        first = item.attachments[0]
        return first.sha256 or first.path
    return item.id


def item_labels(item: Item) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(label_set, expected)`` of a detection item; ValueError when they are malformed."""
    label_set = item.metadata.get("label_set")
    expected = item.metadata.get("expected")
    if not isinstance(label_set, list) or not label_set:
        raise ValueError("item has no label_set")
    if not isinstance(expected, list):
        raise ValueError("item has no expected list")
    names = tuple(str(x) for x in label_set)
    wanted = tuple(str(x) for x in expected)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ValueError(f"expected labels {unknown} are not in the label_set")
    return names, wanted


class DetectionScorer(BaseScorer):
    """Parses the labels a model reports and compares them with the reference set."""

    name = NAME
    version = VERSION
    scale = SCALE
    inline = True

    def applies_to(self, item: Item) -> bool:
        """Detection items only."""
        return item.kind == "detection"

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """One score per item: exact match with both label sets in the extras."""
        if transcript.status == "failed":
            return [_skipped(item, f"generation failed: {transcript.error or 'unknown cause'}")]
        try:
            label_set, expected = item_labels(item)
            synonyms = item.metadata.get("synonyms") or {}
            parser = parser_for(label_set, synonyms)
        except ValueError as exc:
            return [_skipped(item, str(exc))]
        parsed = parser.parse(transcript.response)
        extra: dict[str, Any] = {
            "label_set": list(label_set),
            "expected": sorted(expected),
            "cluster": cluster_of(item),
            "expected_locations": dict(item.metadata.get("locations") or {}),
        }
        if parsed.status == "unparsed":
            extra.update(predicted=None, ignored=list(parsed.ignored))
            return [_score(item, None, "unparsed", extra)]
        predicted = sorted(parsed.labels)
        extra.update(
            predicted=predicted,
            predicted_locations=dict(parsed.locations),
            suggestions=dict(parsed.suggestions),
            ignored=list(parsed.ignored),
        )
        exact = set(predicted) == set(expected)
        return [_score(item, 1.0 if exact else 0.0, "exact" if exact else "mismatch", extra)]


def _score(item: Item, value: float | None, label: str, extra: dict[str, Any]) -> Score:
    return Score(
        item_id=item.id, scorer=NAME, scorer_version=VERSION, value=value, label=label, extra=extra
    )


def _skipped(item: Item, error: str) -> Score:
    return Score(
        item_id=item.id, scorer=NAME, scorer_version=VERSION, status="skipped", error=error
    )


@register_scorer(NAME, {NAME: SCALE, CONFIRMED: CONFIRMED_SCALE}, builtin=True)
def create_detection_scorer(config: ScorerConfig) -> DetectionScorer:
    """Factory for the registry (the ``detection`` scorer takes no options)."""
    return DetectionScorer()
