"""``medsafe redteam build``: seeds x strategies x languages -> a canonical-JSONL dialogue suite.

Streaming: seeds are read one at a time and each conversation is written as soon as it is made,
so memory holds only the dedup digests (16 bytes per distinct seed). Output is deterministic:
the same seeds, strategies, languages and turn budget give the same bytes. The suite is written
to a temporary file beside the target and renamed into place only when complete.

With a :class:`~medsafe.redteam.translate.Translator`, a first pass collects the seeds that need
translating (their texts are held in memory), they are translated (cached in
``OUT.translations.jsonl``), and a second pass writes the conversations, each in one language.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsafe.errors import SuiteError
from medsafe.redteam.seeds import Seed, iter_seeds, normalise
from medsafe.redteam.strategy import Strategy, StrategyLibrary
from medsafe.redteam.translate import Outcomes, Translator, check_translation, detect_language
from medsafe.schema import LANGUAGES, Language

DEFAULT_TURNS = 3
SOURCE = "medsafe redteam build"


@dataclass(frozen=True)
class BuildStats:
    """What a build did."""

    seeds: int
    duplicates: int
    conversations: int
    output: Path
    translation: TranslationStats | None = None


@dataclass(frozen=True)
class SeedProblem:
    """A seed left out of one language: a flagged translation or a failed call."""

    seed_id: str
    language: Language
    reason: str
    """``empty``, ``refused``, ``wrong-language``, or the cause of a failed call."""
    translation: str | None = None
    translation_hash: str = ""


@dataclass(frozen=True)
class TranslationStats:
    """What ``--translate`` did: distinct translations needed, served, asked, left out."""

    translator: str
    needed: int
    cached: int
    asked: int
    cache: Path
    flags_path: Path
    flagged: list[SeedProblem] = field(default_factory=list)
    failed: list[SeedProblem] = field(default_factory=list)


def parse_languages(spec: str) -> list[Language]:
    """``"en,ja"`` -> ``["en", "ja"]``; an unknown code is a SuiteError."""
    out: list[Language] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part not in LANGUAGES:
            raise SuiteError(f"unknown language {part!r} (known: {', '.join(LANGUAGES)})")
        if part not in out:
            out.append(part)
    if not out:
        raise SuiteError("no language given")
    return out


def conversation_id(seed_id: str, strategy: str, language: str) -> str:
    """The item id of one conversation: ``rt/SEED/STRATEGY/LANG``."""
    return f"rt/{seed_id}/{strategy}/{language}"


def dialogue_record(
    seed: Seed,
    strategy: Strategy,
    language: Language,
    turns: int,
    followups: Sequence[str],
    translated: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical-JSONL record of one scripted conversation.

    ``translated`` (``text``, ``seed_language``, ``translator``, ``translation_hash``) replaces
    the seed by its translation and keeps the original in ``metadata.seed_original``.
    """
    text = translated["text"] if translated else seed.text
    messages = strategy.render(text, language, turns, followups)
    metadata: dict[str, Any] = {
        "seed_id": seed.seed_id,
        "seed_source": f"{seed.path.name}:{seed.line}",
    }
    if translated:
        metadata["seed_original"] = seed.text
        metadata.update({k: v for k, v in translated.items() if k != "text"})
    record: dict[str, Any] = {
        "id": conversation_id(seed.seed_id, strategy.name, language),
        "kind": "dialogue",
        "language": language,
        "seed": text,
        "strategy": strategy.name,
        "turns": turns,
        "messages": [{"role": "user", "content": turn} for turn in messages],
        "metadata": metadata,
        "source": SOURCE,
    }
    if seed.category:
        record["category"] = seed.category
    if seed.license:
        record["license"] = seed.license
    return record


def _digest(*parts: str) -> bytes:
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


def unique_seeds(seeds: Iterable[Seed], counter: list[int]) -> Iterable[Seed]:
    """Seeds with duplicates dropped: same normalised text, or same id, in the same language.

    ``counter[0]`` counts the duplicates dropped.
    """
    seen: set[bytes] = set()
    for seed in seeds:
        lang = seed.language or "*"
        keys = (_digest("text", lang, normalise(seed.text)), _digest("id", lang, seed.seed_id))
        if keys[0] in seen or keys[1] in seen:
            counter[0] += 1
            continue
        seen.update(keys)
        yield seed


def translation_paths(output: Path) -> tuple[Path, Path]:
    """``OUT.translations.jsonl`` (the cache) and ``OUT.translation-flags.jsonl`` beside ``OUT``."""
    return (
        output.with_name(f"{output.stem}.translations.jsonl"),
        output.with_name(f"{output.stem}.translation-flags.jsonl"),
    )


def _limited(source: Path, limit: int | None, dropped: list[int]) -> Iterable[Seed]:
    for n, seed in enumerate(unique_seeds(iter_seeds(source), dropped)):
        if limit is not None and n >= limit:
            return
        yield seed


