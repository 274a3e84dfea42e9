"""``medsafe redteam build``: seeds x strategies x languages -> a canonical-JSONL dialogue suite.

Streaming: seeds are read one at a time and each conversation is written as soon as it is made,
so memory holds only the dedup digests (16 bytes per distinct seed). Output is deterministic:
the same seeds, strategies, languages and turn budget give the same bytes. The suite is written
to a temporary file beside the target and renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsafe.errors import SuiteError
from medsafe.redteam.seeds import Seed, iter_seeds, normalise
from medsafe.redteam.strategy import Strategy, StrategyLibrary
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
    seed: Seed, strategy: Strategy, language: Language, turns: int, followups: Sequence[str]
) -> dict[str, Any]:
    """The canonical-JSONL record of one scripted conversation."""
    messages = strategy.render(seed.text, language, turns, followups)
    record: dict[str, Any] = {
        "id": conversation_id(seed.seed_id, strategy.name, language),
        "kind": "dialogue",
        "language": language,
        "seed": seed.text,
        "strategy": strategy.name,
        "turns": turns,
        "messages": [{"role": "user", "content": text} for text in messages],
        "metadata": {"seed_id": seed.seed_id, "seed_source": f"{seed.path.name}:{seed.line}"},
        "source": SOURCE,
    }
    if seed.category:
        record["category"] = seed.category
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


def build_suite(
    source: Path,
    output: Path,
    *,
    library: StrategyLibrary,
    strategies: Sequence[Strategy],
    languages: Sequence[Language],
    turns: int = DEFAULT_TURNS,
    limit: int | None = None,
) -> BuildStats:
    """Write every (seed, strategy, language) conversation of ``source`` to ``output``.

    A seed with its own ``language`` gives conversations only in that language (if requested);
    a seed without one is used, as written, in every requested language.
    """
    if turns < 1:
        raise SuiteError("--turns must be at least 1")
    dropped = [0]
    n_seeds = n_items = 0
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tmp.open("w", encoding="utf-8", buffering=1 << 20) as handle:
            for seed in unique_seeds(iter_seeds(source), dropped):
                if limit is not None and n_seeds >= limit:
                    break
                n_seeds += 1
                langs = [seed.language] if seed.language else languages
                for strategy in strategies:
                    for language in langs:
                        if language not in languages:
                            continue
                        followups = library.followups[language]
                        record = dialogue_record(seed, strategy, language, turns, followups)
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                        n_items += 1
        if n_items == 0:
            raise SuiteError(
                "no conversations built (no seeds in the requested languages)", path=source
            )
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return BuildStats(seeds=n_seeds, duplicates=dropped[0], conversations=n_items, output=output)
