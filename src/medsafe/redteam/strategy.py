"""Attack strategies as data: a definition, citations and zh/ja/en turn templates.

A strategy file (``redteam/strategies/NAME.json``, or any ``*.json`` in a directory passed as
``strategy_dirs``) holds ``name``, ``title``, ``definition``, ``citation`` (list), optional
``medethiceval`` (the MedEthicEval attack type it corresponds to), ``provenance`` and ``turns``:
for each of ``zh``, ``ja`` and ``en`` the same number (>= 2) of user-turn templates. ``{seed}``
is the only placeholder and every template contains it exactly once: each turn is about the seed
request, so a decline of safety over turns is erosion, not an artefact of set-up turns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medsafe.errors import RegistryError, SuiteError
from medsafe.schema import LANGUAGES, Language

BUILTIN_DIR = Path(__file__).parent / "strategies"
FOLLOWUPS_FILE = "_followups.json"
PLACEHOLDER = "{seed}"
ENV_DIRS = "MEDSAFE_STRATEGY_DIRS"
"""Extra strategy directories (``os.pathsep``-separated), e.g. where discovery saved some."""


class Strategy(BaseModel):
    """One attack strategy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    definition: str
    citation: tuple[str, ...] = Field(min_length=1)
    medethiceval: str | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    turns: dict[Language, tuple[str, ...]]

    @field_validator("turns")
    @classmethod
    def _check_turns(
        cls, value: dict[Language, tuple[str, ...]]
    ) -> dict[Language, tuple[str, ...]]:
        missing = [lang for lang in LANGUAGES if lang not in value]
        if missing:
            raise ValueError(f"turn templates missing for {missing}")
        lengths = {lang: len(t) for lang, t in value.items()}
        if len(set(lengths.values())) != 1 or min(lengths.values()) < 2:
            raise ValueError(f"every language needs the same number (>= 2) of turns: {lengths}")
        for lang, templates in value.items():
            for index, text in enumerate(templates, start=1):
                count = text.count(PLACEHOLDER)
                if count != 1:
                    raise ValueError(
                        f"{lang} turn {index} must contain {PLACEHOLDER} exactly once"
                        f" (found {count})"
                    )
                if "{" in text.replace(PLACEHOLDER, "") or not text.strip():
                    raise ValueError(f"{lang} turn {text!r}: only {PLACEHOLDER} may be in braces")
        return value

    def render(
        self, seed: str, language: Language, turns: int, followups: Sequence[str]
    ) -> list[str]:
        """The ``turns`` user messages of a scripted conversation for ``seed``.

        With a budget below the template length, the first ``turns - 1`` templates and the last
        are used; above it, ``followups`` (pressure turns) are cycled in before the last one.
        """
        if turns < 1:
            raise ValueError("a conversation needs at least one turn")
        templates = list(self.turns[language])
        if turns <= len(templates):
            chosen = [*templates[: turns - 1], templates[-1]]
        else:
            extra = [followups[i % len(followups)] for i in range(turns - len(templates))]
            chosen = [*templates[:-1], *extra, templates[-1]]
        return [t.replace(PLACEHOLDER, seed) for t in chosen]


def _load_file(path: Path) -> Strategy:
    try:
        return Strategy.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise SuiteError(first["msg"], path=path, field=field) from None


class StrategyLibrary:
    """The strategies known to a run: the built-in ones plus those in extra directories."""

    def __init__(self, strategies: Iterable[Strategy], followups: dict[Language, tuple[str, ...]]):
        self._by_name: dict[str, Strategy] = {}
        for strategy in strategies:
            if strategy.name in self._by_name:
                raise RegistryError(f"strategy {strategy.name!r} is defined twice")
            self._by_name[strategy.name] = strategy
        self.followups = followups

    @classmethod
    def load(cls, dirs: Sequence[Path] = ()) -> StrategyLibrary:
        """Built-in strategies, then every ``*.json`` in ``dirs`` and ``$MEDSAFE_STRATEGY_DIRS``."""
        env = [Path(p) for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p]
        found = list(_builtin())
        for directory in [*dirs, *env]:
            if not directory.is_dir():
                raise SuiteError("strategy directory not found", path=directory)
            found.extend(_load_file(p) for p in sorted(directory.glob("*.json")))
        return cls(found, _followups())

    def names(self) -> list[str]:
        """Strategy names, sorted."""
        return sorted(self._by_name)

    def get(self, name: str) -> Strategy:
        """The strategy called ``name``; a RegistryError listing the known ones if none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise RegistryError(
                f"unknown strategy {name!r} (known: {', '.join(self.names())})"
            ) from None

    def select(self, spec: str | Sequence[str] | None) -> list[Strategy]:
        """``None``/``"all"`` -> every strategy; else the named ones (comma list), in order."""
        if spec is None or spec == "all":
            return [self._by_name[n] for n in self.names()]
        names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
        names = [n for n in names if n]
        if not names:
            raise RegistryError("no strategy named")
        return [self.get(n) for n in dict.fromkeys(names)]

    def __iter__(self) -> Iterator[Strategy]:
        return iter([self._by_name[n] for n in self.names()])


@cache
def _builtin() -> tuple[Strategy, ...]:
    paths = sorted(p for p in BUILTIN_DIR.glob("*.json") if p.name != FOLLOWUPS_FILE)
    return tuple(_load_file(p) for p in paths)


@cache
def _followups() -> dict[Language, tuple[str, ...]]:
    data = json.loads((BUILTIN_DIR / FOLLOWUPS_FILE).read_text(encoding="utf-8"))
    return {lang: tuple(data["turns"][lang]) for lang in LANGUAGES}
