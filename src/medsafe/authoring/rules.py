"""Normative rules extracted from corpus sections, each with its exact source span.

A rule is kept only if its ``quote`` is found verbatim in its section (the first occurrence
gives the span: character offsets in the section and in the document), its deontic type is
``must``, ``must_not`` or ``may``, it names at least one actor and its scene is a category of
the taxonomy framework in use (any non-empty scene for the framework ``corpus``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from medsafe.authoring.corpus import StoredSection
from medsafe.authoring.replies import json_object, text_field

DEONTIC = ("must", "must_not", "may")


@dataclass(frozen=True)
class Rule:
    """One normative rule and where it is written."""

    id: str
    corpus: str
    doc_id: str
    section_id: str
    section_ref: str
    section_sha256: str
    language: str
    quote: str
    start: int
    """Offset of the quote in the section text."""
    end: int
    doc_start: int
    """Offset of the quote in the document text (section start + ``start``)."""
    doc_end: int
    statement: str
    deontic: str
    actors: tuple[str, ...]
    scene: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``actors`` as a list)."""
        data = asdict(self)
        data["actors"] = list(self.actors)
        return data


@dataclass(frozen=True)
class Rejection:
    """Something generation dropped, with why."""

    stage: str
    id: str
    source: str
    reason: str


def parse_rules(
    section: StoredSection, reply: str | None, scenes: frozenset[str] | None
) -> tuple[list[Rule], list[Rejection]]:
    """The rules of one rules-stage reply; each bad rule (or a bad reply) is a rejection.

    ``scenes``: the allowed scene ids (None: any non-empty scene).
    """
    try:
        raw = json_object(reply).get("rules")
        if not isinstance(raw, list):
            raise ValueError("field 'rules' missing or not a list")
    except ValueError as exc:
        return [], [Rejection("rules", section.ref, section.ref, str(exc))]
    rules: list[Rule] = []
    rejected: list[Rejection] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        tag = f"{section.ref} rule {n}"
        try:
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
            quote = text_field(entry, "quote")
            at = section.text.find(quote)
            if at < 0:
                raise ValueError(f"quote not found verbatim in the section: {quote[:80]!r}")
            deontic = text_field(entry, "deontic")
            if deontic not in DEONTIC:
                raise ValueError(f"deontic {deontic!r} is not one of {', '.join(DEONTIC)}")
            actors = entry.get("actors")
            if (
                not isinstance(actors, list)
                or not actors
                or not all(isinstance(a, str) and a.strip() for a in actors)
            ):
                raise ValueError("field 'actors' must be a non-empty list of strings")
            scene = text_field(entry, "scene")
            if scenes is not None and scene not in scenes:
                raise ValueError(f"scene {scene!r} is not a category of the taxonomy in use")
            statement = text_field(entry, "statement")
        except ValueError as exc:
            rejected.append(Rejection("rules", tag, section.ref, str(exc)))
            continue
        digest = hashlib.sha256(f"{section.ref}\n{quote}\n{deontic}".encode()).hexdigest()
        rule_id = f"r-{digest[:12]}"
        if rule_id in seen:
            rejected.append(Rejection("rules", tag, section.ref, f"repeats rule {rule_id}"))
            continue
        seen.add(rule_id)
        rules.append(
            Rule(
                rule_id,
                section.corpus,
                section.doc_id,
                section.section_id,
                section.ref,
                section.sha256,
                section.language,
                quote,
                at,
                at + len(quote),
                section.start + at,
                section.start + at + len(quote),
                statement,
                deontic,
                tuple(a.strip() for a in actors),
                scene,
            )
        )
    return rules, rejected
