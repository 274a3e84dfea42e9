"""Evaluation items written from a rule: an ``open`` scenario, a multi-select MCQ and a red-team
seed, each tagged with the rule's scene and carrying its source.

Items are :class:`~medsafe.schema.Item` objects (``open``: the scenario as the user message and
the rule as ``reference``; ``mcq``: question, options A-F, key, and the rationale in
``metadata.rationale``). Red-team seeds are records for ``medsafe redteam build``
(``id``, ``prompt``, ``category``, ``language``). Every one carries ``rule_id``,
``section_ref`` and ``section_sha256`` (in ``metadata`` for items), which is what
``medsafe generate diff`` compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medsafe.authoring.documents import guess_language
from medsafe.authoring.replies import json_object, text_field
from medsafe.authoring.rules import Rejection, Rule
from medsafe.schema import OPTION_LETTERS, Item, Message, TaxonomyLabel
from medsafe.suites.prompting import mcq_messages


@dataclass(frozen=True)
class Seed:
    """A red-team seed request (a ``medsafe redteam build`` SEEDS line)."""

    id: str
    prompt: str
    category: str
    language: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSONL record."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "category": self.category,
            "language": self.language,
            "metadata": self.metadata,
        }


Generated = Item | Seed


def _check_language(text: str, language: str) -> None:
    found = guess_language(text)
    if found != language:
        raise ValueError(f"written in {found}, not {language}")


def text_of(entry: Generated) -> str:
    """The text deduplication compares: the scenario, the question and options, or the seed."""
    if isinstance(entry, Seed):
        return entry.prompt
    if entry.kind == "mcq":
        options = "\n".join(f"{k}. {v}" for k, v in sorted(entry.options.items()))
        return f"{entry.question}\n{options}"
    return entry.last_user_text()


def _meta(rule: Rule, framework: str, license_: str | None) -> dict[str, Any]:
    return {
        "rule_id": rule.id,
        "section_ref": rule.section_ref,
        "section_sha256": rule.section_sha256,
        "corpus": rule.corpus,
        "framework": framework,
        "license": license_,
    }


def parse_items(
    rule: Rule,
    language: str,
    reply: str | None,
    suite: str,
    framework: str,
    license_: str | None,
) -> tuple[list[Generated], list[Rejection]]:
    """The items of one items-stage reply; each bad part (or a bad reply) is a rejection."""
    base = f"{rule.id}-{language}"
    try:
        data = json_object(reply)
    except ValueError as exc:
        return [], [Rejection("items", base, rule.section_ref, str(exc))]
    lang: Any = language
    labels = (TaxonomyLabel(framework=framework, category=rule.scene),)
    meta = _meta(rule, framework, license_)
    common: dict[str, Any] = {
        "suite": suite,
        "language": lang,
        "category": rule.scene,
        "labels": labels,
        "source": f"{rule.corpus}:{rule.section_ref}",
        "license": license_,
    }
    out: list[Generated] = []
    rejected: list[Rejection] = []
    parts = {"open": data.get("open"), "mcq": data.get("mcq"), "redteam": data.get("redteam")}
    for kind, part in parts.items():
        item_id = f"{base}-{kind}"
        try:
            if not isinstance(part, dict):
                raise ValueError(f"field {kind!r} missing or not an object")
            if kind == "open":
                prompt = text_field(part, "prompt")
                _check_language(prompt, language)
                out.append(
                    Item(
                        id=item_id,
                        kind="open",
                        reference=f"{rule.statement}\n{rule.quote}",
                        messages=(Message(role="user", content=prompt),),
                        metadata=meta,
                        **common,
                    )
                )
            elif kind == "mcq":
                out.append(_mcq(item_id, part, language, rule, meta, common))
            else:
                seed = text_field(part, "seed")
                _check_language(seed, language)
                out.append(Seed(item_id, seed, rule.scene, language, meta))
        except ValueError as exc:
            rejected.append(Rejection("items", item_id, rule.section_ref, str(exc)))
    return out, rejected


def _mcq(
    item_id: str,
    part: dict[str, Any],
    language: str,
    rule: Rule,
    meta: dict[str, Any],
    common: dict[str, Any],
) -> Item:
    question = text_field(part, "question")
    rationale = text_field(part, "rationale")
    options = part.get("options")
    if not isinstance(options, dict) or not 2 <= len(options) <= 6:
        raise ValueError("field 'options' must map 2 to 6 letters to texts")
    letters = sorted(options)
    if letters != list(OPTION_LETTERS[: len(letters)]) or not all(
        isinstance(v, str) and v.strip() for v in options.values()
    ):
        raise ValueError("options must be lettered A, B, C... with non-empty texts")
    answer = part.get("answer")
    if not isinstance(answer, str) or not answer.strip() or not set(answer.strip()) <= set(letters):
        raise ValueError(f"answer {answer!r} must be letters of the options")
    _check_language(question, language)
    opts = {k: str(v).strip() for k, v in options.items()}
    lang: Any = language
    return Item(
        id=item_id,
        kind="mcq",
        question=question,
        options=opts,
        answer=answer.strip(),
        messages=mcq_messages(question, opts, lang, multi=True),
        reference=f"{rule.statement}\n{rule.quote}",
        metadata={**meta, "rationale": rationale, "multi": True},
        **common,
    )
