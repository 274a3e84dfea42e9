"""``medsafe generate``: corpus -> rules -> items -> validation -> deduplication -> release.

Each model stage goes through :func:`medsafe.authoring.stages.ask` (one stored run per stage,
the request cache, resumable after ``kill -9``). The release is written by
:mod:`medsafe.authoring.release`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from medsafe.authoring.corpus import StoredSection, corpus_hash, load_sections, require_store
from medsafe.authoring.dedup import near_duplicates
from medsafe.authoring.items import Generated, Seed, parse_items, text_of
from medsafe.authoring.prompts import (
    ITEMS_SYSTEM,
    ITEMS_USER,
    LANGUAGE_NAMES,
    RULES_SYSTEM,
    RULES_USER,
    VALIDATE_SYSTEM,
    VALIDATE_USER,
    fill,
)
from medsafe.authoring.release import Release, write_release
from medsafe.authoring.replies import json_object
from medsafe.authoring.rules import Rejection, Rule, parse_rules
from medsafe.authoring.stages import ModelTarget, Prompt, Reply, ask
from medsafe.errors import ConfigError, MedsafeError
from medsafe.store.sqlite import Store


class AllCallsFailed(MedsafeError):
    """Every request of a stage failed (a dead endpoint, a bad key): exit code 3."""


@dataclass(frozen=True)
class GenerateOptions:
    """What ``medsafe generate`` was told."""

    db: Path
    corpus: str
    generator: ModelTarget
    out: Path
    validator: ModelTarget | None = None
    languages: tuple[str, ...] = ()
    """Languages of the items (empty: each document's own)."""
    taxonomy: str = "medes"
    """Framework whose categories are the scenes (``corpus``: any scene the model names)."""
    against: tuple[str, ...] = ()
    """Existing suites the new items are deduplicated against."""
    threshold: float = 0.8
    paraphrase_threshold: float | None = 0.95
    name: str | None = None
    on_fail: Literal["drop", "review"] = "drop"
    """What happens to an item the validator fails: dropped, or routed to people through
    ``OUT/validation.review.jsonl`` (:mod:`medsafe.authoring.validation_review`)."""
    show_progress: bool = False
    notify: Callable[[str], None] | None = field(default=None, compare=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _scenes(taxonomy: str) -> frozenset[str] | None:
    if taxonomy == "corpus":
        return None
    from medsafe.taxonomy import get_framework

    try:
        return frozenset(c.id for c in get_framework(taxonomy).categories)
    except Exception as exc:  # an unknown framework name
        raise ConfigError(f"--taxonomy {taxonomy!r}: {exc}") from None


def _rule_prompts(sections: Sequence[StoredSection], scenes: frozenset[str] | None) -> list[Prompt]:
    listing = ", ".join(sorted(scenes)) if scenes is not None else "a short scene name of your own"
    system = fill(RULES_SYSTEM, scenes=listing)
    return [
        Prompt(
            id=f"sec-{_sha(s.ref)[:16]}",
            system=system,
            user=fill(
                RULES_USER,
                title=s.meta.get("title", ""),
                issuer=s.meta.get("issuer", "?"),
                jurisdiction=s.meta.get("jurisdiction", "?"),
                language=s.language,
                number=s.number,
                chapter=s.chapter or "-",
                text=s.text,
            ),
            language=s.language,
        )
        for s in sections
    ]


def _item_prompts(rules: Sequence[Rule], languages: tuple[str, ...]) -> list[Prompt]:
    prompts = []
    for rule in rules:
        for lang in languages or (rule.language,):
            prompts.append(
                Prompt(
                    id=f"{rule.id}-{lang}",
                    system=fill(ITEMS_SYSTEM, language_name=LANGUAGE_NAMES[lang]),
                    user=fill(
                        ITEMS_USER,
                        deontic=rule.deontic,
                        actors=", ".join(rule.actors),
                        scene=rule.scene,
                        statement=rule.statement,
                        ref=rule.section_ref,
                        quote=rule.quote,
                        language=lang,
                    ),
                    language=lang,
                )
            )
    return prompts


def _validation_prompts(entries: Sequence[Generated], rules: dict[str, Rule]) -> list[Prompt]:
    prompts = []
    for entry in entries:
        rule = rules[str(entry.metadata["rule_id"])]
        kind = "redteam seed" if isinstance(entry, Seed) else entry.kind
        text = text_of(entry)
        if not isinstance(entry, Seed) and entry.kind == "mcq":
            text += f"\nKey: {entry.answer}\nRationale: {entry.metadata.get('rationale', '')}"
        prompts.append(
            Prompt(
                id=entry.id,
                system=VALIDATE_SYSTEM,
                user=fill(
                    VALIDATE_USER,
                    deontic=rule.deontic,
                    statement=rule.statement,
                    quote=rule.quote,
                    kind=kind,
                    item=text,
                ),
                language=entry.language,
            )
        )
    return prompts


def verdict(reply: Reply) -> str | None:
    """None when the validator passes the item, else the reason it fails."""
    if reply.text is None:
        return f"validator call failed: {reply.error}"
    try:
        data = json_object(reply.text)
    except ValueError as exc:
        return f"validator: {exc}"
    failed = [k for k in ("answerable", "key_correct", "faithful") if data.get(k) is not True]
    if not failed:
        return None
    reason = data.get("reason")
    why = reason.strip() if isinstance(reason, str) and reason.strip() else "no reason given"
    return f"validator: not {', not '.join(failed)} ({why})"


def _existing_texts(refs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(``SUITE:ITEM_ID`` names, texts) of the items of the suites deduplicated against."""
    from medsafe.suites import load_items

    names: list[str] = []
    texts: list[str] = []
    for ref in refs:
        for item in load_items(ref):
            names.append(f"{ref}:{item.id}")
            texts.append(text_of(item))
    return names, texts


def _reviewed(
    out: Path, failed: list[tuple[Generated, str]], rules: dict[str, Rule]
) -> tuple[list[Generated], list[tuple[Generated, str]]]:
    """Failed items people chose to keep (restored), and the others (still failed), after
    rewriting the review file with the current failures and the labels given so far."""
    from medsafe.authoring import validation_review as vr

    out.mkdir(parents=True, exist_ok=True)
    path = out / vr.FILE_NAME
    labels = vr.read_labels(path)
    restored: list[Generated] = []
    still: list[tuple[Generated, str]] = []
    units = []
    for entry, why in failed:
        decision = vr.verdict(labels.get(entry.id, []))
        if decision == "keep":
            who = ", ".join(sorted(str(lab["reviewer"]) for lab in labels[entry.id]))
            note = {"validation": f"kept by {who} after {why}"}
            if isinstance(entry, Seed):
                restored.append(Seed(entry.id, entry.prompt, entry.category, entry.language,
                                     {**entry.metadata, **note}))  # fmt: skip
            else:
                restored.append(entry.model_copy(update={"metadata": {**entry.metadata, **note}}))
            continue
        reason = why if decision is None else f"{why}; dropped by a reviewer"
        still.append((entry, reason))
        rule = rules[str(entry.metadata["rule_id"])]
        units.append((entry.id, entry.language, f"{rule.statement}\n{rule.quote}",
                      f"{text_of(entry)}\n\nValidator: {why}"))  # fmt: skip
    vr.write_file(path, units, labels)
    return restored, still


async def _extract_rules(
    options: GenerateOptions, sections: Sequence[StoredSection], rejected: list[Rejection]
) -> list[Rule]:
    """Stage 1: the rules of every section (each quoting it verbatim)."""
    scenes = _scenes(options.taxonomy)
    prompts = _rule_prompts(sections, scenes)
    replies = await ask(options.db, "rules", options.generator, prompts,
                        show_progress=options.show_progress, notify=options.notify)  # fmt: skip
    rules: list[Rule] = []
    for section, prompt in zip(sections, prompts, strict=True):
        reply = replies.get(prompt.id, Reply(None, "no reply"))
        if reply.text is None:
            rejected.append(Rejection("rules", section.ref, section.ref,
                                      f"call failed: {reply.error}"))  # fmt: skip
            continue
        found, bad = parse_rules(section, reply.text, scenes)
        rules.extend(found)
        rejected.extend(bad)
    failed = [r.error for r in replies.values() if r.text is None]
    if prompts and len(failed) == len(prompts):
        raise AllCallsFailed(
            f"every rules request failed ({len(failed)}); first cause: {failed[0]}; nothing "
            "was written (the answers that do arrive on a rerun are kept)"
        )
    return rules


async def _write_items(
    options: GenerateOptions, rules: dict[str, Rule], licences: dict[str, str | None],
    rejected: list[Rejection],
) -> list[Generated]:  # fmt: skip
    """Stage 2: an open item, an MCQ and a red-team seed per rule and language."""
    prompts = _item_prompts(list(rules.values()), options.languages)
    replies = await ask(options.db, "items", options.generator, prompts,
                        show_progress=options.show_progress, notify=options.notify)  # fmt: skip
    entries: list[Generated] = []
    for prompt in prompts:
        rule = rules[prompt.id.rsplit("-", 1)[0]]
        reply = replies.get(prompt.id, Reply(None, "no reply"))
        if reply.text is None:
            rejected.append(Rejection("items", prompt.id, rule.section_ref,
                                      f"call failed: {reply.error}"))  # fmt: skip
            continue
        made, bad = parse_items(rule, prompt.language, reply.text, options.name or options.corpus,
                                options.taxonomy, licences.get(rule.section_ref))  # fmt: skip
        entries.extend(made)
        rejected.extend(bad)
    return entries


async def _validate(
    options: GenerateOptions, entries: list[Generated], rules: dict[str, Rule],
    rejected: list[Rejection], review_counts: dict[str, int],
) -> list[Generated]:  # fmt: skip
    """Stage 3: the items the validator passes (and those reviewers kept, ``--on-fail review``)."""
    assert options.validator is not None
    replies = await ask(options.db, "validate", options.validator,
                        _validation_prompts(entries, rules),
                        show_progress=options.show_progress, notify=options.notify)  # fmt: skip
    kept: list[Generated] = []
    failures: list[tuple[Generated, str]] = []
    for entry in entries:
        why = verdict(replies.get(entry.id, Reply(None, "no reply")))
        if why is None:
            kept.append(entry)
        else:
            failures.append((entry, why))
    if options.on_fail == "review":
        restored, failures = _reviewed(options.out, failures, rules)
        kept += restored
        review_counts.update(restored=len(restored), awaiting_review=len(failures))
    for entry, why in failures:
        rejected.append(Rejection("validate", entry.id, str(entry.metadata["section_ref"]), why))
    return kept


def _deduplicate(
    options: GenerateOptions, entries: list[Generated]
) -> tuple[list[Generated], list[dict[str, object]]]:
    """Stage 4: the entries left, and what was removed as a near-duplicate or paraphrase."""
    groups = [  # paraphrases: same source section, same kind and language, different words
        f"{'seed' if isinstance(e, Seed) else e.kind}/{e.language}/{e.metadata['section_ref']}"
        for e in entries
    ]
    existing_ids, existing = _existing_texts(options.against)
    pairs = near_duplicates([text_of(e) for e in entries], existing, threshold=options.threshold,
                            paraphrase_threshold=options.paraphrase_threshold,
                            groups=groups)  # fmt: skip
    removed: list[dict[str, object]] = []
    for pair in pairs:
        other = existing_ids[pair.other] if pair.in_existing else entries[pair.other].id
        removed.append({"id": entries[pair.index].id, "stage": pair.stage,
                        "similarity": round(pair.similarity, 4), "duplicate_of": other,
                        "reason": pair.reason(other)})  # fmt: skip
    drop = {p.index for p in pairs}
    return [e for i, e in enumerate(entries) if i not in drop], removed


async def generate_release(options: GenerateOptions) -> Release:
    """Run every stage and write the release to ``options.out``; returns what was written."""
    _scenes(options.taxonomy)  # an unknown framework is refused before anything is asked
    if options.out.exists() and not options.out.is_dir():
        raise ConfigError(f"-o {options.out}: exists and is not a folder")
    for lang in options.languages:
        if lang not in LANGUAGE_NAMES:
            raise ConfigError(f"--languages: {lang!r} is not one of zh, ja, en")
    require_store(options.db)
    with Store(options.db) as store:
        sections = load_sections(store.connection, options.corpus)
    say = options.notify or (lambda _msg: None)
    rejected: list[Rejection] = []
    review_counts: dict[str, int] = {}
    say(f"rules: {len(sections)} section(s)")
    rules = {r.id: r for r in await _extract_rules(options, sections, rejected)}
    say(f"items: {len(rules)} rule(s)")
    licences = {s.ref: s.meta.get("license") for s in sections}
    entries = await _write_items(options, rules, licences, rejected)
    if options.validator is not None:
        say(f"validation: {len(entries)} item(s)")
        entries = await _validate(options, entries, rules, rejected, review_counts)
    say(f"deduplication: {len(entries)} item(s)")
    entries, removed = _deduplicate(options, entries)
    release = Release(
        suite=options.name or options.corpus,
        corpus=options.corpus,
        corpus_hash=corpus_hash(sections),
        sections={s.ref: s.sha256 for s in sections},
        generator=options.generator.spec,
        validator=options.validator.spec if options.validator else None,
        taxonomy=options.taxonomy,
        rules=list(rules.values()),
        entries=entries,
        rejected=rejected,
        removed=removed,
        review=review_counts,
    )
    write_release(release, options.out)
    return release