class _Translations:
    """The translations of one build, looked up per (seed, language)."""

    def __init__(
        self,
        translator: Translator,
        source: Path,
        output: Path,
        limit: int | None,
        languages: Sequence[Language],
    ) -> None:
        self.translator = translator
        self.native: set[bytes] = set()
        wanted: list[tuple[str, str, Language]] = []
        for seed in _limited(source, limit, [0]):
            language = seed.language or detect_language(seed.text)
            self.native.add(_digest("id", language, seed.seed_id))
            wanted.extend((seed.seed_id, seed.text, t) for t in languages if t != language)
        wanted = [w for w in wanted if _digest("id", w[2], w[0]) not in self.native]
        cache, flags_path = translation_paths(output)
        pairs = [(text, language) for _, text, language in wanted]
        self.outcomes: Outcomes = translator.translate(pairs, cache)
        keys = [translator.request(text, language)[1] for text, language in pairs]
        self.flagged: list[SeedProblem] = []
        self.failed: list[SeedProblem] = []
        self.usable: dict[str, str] = {}
        for (seed_id, _text, language), key in zip(wanted, keys, strict=True):
            if key in self.outcomes.errors:
                self.failed.append(SeedProblem(seed_id, language, self.outcomes.errors[key]))
                continue
            answer = self.outcomes.texts[key]
            reason = check_translation(answer, language)
            if reason:
                self.flagged.append(SeedProblem(seed_id, language, reason, answer, key))
            else:
                self.usable[key] = answer.strip()
        if wanted and len(self.failed) == len(wanted):
            first = self.failed[0]
            raise SuiteError(
                f"every translation failed ({len(wanted)}), e.g. {first.seed_id} -> "
                f"{first.language}: {first.reason}"
            )
        with flags_path.open("w", encoding="utf-8") as handle:
            for flag in self.flagged:
                handle.write(json.dumps(_problem_json(flag), ensure_ascii=False) + "\n")
        self.stats = TranslationStats(
            translator=translator.model,
            needed=len(set(keys)),
            cached=self.outcomes.cached,
            asked=self.outcomes.asked,
            cache=cache,
            flags_path=flags_path,
            flagged=self.flagged,
            failed=self.failed,
        )

    def languages(
        self, seed: Seed, languages: Sequence[Language]
    ) -> list[tuple[Language, dict[str, Any] | None]]:
        """The languages a seed gives conversations in, with the translation for each (or None)."""
        own = seed.language or detect_language(seed.text)
        out: list[tuple[Language, dict[str, Any] | None]] = []
        for language in languages:
            if language == own:
                out.append((language, None))
            elif _digest("id", language, seed.seed_id) not in self.native:
                key = self.translator.request(seed.text, language)[1]
                if key in self.usable:
                    translated = {
                        "text": self.usable[key],
                        "seed_language": own,
                        "translator": self.translator.model,
                        "translation_hash": key,
                    }
                    out.append((language, translated))
        return out


def _problem_json(problem: SeedProblem) -> dict[str, Any]:
    return {
        "seed_id": problem.seed_id,
        "language": problem.language,
        "reason": problem.reason,
        "translation": problem.translation,
        "translation_hash": problem.translation_hash,
    }


def build_suite(
    source: Path,
    output: Path,
    *,
    library: StrategyLibrary,
    strategies: Sequence[Strategy],
    languages: Sequence[Language],
    turns: int = DEFAULT_TURNS,
    limit: int | None = None,
    translator: Translator | None = None,
) -> BuildStats:
    """Write every (seed, strategy, language) conversation of ``source`` to ``output``.

    Without ``translator``, a seed with its own ``language`` gives conversations only in that
    language (if requested) and a seed without one is used, as written, in every requested
    language. With it, a seed's language is its own or the one its script shows
    (:func:`~medsafe.redteam.translate.detect_language`); it is translated into every other
    requested language that no seed with the same id is given in, and a flagged or failed
    translation leaves the seed out of that language.
    """
    if turns < 1:
        raise SuiteError("--turns must be at least 1")
    output.parent.mkdir(parents=True, exist_ok=True)
    translations = (
        _Translations(translator, source, output, limit, languages) if translator else None
    )
    dropped = [0]
    n_seeds = n_items = 0
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", buffering=1 << 20) as handle:
            for seed in _limited(source, limit, dropped):
                n_seeds += 1
                if translations is not None:
                    plan = translations.languages(seed, languages)
                else:
                    own = [seed.language] if seed.language else languages
                    plan = [(lang, None) for lang in own if lang in languages]
                for strategy in strategies:
                    for language, translated in plan:
                        followups = library.followups[language]
                        record = dialogue_record(
                            seed, strategy, language, turns, followups, translated
                        )
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                        n_items += 1
        if n_items == 0:
            raise SuiteError(
                "no conversations built (no seeds in the requested languages)", path=source
            )
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return BuildStats(
        seeds=n_seeds,
        duplicates=dropped[0],
        conversations=n_items,
        output=output,
        translation=translations.stats if translations else None,
    )
